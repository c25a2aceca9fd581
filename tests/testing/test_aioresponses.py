"""aioresponses mocks our Client's aiohttp requests, on the aiohttp versions where it works.

Upstream aioresponses (0.7.9, the latest) builds each mocked reply as
``ClientResponse(method, url, **kwargs)``; aiohttp 3.14.0 added a required keyword-only
``stream_writer`` argument, so there every mocked request raises ``TypeError`` before a reply
exists (reported upstream as pnuckowski/aioresponses#289). Those tests skip there with the
observed error as the reason; ``aioopentok.testing.MockTransport`` is the tool that works
everywhere. The probe is the breakage itself, not a version number, so a fixed release runs
these tests again by itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict
from yarl import URL

import aioopentok
from aioopentok.testing import HTTPRequest, HTTPResponse, replies

aioresponses_module = pytest.importorskip("aioresponses")
from aioresponses import CallbackResult, aioresponses  # noqa: E402
from aioresponses.core import RequestMatch  # noqa: E402

KEY = "12345"
SECRET = "0123456789abcdef0123456789abcdef01234567"
API = "https://api.test/hl"
SID = "1_MX4xMjM0NX4xMjcuMC4wLjF-VHVlIFNlcCAwNCAxNDo1MzowMiBQRFQgMjAxMn4wLjUyMTE4MTN-"
ARCHIVE = "200567af-0726-4e93-883b-fe0426d6310a"
VIDEO = "bbf108c9-7237-49ae-9057-2ccdb71cf675"


def upstream_breakage() -> str | None:
    """Return why upstream aioresponses cannot mock this aiohttp, or None if it can."""
    try:
        RequestMatch("http://probe.test/")._build_response(URL("http://probe.test/")).close()
    except TypeError as exc:
        if "stream_writer" not in str(exc):
            raise  # some other breakage: let it fail loudly, not skip
        return (
            f"aioresponses {version('aioresponses')} is broken on aiohttp "
            f"{aiohttp.__version__} (TypeError: {exc}; aiohttp 3.14.0 made that argument "
            "required): use aioopentok.testing.MockTransport"
        )
    return None


BROKEN = upstream_breakage()
works = pytest.mark.skipif(BROKEN is not None, reason=BROKEN or "")


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def wire(reply: HTTPResponse) -> dict[str, Any]:
    """A reply builder's status, headers and bytes, as aioresponses' ``add`` arguments."""
    try:
        body = b"".join([chunk async for chunk in reply])
    finally:
        await reply.aclose()
    headers = {k: v for k, v in reply.headers.items() if k.lower() != "content-type"}
    return {
        "status": reply.status,
        "body": body,
        "headers": headers,
        "content_type": reply.headers.get("Content-Type", "text/plain"),
    }


def client(sleep: FakeSleep | None = None) -> aioopentok.Client:
    return aioopentok.Client(KEY, SECRET, api_url=API, sleep=sleep or FakeSleep())


def moderator() -> str:
    return aioopentok.generate_token(KEY, SECRET, SID, role="moderator")


@works
async def test_create_session_with_aioresponses() -> None:
    with aioresponses() as mocked:
        mocked.post(f"{API}/session/create", **await wire(replies.session_created(SID, KEY)))
        async with client() as c:
            session = await c.create_session("10.0.0.1")
        ((method, url), calls) = next(iter(mocked.requests.items()))
    assert session.session_id == SID
    assert (method, str(url)) == ("POST", f"{API}/session/create")
    assert calls[0].kwargs["headers"]["X-TB-PARTNER-AUTH"] == f"{KEY}:{SECRET}"


@works
async def test_a_manifest_after_a_503_with_aioresponses() -> None:
    url = f"{API}/archive/getmanifest/{ARCHIVE}"
    sleep = FakeSleep()
    with aioresponses() as mocked:
        mocked.get(url, **await wire(replies.status(503, retry_after=1)))
        mocked.get(url, **await wire(replies.manifest(ARCHIVE, [(VIDEO, 100_000)])))
        async with client(sleep) as c:
            archive = await c.get_archive_manifest(ARCHIVE, moderator())
        assert len(mocked.requests[("GET", URL(url))]) == 2
    assert sleep.delays == [1.0]
    assert [v.id for v in archive.resources] == [VIDEO]


@works
async def test_an_archive_url_with_aioresponses() -> None:
    signed = "https://storage.test/v.flv?Signature=abc%2Bdef%3D&Expires=1346804833"
    with aioresponses() as mocked:
        mocked.get(
            f"{API}/archive/url/{ARCHIVE}/{VIDEO}", **await wire(replies.archive_url(signed))
        )
        async with client() as c:
            assert await c.download_archive_url(ARCHIVE, VIDEO, moderator()) == signed


@works
async def test_a_download_with_aioresponses(tmp_path: Path) -> None:
    data = replies.flv(200_000, seed=1)
    signed = "https://storage.test/v.flv?Signature=s"
    ranges: list[str | None] = []

    async def storage(url: URL, **kwargs: Any) -> CallbackResult:
        headers: Mapping[str, str] = CIMultiDict(kwargs["headers"])
        assert "X-TB-TOKEN-AUTH" not in headers  # the token never goes to storage
        ranges.append(headers.get("Range"))
        reply = await wire(replies.storage(data, HTTPRequest("GET", str(url), headers)))
        return CallbackResult(**reply)

    with aioresponses() as mocked:
        mocked.get(
            f"{API}/archive/url/{ARCHIVE}/{VIDEO}", **await wire(replies.archive_url(signed))
        )
        mocked.get(re.compile(r"https://storage\.test/v\.flv\?.*"), callback=storage, repeat=True)
        async with client() as c:
            result = await c.download_video(
                ARCHIVE, VIDEO, moderator(), tmp_path / "v.flv", part_size=64 * 1024
            )
    assert result.path.read_bytes() == data
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert ranges[0] == "bytes=0-65535" and len(ranges) == 4


@pytest.mark.skipif(BROKEN is None, reason="aioresponses works on this aiohttp")
async def test_where_we_skip_upstream_aioresponses_fails_as_reported() -> None:
    # The skip reason is a fact: the mocked request itself fails, before our code sees a reply.
    with aioresponses() as mocked:
        mocked.post(f"{API}/session/create", body=b"<Sessions/>")
        async with client() as c:
            with pytest.raises(TypeError, match="stream_writer"):
                await c.create_session()
