"""Issue 6, load (quick versions; the full sizes are in benchmarks/load.py).

1,000 ``create_session`` calls with 256 in flight, and 200 concurrent video downloads with
faults injected, against the emulator on 127.0.0.1. Asserted: no error, every file byte-exact,
the pool drained (no connection still acquired), sockets bounded by the connector limit, and
no unclosed-resource warning (pytest's ``filterwarnings = error`` turns one into a failure).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import aiohttp

from aioopentok import Client
from aioopentok.download import DownloadResult
from aioopentok.emulator import Emulator

T = TypeVar("T")
LIMIT = 64  # the connector limit under test (the default is 100)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class FdSampler:
    """Samples the process's open file descriptors while load runs; keeps the peak."""

    def __init__(self) -> None:
        self.peak = _open_fds()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, _open_fds())
            await asyncio.sleep(0.005)

    def __enter__(self) -> FdSampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def _bounded(n: int, in_flight: int, make: Callable[[int], Awaitable[T]]) -> list[T]:
    """Run ``make(0..n-1)`` with at most ``in_flight`` awaiting at once."""
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int) -> T:
        async with gate:
            return await make(i)

    return await asyncio.gather(*(one(i) for i in range(n)))


def _assert_drained(client: Client) -> int:
    """Assert no connection is still acquired; return how many idle sockets the pool holds."""
    connector = client.http_session.connector
    assert isinstance(connector, aiohttp.TCPConnector)
    assert not connector._acquired, "a connection was never released"
    idle = sum(len(conns) for conns in connector._conns.values())
    assert idle <= LIMIT
    return idle


async def test_1000_create_sessions_with_256_in_flight() -> None:
    async with Emulator() as emu:
        baseline = _open_fds()
        async with Client(emu.api_key, emu.api_secret, api_url=emu.url, limit=LIMIT) as client:
            with FdSampler() as fds:
                sessions = await _bounded(1000, 256, lambda _: client.create_session())
            assert len({s.session_id for s in sessions}) == 1000
            assert len(emu.sessions) == 1000
            assert _assert_drained(client) > 0  # keep-alive did its job
            # Each pooled connection is two descriptors here (the emulator is in-process).
            assert fds.peak - baseline <= 2 * LIMIT + 16
        for _ in range(10):  # aiohttp 3.9's server side closes its end a loop turn or two later
            await asyncio.sleep(0)
            gc.collect()
            if _open_fds() <= baseline + 2:
                break
        assert _open_fds() <= baseline + 2  # closed: the sockets went with the pool


def _assert_byte_exact(
    emu: Emulator, videos: list[tuple[str, str]], results: list[DownloadResult], folder: Path
) -> None:
    for (aid, vid), result in zip(videos, results, strict=True):
        data = result.path.read_bytes()
        assert len(data) == emu.video_size(aid, vid) == result.size
        assert hashlib.sha256(data).hexdigest() == emu.video_digest(aid, vid)
    assert sorted(p.suffix for p in folder.iterdir()) == [".flv"] * len(videos)  # no .part


async def test_200_concurrent_downloads_with_faults_are_byte_exact(tmp_path: Path) -> None:
    fast: list[float] = []

    async def sleep(delay: float) -> None:  # back-off recorded, waited only a tick
        fast.append(delay)
        await asyncio.sleep(0)

    async with Emulator() as emu:
        sid = emu.create_session_id()
        videos: list[tuple[str, str]] = []
        for n in range(50):
            aid = emu.add_archive(sid, [20_000 + 997 * n + k for k in range(4)])
            videos += [(aid, v.id) for v in emu.archives[aid].videos]
        faults = emu.faults
        faults.cut_body_after = 7_000  # every video is cut at least once and resumed
        faults.reset_connections = 30
        faults.fail_503 = 30
        faults.fail_status = 503
        faults.retry_after = 0
        faults.storage_403 = 20
        baseline = _open_fds()
        async with Client(
            emu.api_key, emu.api_secret, api_url=emu.url, limit=LIMIT, sleep=sleep, retry=6
        ) as client:
            token = client.generate_token(sid, role="moderator")
            with FdSampler() as fds:
                results = await asyncio.gather(
                    *(
                        client.download_video(aid, vid, token, tmp_path / f"{aid}-{vid}.flv")
                        for aid, vid in videos
                    )
                )
            _assert_drained(client)
            assert fds.peak - baseline <= 2 * LIMIT + 16 + 2 * 200  # + open .part files
        assert len(results) == 200
        _assert_byte_exact(emu, videos, results, tmp_path)
        assert faults.reset_connections == 0 and faults.fail_503 == 0 and faults.storage_403 == 0
        assert emu.storage_auth_leaks == 0
        assert any(r.resumed for r in results)
        assert fast  # faults were hit and backed off
    gc.collect()
