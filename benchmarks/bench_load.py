"""Load at full size (issue 6): 10,000 creates with 256 in flight; 200 faulty downloads.

Strategy: the same checks as ``tests/test_load.py`` at the issue's full size, against an
in-process emulator: no error, every file byte-exact, the pool drained (no connection left
acquired), peak open descriptors bounded by the connector limit, nothing left open after
``close()``. Figures printed (wall time, calls/s, peak descriptors) are for reading, never
asserted; a failed check exits 1.

Run alone: ``python benchmarks/bench_load.py [--creates N] [--videos N] [--size BYTES]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import aiohttp

from aioopentok import Client
from aioopentok.emulator import Emulator

LIMIT = 100  # the Client's default connector limit


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _sample(peak: list[int]) -> None:
    while True:
        peak[0] = max(peak[0], _fds())
        await asyncio.sleep(0.01)


def _drained(client: Client) -> bool:
    connector = client.http_session.connector
    return isinstance(connector, aiohttp.TCPConnector) and not connector._acquired


async def creates(n: int, in_flight: int) -> bool:
    async with Emulator() as emu:
        base = _fds()
        peak = [base]
        async with Client(emu.api_key, emu.api_secret, api_url=emu.url, limit=LIMIT) as client:
            sampler = asyncio.create_task(_sample(peak))
            gate = asyncio.Semaphore(in_flight)

            async def one() -> str:
                async with gate:
                    return (await client.create_session()).session_id

            started = time.perf_counter()
            ids = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
            elapsed = time.perf_counter() - started
            sampler.cancel()
            errors = [i for i in ids if isinstance(i, BaseException)]
            drained = _drained(client)
        gc.collect()
        after = _fds()
    ok = not errors and len(set(ids)) == n and drained and peak[0] - base <= 2 * LIMIT + 16
    print(
        f"creates: {n} with {in_flight} in flight in {elapsed:.1f} s ({n / elapsed:.0f}/s); "
        f"errors {len(errors)}; drained {drained}; peak fds +{peak[0] - base} "
        f"(limit {LIMIT}, 2 per socket in-process); after close +{after - base}"
    )
    return ok


async def downloads(n: int, size: int, folder: Path) -> bool:
    async def sleep(delay: float) -> None:
        await asyncio.sleep(min(delay, 0.01))

    async with Emulator() as emu:
        sid = emu.create_session_id()
        videos: list[tuple[str, str]] = []
        while len(videos) < n:
            aid = emu.add_archive(sid, [size + 13 * len(videos) + k for k in range(4)])
            videos += [(aid, v.id) for v in emu.archives[aid].videos]
        videos = videos[:n]
        faults = emu.faults
        faults.cut_body_after = size // 3
        faults.reset_connections = n // 5
        faults.fail_503 = n // 5
        faults.retry_after = 0
        faults.storage_403 = n // 10
        async with Client(
            emu.api_key, emu.api_secret, api_url=emu.url, sleep=sleep, retry=8
        ) as client:
            token = client.generate_token(sid, role="moderator")
            started = time.perf_counter()
            results = await asyncio.gather(
                *(client.download_video(a, v, token, folder / f"{a}-{v}.flv") for a, v in videos),
                return_exceptions=True,
            )
            elapsed = time.perf_counter() - started
            drained = _drained(client)
        bad = 0
        for (aid, vid), result in zip(videos, results, strict=True):
            if isinstance(result, BaseException):
                bad += 1
                continue
            digest = hashlib.sha256(result.path.read_bytes()).hexdigest()
            bad += digest != emu.video_digest(aid, vid)
    total = sum(emu.video_size(a, v) for a, v in videos)
    print(
        f"downloads: {n} concurrent, {total / 2**20:.0f} MiB with faults in {elapsed:.1f} s; "
        f"not byte-exact {bad}; drained {drained}"
    )
    return bad == 0 and drained


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=10_000)
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--size", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    ok = await creates(args.creates, args.in_flight)
    with tempfile.TemporaryDirectory() as folder:
        ok = await downloads(args.videos, args.size, Path(folder)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    warnings.simplefilter("error", ResourceWarning)
    sys.exit(asyncio.run(main(sys.argv[1:])))
