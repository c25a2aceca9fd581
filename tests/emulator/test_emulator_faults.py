"""Every fault knob, switched at run time on a live emulator."""

from __future__ import annotations

import gzip
import time
from email.utils import parsedate_to_datetime

import aiohttp
import pytest
from emulator_helpers import KEY, SECRET, build_token

from aioopentok.emulator import Emulator, Faults

AUTH = {"X-TB-PARTNER-AUTH": f"{KEY}:{SECRET}"}


async def _create(http: aiohttp.ClientSession, emu: Emulator) -> aiohttp.ClientResponse:
    async with http.post(f"{emu.url}/session/create", headers=AUTH) as r:
        await r.read()
        return r


async def _video_url(emu: Emulator, http: aiohttp.ClientSession, size: int) -> tuple[str, bytes]:
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [size])
    vid = emu.archives[aid].videos[0].id
    headers = {"X-TB-TOKEN-AUTH": build_token(sid)}
    async with http.get(f"{emu.url}/archive/url/{aid}/{vid}", headers=headers) as r:
        return await r.text(), emu.video_bytes(aid, vid)


async def test_fail_503_counts_down(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.fail_503 = 2
    emu.faults.retry_after = 2.5
    statuses = []
    for _ in range(3):
        r = await _create(http, emu)
        statuses.append((r.status, r.headers.get("Retry-After")))
    assert statuses == [(503, "2.5"), (503, "2.5"), (200, None)]
    emu.faults.fail_503, emu.faults.fail_status = 1, 429
    assert (await _create(http, emu)).status == 429
    assert len(emu.requests) == 4  # faulted requests are recorded too


async def test_fail_503_applies_to_storage(emu: Emulator, http: aiohttp.ClientSession) -> None:
    url, _ = await _video_url(emu, http, 1000)
    emu.faults.fail_503 = 1
    async with http.get(url) as r:
        assert r.status == 503
    async with http.get(url) as r:
        assert r.status == 200


async def test_reset_connections(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.reset_connections = 1
    with pytest.raises(aiohttp.ClientError):
        await _create(http, emu)
    assert (await _create(http, emu)).status == 200


async def test_delay(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.delay = 0.2
    started = time.perf_counter()
    await _create(http, emu)
    assert time.perf_counter() - started >= 0.2


async def test_date_offset(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.date_offset = -3600
    r = await _create(http, emu)
    skew = parsedate_to_datetime(r.headers["Date"]).timestamp() - time.time()
    assert -3610 < skew < -3590


async def test_cut_body_once_per_range_start_so_resume_finishes(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    url, whole = await _video_url(emu, http, 3_000_000)
    emu.faults.cut_body_after = 1_000_000
    got = b""
    attempts = 0
    while len(got) < len(whole):
        attempts += 1
        headers = {"Range": f"bytes={len(got)}-"} if got else {}
        try:
            async with http.get(url, headers=headers) as r:
                assert r.status in (200, 206)
                async for chunk in r.content.iter_chunked(65536):
                    got += chunk
        except aiohttp.ClientPayloadError:
            pass
        assert attempts < 10
    assert got == whole
    assert attempts == 3  # cut at 1 MB and 2 MB; the last range is only 1 MB long: not cut


async def test_cut_same_start_twice_is_not_cut_again(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    url, whole = await _video_url(emu, http, 500_000)
    emu.faults.cut_body_after = 1000
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.get(url) as r:
            await r.read()
    async with http.get(url) as r:
        assert await r.read() == whole


async def test_storage_403_then_fresh_url_works(emu: Emulator, http: aiohttp.ClientSession) -> None:
    url, whole = await _video_url(emu, http, 1000)
    emu.faults.storage_403 = 1
    async with http.get(url) as r:
        assert r.status == 403
        assert "Request has expired" in await r.text()
    async with http.get(url) as r:
        assert await r.read() == whole


async def test_expire_urls_after_bytes(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.expire_urls_after_bytes = 1
    url, whole = await _video_url(emu, http, 1000)
    async with http.head(url) as r:  # no body served: the URL stays good
        assert r.status == 200
    async with http.get(url) as r:
        assert await r.read() == whole
    async with http.get(url) as r:
        assert r.status == 403
    fresh, _ = await _video_url(emu, http, 1000)
    assert fresh != url
    async with http.get(fresh) as r:
        assert r.status == 200


def test_unknown_hostile_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="hostile"):
        Faults(hostile="nuke")
    f = Faults()
    with pytest.raises(ValueError, match="hostile"):
        f.hostile = "nuke"


async def test_hostile_replies(emu: Emulator, http: aiohttp.ClientSession) -> None:
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [1000])
    manifest_url = f"{emu.url}/archive/getmanifest/{aid}"
    token = {"X-TB-TOKEN-AUTH": build_token(sid)}
    bodies: dict[str, tuple[bytes, bytes, aiohttp.ClientResponse]] = {}
    for kind in ("entity_bomb", "external_entity", "oversized", "truncated", "bom", "gzip"):
        emu.faults.hostile = kind
        async with http.post(f"{emu.url}/session/create", headers=AUTH) as r:
            created = await r.read()
        async with http.get(manifest_url, headers=token) as r:
            bodies[kind] = (created, await r.read(), r)
    emu.faults.hostile = None
    async with http.get(manifest_url, headers=token) as r:
        clean = await r.read()

    created, manifest, _ = bodies["entity_bomb"]
    assert b"<!ENTITY lol9" in created and b"&lol9;" in created and b"&lol9;" in manifest
    created, manifest, _ = bodies["external_entity"]
    assert b'SYSTEM "file:///etc/passwd"' in created and b"&e;" in manifest
    created, manifest, r = bodies["oversized"]
    assert len(created) > 10_000_000 and created.startswith(b"<Sessions>")
    assert manifest.endswith(b"</manifest>\n\n\n") and "Content-Length" not in r.headers
    _, manifest, _ = bodies["truncated"]
    assert clean.startswith(manifest) and len(manifest) < len(clean)
    _, manifest, _ = bodies["bom"]
    assert manifest.startswith(b"\xef\xbb\xbf") and manifest.endswith(clean)
    _, manifest, r = bodies["gzip"]
    assert r.headers["Content-Encoding"] == "gzip" and gzip.decompress(manifest) == clean
