"""The emulator at account scale: videos of O(1) memory, fast compact seeding, the LIST file."""

from __future__ import annotations

import asyncio
import gc
import random
import re
import sys
import tracemalloc
from pathlib import Path

import aiohttp
import pytest
from emulator_helpers import KEY, SECRET, build_token

from aioopentok.emulator import Emulator, FlvVideo
from aioopentok.emulator._flv import FLV_HEADER, TAG_SIZE

MiB = 1024 * 1024
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def _walk(data: bytes) -> int:
    """Check the FLV tag chain from the header on; return the number of tags."""
    assert data[:13] == FLV_HEADER
    pos, tags = 13, 0
    while pos < len(data):
        assert data[pos] == 9
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | data[pos + 7] << 24
        assert ts == tags * 40
        assert int.from_bytes(data[pos + 11 + size : pos + 15 + size], "big") == 11 + size
        pos, tags = pos + 15 + size, tags + 1
    assert pos == len(data)
    return tags


def test_any_range_is_the_same_slice_of_the_same_bytes() -> None:
    size = 3 * MiB + 4321
    whole = FlvVideo("a", "v", size).read()
    assert _walk(whole) == FlvVideo("a", "v", size).tag_count
    rng = random.Random(7)
    edges = [0, 1, 12, 13, 14, 13 + TAG_SIZE - 1, 13 + TAG_SIZE, size - 5, size]
    cuts = edges + [rng.randrange(size) for _ in range(40)]
    for _ in range(60):
        start, end = sorted(rng.sample(cuts, 2))
        fresh = FlvVideo("a", "v", size)  # a new object every time, as the storage route makes
        assert fresh.read(start, end) == whole[start:end], (start, end)
        chunk = rng.choice([1000, 4096, 65536, 300_000])
        pieces = list(fresh.iter_range(start, end, chunk=chunk))
        assert all(len(p) <= chunk for p in pieces)
        assert b"".join(pieces) == whole[start:end]


def test_videos_differ_in_every_tag() -> None:
    a, b = FlvVideo("a", "v", 2 * MiB).read(), FlvVideo("a", "w", 2 * MiB).read()
    for tag in range(2 * MiB // TAG_SIZE - 1):
        lo = 13 + tag * TAG_SIZE
        assert a[lo : lo + TAG_SIZE] != b[lo : lo + TAG_SIZE], tag


def test_reading_many_videos_keeps_nothing_per_video() -> None:
    # Each video used to cache a 1 MiB template once read: 200 videos held 200 MiB.
    emu = Emulator()
    seeded = emu.seed_archives(100, videos_per_archive=2, video_size=2 * MiB)
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for aid, _sid in seeded:
            for video in emu.archives[aid].videos:
                assert emu.video_bytes(aid, video.id, 0, 4)[:4] == b"FLV\x01"
                emu.video_bytes(aid, video.id, MiB, MiB + 70_000)
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 256 * 1024, after - before
    assert peak - before < 8 * MiB, peak - before


def test_seed_archives_each_in_its_own_session() -> None:
    emu = Emulator(KEY, SECRET)
    seeded = emu.seed_archives(50, videos_per_archive=3, video_size=5000)
    assert len(seeded) == 50
    assert len({sid for _, sid in seeded}) == 50 == len({aid for aid, _ in seeded})
    video_ids: set[str] = set()
    for aid, sid in seeded:
        archive = emu.archives[aid]
        assert archive.session_id == sid and sid in emu.sessions
        assert [v.size for v in archive.videos] == [5000] * 3
        assert [v.offset_ms for v in archive.videos] == [1255, 1263, 1271]
        video_ids.update(v.id for v in archive.videos)
        assert re.fullmatch(UUID4, aid)
    assert len(video_ids) == 150
    assert emu.seed_archives(0) == []
    with pytest.raises(ValueError):
        emu.seed_archives(1, videos_per_archive=0)
    with pytest.raises(ValueError, match="at least"):
        emu.seed_archives(1, video_size=10)


def test_seeding_is_compact() -> None:
    emu = Emulator()
    gc.collect()
    tracemalloc.start()
    try:
        emu.seed_archives(5000, videos_per_archive=2, video_size=MiB)
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Measured ~1.0 KB per archive of 2 videos (session included); 100,000 fit in < 256 MB.
    assert used / 5000 < 1600, used / 5000


async def test_seeded_archives_serve_over_http(http: aiohttp.ClientSession) -> None:
    async with Emulator(KEY, SECRET) as emu:
        (aid, sid), _ = emu.seed_archives(2, videos_per_archive=1, video_size=3 * MiB + 17)
        vid = emu.archives[aid].videos[0].id
        token = {"X-TB-TOKEN-AUTH": build_token(sid)}
        async with http.get(f"{emu.url}/archive/getmanifest/{aid}", headers=token) as r:
            assert f'<video id="{vid}"' in await r.text()
        async with http.get(f"{emu.url}/archive/url/{aid}/{vid}", headers=token) as r:
            url = await r.text()
        whole = emu.video_bytes(aid, vid)
        rng = random.Random(3)
        for _ in range(6):
            a = rng.randrange(len(whole))
            b = rng.randrange(a, len(whole))
            async with http.get(url, headers={"Range": f"bytes={a}-{b}"}) as r:
                assert r.status == 206
                assert await r.read() == whole[a : b + 1]
        async with http.get(url) as r:
            assert await r.read() == whole


def _peak_rss_kb(pid: int) -> int:
    """Peak resident set size of a live process, from procfs (Linux)."""
    peak = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert peak is not None
    return int(peak[1])


async def test_cli_writes_the_list_file(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    listing = tmp_path / "LIST"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aioopentok.emulator", "--api-key", KEY, "--api-secret", SECRET,
        "--seed-archives", "30000", "--videos-per-archive", "2", "--video-size", str(MiB),
        "--export-list", str(listing), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = re.search(r"url=(\S+)", first)
        assert url is not None, first
        assert (await proc.stdout.readline()).decode() == f"export_list={listing} archives=30000\n"
        peak_kb = _peak_rss_kb(proc.pid)
        # Measured 70 MB for 30,000 and 143 MB for 100,000 (the old classes: ~1.8 KB each).
        assert peak_kb < 160 * 1024, peak_kb
        lines = listing.read_text().splitlines()
        assert len(lines) == 30000
        pairs = [line.split(" ") for line in lines]
        assert all(len(p) == 2 for p in pairs)
        assert len({aid for aid, _ in pairs}) == len({sid for _, sid in pairs}) == 30000
        for aid, sid in (pairs[0], pairs[-1]):
            headers = {"X-TB-TOKEN-AUTH": build_token(sid)}
            async with http.get(f"{url[1]}/archive/getmanifest/{aid}", headers=headers) as r:
                assert r.status == 200
                assert f'archiveid="{aid}"' in await r.text()
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_bounded_request_log_keeps_only_the_newest() -> None:
    import aiohttp

    from aioopentok.emulator import Emulator

    async with Emulator(max_recorded_requests=3) as emu, aiohttp.ClientSession() as http:
        for i in range(5):
            async with http.get(f"{emu.url}/nowhere/{i}") as reply:
                await reply.read()
        assert [r.path.rsplit("/", 1)[1] for r in emu.requests] == ["2", "3", "4"]
        emu.clear_requests()
        assert emu.requests == []
