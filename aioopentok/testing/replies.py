"""Replies with the service's real bytes, for ``MockTransport`` handlers.

Strategy: each builder returns a fresh ``HTTPResponse`` (a body is read once) whose bytes are
those the emulator serves, because they come from the emulator's own templates
(``aioopentok.emulator._xml``, ``_flv``, ``_storage``), which follow the recorded production
traffic of ../shared/protocol.md byte for byte. A user's unit test thus parses what production
sent, not hand-written XML that the real service never produced.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus

from multidict import CIMultiDict

from .._http import HTTPRequest, HTTPResponse, iterate_bytes
from ..emulator import _xml
from ..emulator._flv import FlvVideo
from ..emulator._state import ArchiveInfo, SessionInfo, VideoInfo
from ..emulator._storage import RangeNotSatisfiable, parse_range
from ..emulator._tokens import make_session_id

__all__ = [
    "DEFAULT_VIDEO_SIZE",
    "VideoSpec",
    "archive_url",
    "deleted",
    "errors",
    "flv",
    "manifest",
    "nginx_404",
    "response",
    "s3_error",
    "session_created",
    "status",
    "stitch_processing",
    "stitch_ready",
    "storage",
]

#: Size of a video given by ID alone in ``manifest`` (one FLV tag and a bit: 40 ms).
DEFAULT_VIDEO_SIZE = 65_549
#: A manifest video: an ID, or (ID, size in bytes), or (ID, size, stream name).
VideoSpec = str | tuple[str, int] | tuple[str, int, str]

_XML = "text/xml; charset=utf-8"
_FLV_ARCHIVE = "aioopentok.testing"  # FlvVideo's seed namespace for ``flv``
_OFFSET_MS = 1255  # recorded timelines start about here, streams 8 ms apart
_DEFAULT_MESSAGES = {
    403: ("notAuthorized", "The API secret did not match, Invalid credentials passed"),
    404: ("itemNotFound", "Archive not found"),
}


def response(
    status: int = 200,
    body: bytes | str = b"",
    headers: Mapping[str, str] | None = None,
    *,
    chunk_size: int = 64 * 1024,
) -> HTTPResponse:
    """Return a reply of any status and body, sent in ``chunk_size`` chunks.

    ``Content-Length`` is set unless ``headers`` has it or a ``Content-Encoding`` (then it
    would count encoded bytes, and a test usually means the body to be what is sent).
    """
    data = body.encode() if isinstance(body, str) else bytes(body)
    sent = CIMultiDict(headers or {})
    if "Content-Length" not in sent and "Content-Encoding" not in sent:
        sent["Content-Length"] = str(len(data))
    return HTTPResponse(status, sent, iterate_bytes(data, chunk_size))


def _with(base: Mapping[str, str], extra: Mapping[str, str] | None) -> dict[str, str]:
    return {**base, **(extra or {})}


def session_created(
    session_id: str | None = None,
    partner_id: int | str = "12345",
    *,
    create_dt: datetime | None = None,
    staging: bool = False,
    headers: Mapping[str, str] | None = None,
) -> HTTPResponse:
    """The ``session/create`` reply, production's indented shape or staging's one line.

    Without ``session_id``, one is made in the real format for ``partner_id`` (your API key).
    """
    when = create_dt or datetime.now(UTC)
    if session_id is None:
        date = when.strftime("%a %b %d %H:%M:%S UTC %Y")
        session_id = make_session_id(str(partner_id), "127.0.0.1", date, "0.5211813")
    info = SessionInfo(session_id, "", "disabled", {}, when)
    body = _xml.session_created(info, str(partner_id), staging=staging)
    return response(200, body, _with({"Content-Type": _XML}, headers))


def _video(index: int, spec: VideoSpec, archive_id: str) -> VideoInfo:
    if isinstance(spec, str):
        spec = (spec, DEFAULT_VIDEO_SIZE)
    video_id, size = spec[0], spec[1]
    name = spec[2] if len(spec) == 3 else ""
    FlvVideo(archive_id, video_id, size)  # a size too small for an FLV file raises ValueError
    return VideoInfo(video_id, size, name, _OFFSET_MS + 8 * index, archive_id)


def manifest(
    archive_id: str,
    videos: Sequence[VideoSpec],
    *,
    title: str = "1346797109799",
    headers: Mapping[str, str] | None = None,
) -> HTTPResponse:
    """The ``archive/getmanifest`` reply, recorded whitespace and trailing blank lines included.

    A video's ``length`` (ms) is that of an FLV of its size (25 frames a second), the size
    ``flv(size)`` and ``storage`` serve.
    """
    infos = [_video(i, spec, archive_id) for i, spec in enumerate(videos)]
    body = _xml.manifest(ArchiveInfo(archive_id, "", title, infos))
    return response(200, body, _with({"Content-Type": _XML}, headers))


def archive_url(url: str, *, headers: Mapping[str, str] | None = None) -> HTTPResponse:
    """The ``archive/url`` reply: HTTP 200, ``text/html``, the whole body is the URL."""
    return response(200, url, _with({"Content-Type": "text/html; charset=utf-8"}, headers))


def errors(
    code: int,
    message: str | None = None,
    *,
    element: str | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTTPResponse:
    """An ``<Errors>`` body, sent with HTTP 200 as production did (protocol.md, Errors).

    403 is ``notAuthorized`` and 404 ``itemNotFound``, with production's messages unless
    ``message`` is given; another code without a message is the bare
    ``<Errors><error code="100"></error></Errors>`` that also occurred.
    """
    default_element, default_message = _DEFAULT_MESSAGES.get(code, ("error", None))
    if code == 403 and message is None and element is None:
        body = _xml.errors_not_authorized()
    else:
        text = default_message if message is None else message
        name = element or default_element
        child = "" if text is None else f'<{name} message="{_xml._attr(text)}"/>'
        body = f'<Errors><error code="{code}">{child}</error></Errors>'
    return response(status, body, _with({"Content-Type": "text/xml"}, headers))


def status(
    code: int, *, retry_after: float | None = None, headers: Mapping[str, str] | None = None
) -> HTTPResponse:
    """A bare status with its reason phrase as the body (the service's 5xx, a 429)."""
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "Error"
    # delta-seconds are a whole number (RFC 9110); a fraction is rounded up, never down
    extra = {} if retry_after is None else {"Retry-After": str(math.ceil(retry_after))}
    return response(code, phrase, _with({"Content-Type": "text/plain", **extra}, headers))


def nginx_404() -> HTTPResponse:
    """The nginx HTML 404 that production answered for unrouted paths and methods."""
    return response(404, _xml.NGINX_404, {"Content-Type": "text/html"})


def deleted() -> HTTPResponse:
    """A successful ``archive/delete``: HTTP 200 without ``<Errors>`` (its body never recorded)."""
    return response(200, b"", {"Content-Type": "text/html; charset=utf-8"})


def stitch_ready(url: str) -> HTTPResponse:
    """A stitch that is done: 201 and the MP4's signed URL in ``Location``."""
    return response(201, b"", {"Location": url})


def stitch_processing() -> HTTPResponse:
    """A stitch still processing: 202, ask again later."""
    return response(202)


def s3_error(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
) -> HTTPResponse:
    """A storage error as S3 sends it: ``<Error><Code>..</Code><Message>..</Message></Error>``.

    For instance ``s3_error(403, "AccessDenied", "Request has expired")`` for an expired URL.
    """
    body = _xml.s3_error(code, message)
    return response(status, body, _with({"Content-Type": "application/xml"}, headers))


def flv(size: int, seed: int | str = 0) -> bytes:
    """Return a valid FLV file of exactly ``size`` bytes (>= 29), the same for the same seed.

    The emulator's generator: FLV header, then video tags, each with its PreviousTagSize.
    """
    return FlvVideo(_FLV_ARCHIVE, str(seed), size).read()


def storage(
    data: bytes,
    request: HTTPRequest,
    *,
    etag: str | None = None,
    content_type: str = "video/x-flv",
    chunk_size: int = 64 * 1024,
) -> HTTPResponse:
    """Serve ``data`` as S3 does, honouring the request's ``Range``.

    200 with the whole file, or 206 with ``Content-Range: bytes first-last/total``, or 416
    with ``bytes */total`` past the end; ``ETag`` is the quoted MD5 of ``data`` (S3's for a
    single-part upload) unless given.
    """
    total = len(data)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": content_type,
        "ETag": etag or f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"',
    }
    try:
        asked = parse_range(CIMultiDict(request.headers).get("Range"), total)
    except RangeNotSatisfiable:
        return response(416, b"", {**headers, "Content-Range": f"bytes */{total}"})
    if asked is None:
        return response(200, data, headers, chunk_size=chunk_size)
    start, end = asked
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
    return response(206, data[start:end], headers, chunk_size=chunk_size)
