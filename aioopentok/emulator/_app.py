"""The aiohttp application: the OpenTok API routes, with and without the ``/hl`` prefix.

Strategy: one middleware does what every request shares (record it, count auth leaks to
storage, apply the connection/status fault knobs, turn unrouted paths into nginx's 404 page);
each handler then checks auth the way the service did (../shared/protocol.md) and answers
with a body from ``_xml``. Errors are mostly HTTP 200 + ``<Errors>``, as recorded.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus

from aiohttp import web
from multidict import CIMultiDict

from . import _xml
from ._state import ArchiveInfo, RecordedRequest, State
from ._storage import STITCHED_NAME, handle_storage
from ._tokens import TokenError, TokenInfo, verify_token

__all__ = ["STATE_KEY", "make_app"]

STATE_KEY = web.AppKey("aioopentok_emulator_state", State)
_PARTNER = "X-TB-PARTNER-AUTH"
_TOKEN = "X-TB-TOKEN-AUTH"
_XML = "text/xml; charset=utf-8"
_STITCH_LIFETIME = 24 * 3600
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _state(request: web.Request) -> State:
    return request.app[STATE_KEY]


def _xml_reply(text: str, *, status: int = 200, content_type: str = _XML) -> web.Response:
    """Build an XML reply; the content type is passed whole, charset included."""
    return web.Response(status=status, body=text.encode(), headers={"Content-Type": content_type})


def _not_authorized() -> web.Response:
    return _xml_reply(_xml.errors_not_authorized(), content_type="text/xml")


def _not_found(item_id: str, what: str = "Archive") -> web.Response:
    return _xml_reply(_xml.errors_not_found(item_id, what), content_type="text/xml")


def _phrase(status: int) -> str:
    """Reason phrase of a status, tolerating the non-standard ones a test may pick."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _nginx_404() -> web.Response:
    return web.Response(status=404, text=_xml.NGINX_404, content_type="text/html")


async def _api_reply(request: web.Request, text: str) -> web.StreamResponse:
    """Send a session/create or manifest reply, distorted if the ``hostile`` knob is set."""
    kind = _state(request).faults.hostile
    if kind is None:
        return _xml_reply(text)
    chunks, extra = _xml.hostile_body(kind, text)
    if kind != "oversized":
        return web.Response(body=b"".join(chunks), headers={"Content-Type": _XML, **extra})
    resp = web.StreamResponse(headers={"Content-Type": _XML, **extra})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        for chunk in chunks:
            await resp.write(chunk)
    except ConnectionError:
        pass  # a client that stops reading an oversized reply is doing the right thing
    return resp


def _partner_auth_error(request: web.Request) -> web.Response | None:
    """Check partner auth: production needs it; staging only refuses a wrong one (403)."""
    state = _state(request)
    given = request.headers.get(_PARTNER)
    expected = f"{state.api_key}:{state.api_secret}"
    good = given is not None and hmac.compare_digest(given.encode(), expected.encode())
    if good or (state.staging and given is None):
        return None
    return web.Response(status=403) if state.staging else _not_authorized()


def _token(request: web.Request) -> TokenInfo:
    """Verify the X-TB-TOKEN-AUTH header; raise TokenError if absent or bad."""
    state = _state(request)
    token = request.headers.get(_TOKEN)
    if not token:
        raise TokenError("No token given")
    return verify_token(token, state.api_key, state.api_secret, now=state.clock())


def _archive_for_token(request: web.Request) -> ArchiveInfo | web.Response:
    """Return the archive a moderator token may use, or the error reply the service gave."""
    archive_id = request.match_info["archive_id"]
    try:
        token = _token(request)
    except TokenError:
        return _not_authorized()
    archive = _state(request).archives.get(archive_id)
    if (
        archive is None
        or archive.deleted
        or token.session_id != archive.session_id
        or token.role != "moderator"
    ):
        return _not_found(archive_id)
    return archive


async def create_session(request: web.Request) -> web.StreamResponse:
    """POST session/create: form fields are read only when form-encoded, like the service."""
    state = _state(request)
    error = _partner_auth_error(request)
    if error is not None:
        return error
    fields: dict[str, str] = {}
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
    location = fields.pop("location", "")
    fields.pop("api_key", None)
    info = state.create_session(location, fields)
    body = _xml.session_created(info, state.api_key, staging=state.staging)
    return await _api_reply(request, body)


async def get_session(request: web.Request) -> web.StreamResponse:
    """GET session/<id>: our own XML shape (see ``_xml.session_details``); partner auth."""
    error = _partner_auth_error(request)
    if error is not None:
        return error
    session_id = request.match_info["session_id"]
    info = _state(request).sessions.get(session_id)
    if info is None:
        return _not_found(session_id, "Session")
    return _xml_reply(_xml.session_details(info))


async def post_session(request: web.Request) -> web.StreamResponse:
    """POST session/<id>?extended=true with a token of that session (the SDKs' test suites).

    protocol.md, "Test-only endpoints": token auth, empty body; the reply is the session's
    XML with ``p2p/preference`` and the properties that were set. Any role will do.
    """
    session_id = request.match_info["session_id"]
    try:
        token = _token(request)
    except TokenError:
        return _not_authorized()
    info = _state(request).sessions.get(session_id)
    if info is None or token.session_id != session_id:
        return _not_found(session_id, "Session")
    return _xml_reply(_xml.session_extended(info))


async def get_manifest(request: web.Request) -> web.StreamResponse:
    """GET (or the PHP SDK's POST) archive/getmanifest/<id> with a moderator token."""
    found = _archive_for_token(request)
    if isinstance(found, web.Response):
        return found
    return await _api_reply(request, _xml.manifest(found))


async def get_url(request: web.Request) -> web.StreamResponse:
    """GET (or POST) archive/url/<aid>/<vid>: the whole text/html body is a signed URL."""
    found = _archive_for_token(request)
    if isinstance(found, web.Response):
        return found
    state = _state(request)
    video_id = request.match_info["video_id"]
    if found.video(video_id) is None:
        return _not_found(video_id, "Video")
    path = f"/storage/{state.api_key}/{found.id}/{video_id}.flv"
    url = state.sign_url(path, state.faults.url_lifetime)
    return web.Response(body=url.encode(), headers={"Content-Type": "text/html; charset=utf-8"})


async def delete_archive(request: web.Request) -> web.StreamResponse:
    """POST archive/delete/<id>: marks the archive deleted; ``<deleted/>`` on success."""
    found = _archive_for_token(request)
    if isinstance(found, web.Response):
        return found
    found.deleted = True
    return _xml_reply("<deleted/>")


async def stitch(request: web.Request) -> web.StreamResponse:
    """POST archive/<id>/stitch: 202 ``stitch_pending`` times, then 201 + Location."""
    state = _state(request)
    archive_id = request.match_info["archive_id"]
    if _partner_auth_error(request) is not None:
        return _xml_reply(_xml.errors_not_authorized(), status=403, content_type="text/xml")
    archive = state.archives.get(archive_id)
    if archive is None or archive.deleted:
        return _xml_reply(_xml.errors_not_found(archive_id), status=404, content_type="text/xml")
    archive.stitch_calls += 1
    if archive.stitch_calls <= state.faults.stitch_pending:
        return web.Response(status=202)
    path = f"/storage/{state.api_key}/{archive.id}/{STITCHED_NAME}"
    return web.Response(status=201, headers={"Location": state.sign_url(path, _STITCH_LIFETIME)})


async def validate_token(request: web.Request) -> web.StreamResponse:
    """POST token/validate: the token's details, or ``<invalid>reason</invalid>``."""
    try:
        info = _token(request)
    except TokenError as exc:
        return _xml_reply(_xml.invalid_token(exc.reason))
    return _xml_reply(_xml.token_details(info))


async def storage(request: web.Request) -> web.StreamResponse:
    """GET/HEAD on a signed storage URL."""
    return await handle_storage(request, _state(request))


@web.middleware
async def _common(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Record the request, count storage auth leaks, apply fault knobs, nginx 404s."""
    state = _state(request)
    body = await request.read()
    headers = CIMultiDict(request.headers)
    state.requests.append(
        RecordedRequest(request.method, request.path, request.query_string, headers, body)
    )
    if request.path.startswith("/storage/") and (_PARTNER in headers or _TOKEN in headers):
        state.storage_auth_leaks += 1
    faults = state.faults
    if faults.reset_connections > 0:
        faults.reset_connections -= 1
        if request.transport is not None:
            request.transport.abort()
        return web.Response()  # aiohttp cannot send it and drops it quietly
    if faults.delay > 0:
        await asyncio.sleep(faults.delay)
    if faults.fail_503 > 0:
        faults.fail_503 -= 1
        return web.Response(
            status=faults.fail_status,
            text=_phrase(faults.fail_status),
            headers={"Retry-After": f"{faults.retry_after:g}"},
        )
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        return _nginx_404()


async def _set_date(request: web.Request, response: web.StreamResponse) -> None:
    """Write ``Date`` from the emulator's clock, shifted by the ``date_offset`` knob."""
    state = _state(request)
    response.headers["Date"] = formatdate(state.clock() + state.faults.date_offset, usegmt=True)


def make_app(state: State) -> web.Application:
    """Build the application serving ``state``; embeddable in any aiohttp server."""
    app = web.Application(middlewares=[_common])
    app[STATE_KEY] = state
    app.on_response_prepare.append(_set_date)
    for prefix in ("", "/hl"):
        app.router.add_post(f"{prefix}/session/create", create_session)
        # After session/create, which the router matches first (routes match in order).
        app.router.add_get(f"{prefix}/session/{{session_id}}", get_session)
        app.router.add_post(f"{prefix}/session/{{session_id}}", post_session)
        # The PHP SDK POSTs every call with an empty form body; the service answered POST
        # like GET for the manifest and the URL (protocol.md, "Archives").
        for method in ("GET", "POST"):
            app.router.add_route(
                method, f"{prefix}/archive/getmanifest/{{archive_id}}", get_manifest
            )
            app.router.add_route(
                method, f"{prefix}/archive/url/{{archive_id}}/{{video_id}}", get_url
            )
        app.router.add_post(f"{prefix}/archive/delete/{{archive_id}}", delete_archive)
        app.router.add_post(f"{prefix}/archive/{{archive_id}}/stitch", stitch)
        app.router.add_post(f"{prefix}/token/validate", validate_token)
    app.router.add_get("/storage/{api_key}/{archive_id}/{name}", storage)  # HEAD too
    return app
