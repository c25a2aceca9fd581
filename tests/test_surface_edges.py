"""Edges of the public surface a user review found: case-insensitive request headers for
handlers, reprs without signed queries, one read per reply, views of views, hosts aiohttp
cannot encode."""

from __future__ import annotations

from pathlib import Path

import pytest

from aioopentok import Client, HTTPRequest, HTTPResponse, ResponseError, Role
from aioopentok.testing import MockTransport, Router, replies

SID = "1_MX4xMjM0NX4xMjcuMC4wLjF-VHVlIFNlcCAwNCAxNDo1MzowMiBQRFQgMjAxMn4wLjUyMTE4MTN-"
SECRET = "0123456789abcdef0123456789abcdef01234567"
AID = "200567af-0726-4e93-883b-fe0426d6310a"
SIGNED = "https://s3.amazonaws.com/b/v1.flv?Signature=SECRETSIG&Expires=1&AWSAccessKeyId=AK"


def test_request_headers_are_case_insensitive_and_the_repr_hides_the_query() -> None:
    request = HTTPRequest("GET", SIGNED, {"X-TB-TOKEN-AUTH": "T1==x"})
    assert request.headers.get("x-tb-token-auth") == "T1==x"
    assert "SECRETSIG" not in repr(request) and "/b/v1.flv" in repr(request)


async def test_a_reply_body_is_read_once() -> None:
    reply = replies.deleted()
    assert isinstance(reply, HTTPResponse)
    async for _ in reply:
        pass
    with pytest.raises(RuntimeError, match="fresh one per request"):
        async for _ in reply:
            pass


async def test_a_view_of_a_view_closes_with_the_root() -> None:
    client = Client(12345, SECRET, transport=MockTransport(lambda _: replies.deleted()))
    grandchild = client.with_retry(1).with_retry(2)
    token = client.generate_token(SID, Role.MODERATOR)
    await grandchild.delete_archive(AID, token)
    await client.close()
    with pytest.raises(RuntimeError, match="closed"):
        await grandchild.delete_archive(AID, token)


async def test_a_bad_archive_url_reply_keeps_no_query_in_its_excerpt() -> None:
    transport = MockTransport(lambda _: replies.response(200, SIGNED + " x"))
    async with Client(12345, SECRET, transport=transport) as client:
        with pytest.raises(ResponseError) as info:
            await client.download_archive_url(AID, "v1", client.generate_token(SID, "moderator"))
    assert "SECRETSIG" not in (info.value.body_excerpt or "") and "SECRETSIG" not in str(
        info.value
    )


async def test_a_storage_host_aiohttp_cannot_encode_fails_that_video_only(tmp_path: Path) -> None:
    from aioopentok import AiohttpTransport

    real = AiohttpTransport()
    router = Router()
    router.add("*", "archive/getmanifest/{a}", lambda _: replies.manifest(
        AID, videos=[("v1", 100, ""), ("v2", 100, "")]))  # fmt: skip
    bad = "https://s3..amazonaws.com/b/v.flv?Signature=SECRETSIG"
    router.add("*", "archive/url/{a}/{v}", lambda _: replies.archive_url(bad))

    async def storage(request: HTTPRequest) -> HTTPResponse:
        return await real.send(request)  # aiohttp itself meets the host

    router.add("GET", "https://s3..amazonaws.com/b/v.flv", storage)

    async def no_sleep(_: float) -> None:
        pass

    try:
        async with Client(12345, SECRET, transport=MockTransport(router), sleep=no_sleep) as c:
            token = c.generate_token(SID, Role.MODERATOR)
            results = await c.download_archive(AID, token, tmp_path)
    finally:
        await real.aclose()
    assert [r.ok for r in results] == [False, False]  # each video failed, nothing raised
    assert all("cannot be requested" in str(r.error) for r in results)
    assert all("SECRETSIG" not in str(r.error) for r in results)


async def test_a_delete_whose_reply_a_gateway_lost_then_404_counts_as_deleted() -> None:
    answers = [replies.status(504), replies.errors(404, f"Archive {AID} not found")]
    transport = MockTransport(lambda _: answers.pop(0))

    async def no_sleep(_: float) -> None:
        pass

    async with Client(12345, SECRET, transport=transport, sleep=no_sleep) as client:
        await client.delete_archive(AID, client.generate_token(SID, Role.MODERATOR))
    assert answers == [] and len(transport.requests) == 2
