"""The reply builders give the recorded bytes (tests/samples) and S3's range semantics."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aioopentok.emulator import FlvVideo
from aioopentok.testing import HTTPRequest, HTTPResponse, replies

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
ARCHIVE = "200567af-0726-4e93-883b-fe0426d6310a"
STORAGE = "https://storage.test/v.flv?Signature=x"


async def body(response: HTTPResponse) -> bytes:
    try:
        return b"".join([chunk async for chunk in response])
    finally:
        await response.aclose()


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


async def test_session_created_is_the_recorded_production_reply() -> None:
    reply = replies.session_created(
        "2_MX40NTk3ODJ-fjIwMTItMDktMDQgMjM6Mjc6MTIuNzY3ODY5KzAwOjAwfjAuNTQzNTEwNTE4NjQxfg",
        459782,
        create_dt=datetime(2012, 9, 4, 23, 27, 12, 767869, tzinfo=UTC),
    )
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert await body(reply) == sample("create_session_production.xml").rstrip(b"\n")


async def test_a_made_up_session_id_embeds_the_partner_id() -> None:
    text = (await body(replies.session_created(partner_id=45678))).decode()
    assert "<session_id>2_MX40NTY3OH4" in text  # base64 of "1~45678~"


@pytest.mark.parametrize(
    ("reply", "name"),
    [
        (lambda: replies.errors(403), "error_403_not_authorized.xml"),
        (
            lambda: replies.errors(404, f"Archive {ARCHIVE} not found"),
            "error_404_item_not_found.xml",
        ),
        (lambda: replies.errors(100), "error_100_bare.xml"),
    ],
)
async def test_errors_are_the_recorded_bodies_with_http_200(reply: object, name: str) -> None:
    response = reply()  # type: ignore[operator]
    assert response.status == 200
    assert await body(response) == sample(name)


async def test_the_manifest_has_the_recorded_layout() -> None:
    videos = [("bbf108c9-7237-49ae-9057-2ccdb71cf675", 5_000_000), ("3f0d3ec6", 70_000, "cam")]
    text = (await body(replies.manifest(ARCHIVE, videos))).decode()
    recorded = sample("manifest.xml").decode()
    assert text.splitlines()[0] == recorded.splitlines()[0]  # version, archiveid, title
    assert text.endswith("</manifest>\n\n\n") and recorded.endswith("</manifest>\n\n\n")
    tags = FlvVideo("any", "any", 5_000_000).tag_count
    assert f'length="{tags * 40}" name=""/>' in text
    assert 'id="3f0d3ec6" length="80" name="cam"/>' in text  # two tags: 80 ms
    assert 'offset="1255"' in text and 'offset="1263"' in text


async def test_archive_url_and_s3_error_bodies() -> None:
    url = sample("archive_url.txt").decode()
    reply = replies.archive_url(url)
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert await body(reply) == url.encode()
    error = replies.s3_error(403, "AccessDenied", "Request has expired")
    assert error.status == 403
    assert (await body(error)).endswith(
        b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    )


def test_flv_is_a_valid_deterministic_file_of_the_exact_size() -> None:
    data = replies.flv(100_000, seed=3)
    assert len(data) == 100_000
    assert data[:3] == b"FLV" and data[3] == 1 and int.from_bytes(data[5:9], "big") == 9
    assert data[9:13] == b"\0\0\0\0"  # PreviousTagSize0
    # The last tag's PreviousTagSize closes the file: 11 header bytes + its payload.
    last = int.from_bytes(data[-4:], "big")
    assert data[-4 - last] == 9  # a video tag starts there
    assert replies.flv(100_000, seed=3) == data != replies.flv(100_000, seed=4)
    with pytest.raises(ValueError):
        replies.flv(10)


@pytest.mark.parametrize(
    ("range_header", "status", "content_range", "part"),
    [
        (None, 200, None, slice(0, 1000)),
        ("bytes=0-99", 206, "bytes 0-99/1000", slice(0, 100)),
        ("bytes=900-", 206, "bytes 900-999/1000", slice(900, 1000)),
        ("bytes=950-5000", 206, "bytes 950-999/1000", slice(950, 1000)),
        ("bytes=-10", 206, "bytes 990-999/1000", slice(990, 1000)),
        ("bytes=1000-", 416, "bytes */1000", slice(0, 0)),
    ],
)
async def test_storage_honours_range_like_s3(
    range_header: str | None, status: int, content_range: str | None, part: slice
) -> None:
    data = bytes(range(250)) * 4
    headers = {} if range_header is None else {"range": range_header}  # any header case
    reply = replies.storage(data, HTTPRequest("GET", STORAGE, headers))
    assert reply.status == status
    assert reply.headers.get("Content-Range") == content_range
    assert reply.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert await body(reply) == data[part]


async def test_status_replies_carry_retry_after() -> None:
    reply = replies.status(503, retry_after=1.5)
    assert (reply.status, reply.headers["Retry-After"]) == (503, "2")  # whole seconds, up
    assert await body(reply) == b"Service Unavailable"
