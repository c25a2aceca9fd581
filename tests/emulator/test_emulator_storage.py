"""The storage host: signed URLs, Range, HEAD, ETag, expiry, leak counting, big videos."""

from __future__ import annotations

import hashlib
import time
import tracemalloc

import aiohttp
import pytest
from emulator_helpers import build_token

from aioopentok.emulator import Emulator, FlvVideo
from aioopentok.emulator._flv import MIN_SIZE, TAG_SIZE
from aioopentok.emulator._storage import parse_range


async def _url(emu: Emulator, http: aiohttp.ClientSession, aid: str, vid: str) -> str:
    sid = emu.archives[aid].session_id
    headers = {"X-TB-TOKEN-AUTH": build_token(sid)}
    async with http.get(f"{emu.url}/archive/url/{aid}/{vid}", headers=headers) as r:
        return await r.text()


async def _video(emu: Emulator, size: int) -> tuple[str, str]:
    aid = emu.add_archive(emu.create_session_id(), [size])
    return aid, emu.archives[aid].videos[0].id


def _parse_flv(data: bytes) -> int:
    """Walk the tag chain; return the number of tags (asserts the structure is valid)."""
    assert data[:13] == b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
    pos, tags, last_ts = 13, 0, -1
    while pos < len(data):
        assert data[pos] in (8, 9)
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | data[pos + 7] << 24
        assert ts > last_ts
        last_ts = ts
        assert data[pos + 8 : pos + 11] == b"\x00\x00\x00"
        end = pos + 11 + size
        assert int.from_bytes(data[end : end + 4], "big") == 11 + size
        pos, tags = end + 4, tags + 1
    assert pos == len(data)
    return tags


@pytest.mark.parametrize(
    "size",
    [MIN_SIZE, MIN_SIZE + 1, 1000, TAG_SIZE + 13, TAG_SIZE + 13 + 5, 16 * TAG_SIZE + 13 + 15,
     3 * 1024 * 1024 + 7],
)  # fmt: skip
def test_flv_is_valid_and_exact_size(size: int) -> None:
    flv = FlvVideo("a", "v", size)
    data = flv.read()
    assert len(data) == size
    assert _parse_flv(data) == flv.tag_count
    assert flv.digest() == hashlib.sha256(data).hexdigest()
    # Any range is the matching slice of the whole.
    for start, end in [(0, 1), (5, 20), (size - 3, size), (size // 3, size // 2 + 1)]:
        assert flv.read(start, end) == data[start:end]


def test_flv_is_deterministic_and_per_video() -> None:
    assert FlvVideo("a", "v", 5000).read() == FlvVideo("a", "v", 5000).read()
    assert FlvVideo("a", "v", 5000).read() != FlvVideo("a", "w", 5000).read()
    assert FlvVideo("a", "v", 5000).etag() == FlvVideo("a", "v", 5000).etag()
    assert FlvVideo("a", "v", 5000).etag() != FlvVideo("a", "w", 5000).etag()
    with pytest.raises(ValueError):
        FlvVideo("a", "v", MIN_SIZE - 1)


def test_parse_range() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=10-", 100) == (10, 100)
    assert parse_range("bytes=10-19", 100) == (10, 20)
    assert parse_range("bytes=10-1000", 100) == (10, 100)
    assert parse_range("bytes=-30", 100) == (70, 100)
    assert parse_range("bytes=0-1,5-6", 100) is None
    assert parse_range("items=1-2", 100) is None


async def test_get_head_range_etag(emu: Emulator, http: aiohttp.ClientSession) -> None:
    aid, vid = await _video(emu, 300_000)
    url = await _url(emu, http, aid, vid)
    whole = emu.video_bytes(aid, vid)
    async with http.get(url) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "video/x-flv"
        assert r.headers["Accept-Ranges"] == "bytes"
        assert r.headers["Content-Length"] == "300000"
        etag = r.headers["ETag"]
        assert await r.read() == whole
    async with http.head(url) as r:
        assert r.status == 200
        assert r.headers["Content-Length"] == "300000"
        assert r.headers["ETag"] == etag
        assert await r.read() == b""
    async with http.get(url, headers={"Range": "bytes=1000-"}) as r:
        assert r.status == 206
        assert r.headers["Content-Range"] == "bytes 1000-299999/300000"
        assert await r.read() == whole[1000:]
    async with http.get(url, headers={"Range": "bytes=10-19"}) as r:
        assert r.status == 206
        assert r.headers["Content-Range"] == "bytes 10-19/300000"
        assert await r.read() == whole[10:20]
    async with http.get(url, headers={"Range": "bytes=300000-"}) as r:
        assert r.status == 416
        assert r.headers["Content-Range"] == "bytes */300000"
    assert emu.video_digest(aid, vid) == hashlib.sha256(whole).hexdigest()
    assert emu.storage_auth_leaks == 0


async def test_bad_or_expired_url_is_403(emu: Emulator, http: aiohttp.ClientSession) -> None:
    aid, vid = await _video(emu, 1000)
    url = await _url(emu, http, aid, vid)
    for bad in (url.replace("Signature=", "Signature=0"), url.split("?")[0],
                url.replace("Expires=", "Expires=1")):  # fmt: skip
        async with http.get(bad) as r:
            assert r.status == 403
            assert "<Code>AccessDenied</Code>" in await r.text()
    emu.clock = lambda: time.time() + 3601  # default lifetime is one hour
    async with http.get(url) as r:
        assert r.status == 403
        assert "Request has expired" in await r.text()
    emu.faults.url_lifetime = 0
    emu.clock = time.time
    async with http.get(await _url(emu, http, aid, vid)) as r:
        assert r.status == 403


async def test_storage_auth_leaks_are_counted(emu: Emulator, http: aiohttp.ClientSession) -> None:
    aid, vid = await _video(emu, 1000)
    url = await _url(emu, http, aid, vid)
    for header in ("X-TB-TOKEN-AUTH", "x-tb-partner-auth", "X-Tb-Token-Auth"):
        async with http.get(url, headers={header: "x"}) as r:
            assert r.status == 200
    async with http.head(url) as r:
        assert r.status == 200
    assert emu.storage_auth_leaks == 3


async def test_chunked_storage(emu: Emulator, http: aiohttp.ClientSession) -> None:
    aid, vid = await _video(emu, 200_000)
    emu.faults.chunked_storage = True
    async with http.get(await _url(emu, http, aid, vid)) as r:
        assert "Content-Length" not in r.headers
        assert r.headers["Transfer-Encoding"] == "chunked"
        assert await r.read() == emu.video_bytes(aid, vid)


def test_two_gib_video_tail_is_instant() -> None:
    size = 2 * 1024**3 + 12345
    flv = FlvVideo("a", "v", size)
    started = time.process_time()  # CPU, not wall time: a loaded machine must not fail this
    tail = flv.read(size - 100, size)
    middle = flv.read(size // 2, size // 2 + 5000)
    # Generating 2 GiB to reach its tail would take seconds of CPU; slicing takes milliseconds.
    assert time.process_time() - started < 0.5
    assert len(tail) == 100 and len(middle) == 5000
    assert tail[-4:] == (int.from_bytes(tail[-4:], "big")).to_bytes(4, "big")


async def test_big_video_ranges_over_http(emu: Emulator, http: aiohttp.ClientSession) -> None:
    size = 64 * 1024**2 + 12345
    aid, vid = await _video(emu, size)
    url = await _url(emu, http, aid, vid)
    flv = FlvVideo(aid, vid, size)
    async with http.get(url, headers={"Range": "bytes=-100"}) as r:
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes {size - 100}-{size - 1}/{size}"
        assert await r.read() == flv.read(size - 100, size)
    async with http.get(url, headers={"Range": "bytes=33554000-33556000"}) as r:
        assert await r.read() == flv.read(33554000, 33556001)


async def test_streaming_200_mib_keeps_memory_flat(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    aid, vid = await _video(emu, 200 * 1024 * 1024)
    url = await _url(emu, http, aid, vid)
    emu.video_md5(aid, vid)  # the ETag's one-off pass over the file, outside the measurement
    h = hashlib.sha256()
    tracemalloc.start()
    try:
        async with http.get(url) as r:
            async for chunk in r.content.iter_chunked(1 << 20):
                h.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert h.hexdigest() == emu.video_digest(aid, vid)
    assert peak < 32 * 1024 * 1024, peak


async def test_close_does_not_wait_for_abandoned_download() -> None:
    emu = await Emulator("12345", "0123456789abcdef0123456789abcdef01234567").start()
    async with aiohttp.ClientSession() as http:
        aid, vid = await _video(emu, 1 << 28)
        r = await http.get(await _url(emu, http, aid, vid))
        await r.content.read(1000)
        started = time.perf_counter()
        await emu.close()
        assert time.perf_counter() - started < 5
        r.close()
