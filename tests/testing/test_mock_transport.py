"""MockTransport drives the real Client: retries, <Errors>, caps and downloads, no socket."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from urllib.parse import parse_qs

import pytest

import aioopentok
from aioopentok.testing import HTTPRequest, HTTPResponse, MockTransport, Router, replies

KEY = "12345"
SECRET = "0123456789abcdef0123456789abcdef01234567"
API = "https://api.test/hl"
SID = "1_MX4xMjM0NX4xMjcuMC4wLjF-VHVlIFNlcCAwNCAxNDo1MzowMiBQRFQgMjAxMn4wLjUyMTE4MTN-"
ARCHIVE = "200567af-0726-4e93-883b-fe0426d6310a"
VIDEO = "bbf108c9-7237-49ae-9057-2ccdb71cf675"


class FakeSleep:
    """Records back-off delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make_client(transport: MockTransport, sleep: FakeSleep | None = None) -> aioopentok.Client:
    return aioopentok.Client(
        KEY, SECRET, api_url=API, transport=transport, sleep=sleep or FakeSleep()
    )


def moderator() -> str:
    return aioopentok.generate_token(KEY, SECRET, SID, role="moderator")


async def test_create_session_sends_partner_auth_and_a_form_and_parses_the_reply() -> None:
    transport = MockTransport(lambda request: replies.session_created(SID, KEY))
    async with make_client(transport) as client:
        session = await client.create_session("10.0.0.1", p2p_preference="enabled")
    assert session.session_id == SID
    assert session.partner_id == KEY
    (sent,) = transport.requests
    assert (sent.method, sent.url) == ("POST", f"{API}/session/create")
    assert sent.headers["X-TB-PARTNER-AUTH"] == f"{KEY}:{SECRET}"
    form = parse_qs(sent.body.decode())
    assert form["location"] == ["10.0.0.1"] and form["p2p.preference"] == ["enabled"]
    assert transport.closed  # Client.close() closed the transport it was given


async def test_the_staging_reply_shape_parses_too() -> None:
    transport = MockTransport(lambda request: replies.session_created(SID, KEY, staging=True))
    async with make_client(transport) as client:
        assert (await client.create_session()).session_id == SID


async def test_a_manifest_after_a_503_is_fetched_by_the_retry_policy() -> None:
    answers = [replies.status(503, retry_after=2), replies.manifest(ARCHIVE, [(VIDEO, 200_000)])]
    transport = MockTransport(lambda request: answers.pop(0))
    sleep = FakeSleep()
    async with make_client(transport, sleep) as client:
        archive = await client.get_archive_manifest(ARCHIVE, moderator())
    assert sleep.delays == [2.0]  # the reply's Retry-After, through the Client's policy
    assert [r.url for r in transport.requests] == [f"{API}/archive/getmanifest/{ARCHIVE}"] * 2
    assert archive.archive_id == ARCHIVE and [v.id for v in archive.resources] == [VIDEO]
    assert archive.resources[0].length == 4 * 40  # 200 kB of FLV: four tags of 40 ms


async def test_create_session_is_not_retried_after_a_lost_reply_but_is_after_no_connection() -> (
    None
):
    calls: list[str] = []

    def flaky(request: HTTPRequest) -> HTTPResponse:
        calls.append(request.url)
        if len(calls) == 1:
            raise aioopentok.ConnectError("refused")  # nothing sent: safe to retry
        if len(calls) == 2:
            raise aioopentok.RequestError("reset after the request went out")
        return replies.session_created(SID, KEY)

    async with make_client(MockTransport(flaky)) as client:
        with pytest.raises(aioopentok.RequestError, match="reset"):
            await client.create_session()
    assert len(calls) == 2  # a retried POST could make a second session


async def test_the_archive_url_is_the_whole_body() -> None:
    url = "https://storage.test/459782/a/v.flv?Signature=abc%2Bdef%3D&Expires=1346804833"
    transport = MockTransport(lambda request: replies.archive_url(url))
    token = moderator()
    async with make_client(transport) as client:
        assert await client.download_archive_url(ARCHIVE, VIDEO, token) == url
    assert transport.requests[0].url == f"{API}/archive/url/{ARCHIVE}/{VIDEO}"
    assert transport.requests[0].headers["X-TB-TOKEN-AUTH"] == token


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        (lambda: replies.errors(403), aioopentok.AuthError, "403"),
        (
            lambda: replies.errors(404, f"Archive {ARCHIVE} not found"),
            aioopentok.NotFoundError,
            "404",
        ),
        (lambda: replies.errors(100), aioopentok.APIError, "100"),
    ],
)
async def test_errors_bodies_with_http_200_map_to_exceptions(
    reply: object, error: type[aioopentok.APIError], code: str
) -> None:
    transport = MockTransport(lambda request: reply())  # type: ignore[operator]
    async with make_client(transport) as client:
        with pytest.raises(error) as caught:
            await client.get_archive_manifest(ARCHIVE, moderator())
    assert type(caught.value) is error
    assert caught.value.status == 200 and caught.value.code == code
    assert len(transport.requests) == 1  # an <Errors> reply is final, not retried


async def test_an_async_handler_and_an_unrouted_path_giving_nginx_404() -> None:
    router = Router()

    @router.route("*", "archive/delete/{archive_id}")
    async def delete(request: HTTPRequest) -> HTTPResponse:
        assert router.params(request) == {"archive_id": ARCHIVE}
        return replies.deleted()

    transport = MockTransport(router)
    async with make_client(transport) as client:
        await client.delete_archive(ARCHIVE, moderator())
        with pytest.raises(aioopentok.NotFoundError) as caught:
            await client.get_archive_manifest(ARCHIVE, moderator())
    assert caught.value.status == 404  # production's HTML 404, judged by its status
    assert [r.method for r in transport.requests] == ["POST", "GET"]


async def test_a_handler_returning_something_else_is_a_clear_type_error() -> None:
    transport = MockTransport(lambda request: b"<manifest/>")  # type: ignore[arg-type,return-value]
    async with make_client(transport) as client:
        with pytest.raises(TypeError, match="not an HTTPResponse"):
            await client.get_archive_manifest(ARCHIVE, moderator())


async def test_a_gzip_bomb_reply_raises_response_error_under_the_cap() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB from ~64 KiB

    def handler(request: HTTPRequest) -> HTTPResponse:
        assert "gzip" in request.headers["Accept-Encoding"]
        return replies.response(200, bomb, {"Content-Encoding": "gzip"})

    async with make_client(MockTransport(handler)) as client:
        with pytest.raises(aioopentok.ResponseError, match="cap"):
            await client.get_archive_manifest(ARCHIVE, moderator())


def storage_router(
    data: bytes, urls: list[str], *, expired: frozenset[str] = frozenset()
) -> Router:
    """The API signs ``urls`` one after another; storage serves ``data``, refusing ``expired``."""
    router = Router()
    issued = iter(urls)
    router.add(
        "GET",
        "archive/getmanifest/{archive_id}",
        lambda r: replies.manifest(ARCHIVE, [(VIDEO, len(data))]),
    )
    router.add(
        "GET", "archive/url/{archive_id}/{video_id}", lambda r: replies.archive_url(next(issued))
    )

    def serve(request: HTTPRequest) -> HTTPResponse:
        if request.url in expired:
            return replies.s3_error(403, "AccessDenied", "Request has expired")
        return replies.storage(data, request)

    router.add("GET", "https://storage.test/{video}.flv", serve)
    return router


async def test_a_download_writes_the_exact_flv_bytes_over_ranges(tmp_path: Path) -> None:
    data = replies.flv(300_000, seed=7)
    transport = MockTransport(storage_router(data, ["https://storage.test/v.flv?Signature=1"]))
    async with make_client(transport) as client:
        result = await client.download_video(
            ARCHIVE, VIDEO, moderator(), tmp_path, part_size=64 * 1024, connections=3
        )
    assert result.path.read_bytes() == data
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    gets = [r for r in transport.requests if r.url.startswith("https://storage.test/")]
    assert gets[0].headers["Range"] == "bytes=0-65535"
    assert len(gets) == 5  # ceil(300,000 / 65,536) ranges
    assert all("X-TB-TOKEN-AUTH" not in r.headers for r in gets)  # the token stays home


async def test_an_expired_storage_url_is_replaced_by_exactly_one_fresh_one(tmp_path: Path) -> None:
    data = replies.flv(100_000)
    old, new = (
        "https://storage.test/v.flv?Signature=old",
        "https://storage.test/v.flv?Signature=new",
    )
    transport = MockTransport(storage_router(data, [old, new], expired=frozenset({old})))
    async with make_client(transport) as client:
        results = await client.download_archive(ARCHIVE, moderator(), tmp_path)
    assert [r.error for r in results] == [None]
    assert results[0].path.read_bytes() == data
    signs = [r for r in transport.requests if "/archive/url/" in r.url]
    assert len(signs) == 2  # the first URL, then one fresh URL after storage's 403
    assert transport.requests[-1].url == new


async def test_stitch_replies_processing_then_ready_and_routes_by_method() -> None:
    answers = iter(
        [replies.stitch_processing(), replies.stitch_ready("https://storage.test/s.mp4")]
    )
    router = Router()
    router.add("POST", "archive/{archive_id}/stitch", lambda request: next(answers))
    transport = MockTransport(router)
    async with make_client(transport) as client:
        assert not (await client.stitch_archive(ARCHIVE)).ready
        done = await client.stitch_archive(ARCHIVE)
    assert done.ready and done.url == "https://storage.test/s.mp4"
    assert transport.requests[0].headers["X-TB-PARTNER-AUTH"] == f"{KEY}:{SECRET}"
    get = HTTPRequest("GET", f"{API}/archive/{ARCHIVE}/stitch")
    assert router.params(get) == {}  # a GET is not routed: production's nginx 404
    assert router(get).status == 404  # type: ignore[union-attr]


def test_a_handler_must_be_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        MockTransport(replies.deleted())  # type: ignore[arg-type]
