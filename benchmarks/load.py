"""Full-size load runs (the reliability issue): pass/fail, not ratios. About 1-2 minutes.

Strategy: the emulator runs in this process (its fault knobs are set directly); the checks are
the issue's, at full size (the test suite runs small versions of the same):

1. ``create_session`` x 10,000 with 256 in flight: no error; client sockets to the emulator
   never above the connector's limit (sampled every 50 ms); after the calls no connection is
   still acquired (the pool drained) and after ``close()`` no client socket is left; no
   ResourceWarning and no "Unclosed ..." report from the event loop.
2. 200 videos downloaded at once (``download_archive(concurrency=200)``) with faults injected:
   bodies cut mid-way, connections reset, 503s with ``Retry-After: 0``, spurious 403s (expired
   URL): every file must be on disk with the emulator's bytes (re-hashed from disk), no
   ``.part`` left, and the same socket/warning checks.

Run: ``python benchmarks/load.py [sessions] [downloads]``. Exit 0 when every check passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import shutil
import sys
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import psutil
from _common import bench_dir, print_machine

from aioopentok import Client, RetryPolicy, Role
from aioopentok.emulator import Emulator

__all__ = ["main"]

MIB = 1 << 20


def _client_sockets(port: int) -> int:
    """Our process's TCP sockets connected *to* the emulator's port (its own side excluded)."""
    conns = psutil.Process().net_connections(kind="tcp")
    return sum(1 for c in conns if c.raddr and c.raddr.port == port)


@contextlib.asynccontextmanager
async def _sampler(port: int, peak: list[int]) -> AsyncIterator[None]:
    async def sample() -> None:
        while True:
            peak[0] = max(peak[0], _client_sockets(port))
            await asyncio.sleep(0.05)

    task = asyncio.create_task(sample())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _acquired(client: Client) -> int:
    connector = client.http_session.connector
    return len(getattr(connector, "_acquired", ()))  # aiohttp private; no public count


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def check(self, ok: bool, what: str) -> None:
        print(f"  [{'ok' if ok else 'FAIL'}] {what}", flush=True)
        if not ok:
            self.failed.append(what)


async def _sessions(checks: Checks, calls: int = 10_000, in_flight: int = 256) -> None:
    print(f"create_session x {calls}, {in_flight} in flight:")
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))
    async with Emulator() as emu:
        port = int(emu.url.split(":")[2].split("/")[0])
        limit = 100
        errors: list[BaseException] = []
        ids: set[str] = set()
        peak = [0]
        client = Client(emu.api_key, emu.api_secret, api_url=emu.url, limit=limit)
        left = calls

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                try:
                    ids.add((await client.create_session()).session_id)
                except Exception as exc:
                    errors.append(exc)

        started = time.perf_counter()
        async with _sampler(port, peak):
            await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
        acquired = _acquired(client)
        await client.close()
        await asyncio.sleep(0.1)  # let the transports finish closing
        left_open = _client_sockets(port)
    gc.collect()
    await asyncio.sleep(0)
    checks.check(not errors, f"no error ({len(errors)}: {errors[:3]!r}) in {elapsed:.1f} s")
    checks.check(len(ids) == calls, f"{len(ids)} distinct session IDs")
    checks.check(peak[0] <= limit, f"client sockets peaked at {peak[0]} (limit {limit})")
    checks.check(acquired == 0, f"pool drained: {acquired} connections still acquired")
    checks.check(left_open == 0, f"after close(): {left_open} client sockets left")
    checks.check(not loop_errors, f"no event-loop error/unclosed report ({loop_errors[:2]!r})")


async def _inject(emu: Emulator, injected: dict[str, int], total: int = 40) -> None:
    """Arm two of each counted fault every 50 ms once storage is being read, ``total`` each.

    Armed all at once, they would all land on the manifest call before any download starts.
    """
    while not any(r.path.startswith("/storage") for r in emu.requests[-50:]):  # noqa: ASYNC110 (the log has no event)
        await asyncio.sleep(0.01)
    while any(n < total for n in injected.values()):
        for name in injected:
            if injected[name] < total and getattr(emu.faults, name) == 0:
                setattr(emu.faults, name, 2)
                injected[name] += 2
        await asyncio.sleep(0.05)


async def _downloads(checks: Checks, videos: int = 200, size: int = 3 * MIB) -> None:
    print(f"{videos} concurrent downloads of {size // MIB} MiB with faults:")
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))
    work = bench_dir()
    try:
        async with Emulator() as emu:
            port = int(emu.url.split(":")[2].split("/")[0])
            session_id = emu.create_session_id()
            archive_id = emu.add_archive(session_id, [size] * videos)
            digests = {
                v.id: emu.video_digest(archive_id, v.id) for v in emu.archives[archive_id].videos
            }
            faults = emu.faults
            faults.cut_body_after = MIB  # every video is cut at 1 MiB and again at 2 MiB
            faults.retry_after = 0
            injected = {"reset_connections": 0, "fail_503": 0, "storage_403": 0}
            limit = 256
            retry = RetryPolicy(retries=6, backoff=0.05, max_backoff=0.5)
            peak = [0]
            client = Client(emu.api_key, emu.api_secret, api_url=emu.url, limit=limit, retry=retry)
            token = client.generate_token(session_id, Role.MODERATOR)
            started = time.perf_counter()
            injector = asyncio.create_task(_inject(emu, injected))
            async with _sampler(port, peak):
                results = await client.download_archive(archive_id, token, work, concurrency=videos)
            elapsed = time.perf_counter() - started
            injector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await injector
            acquired = _acquired(client)
            await client.close()
            await asyncio.sleep(0.1)
            left_open = _client_sockets(port)
            for name in injected:  # armed but never hit: not injected
                injected[name] -= getattr(emu.faults, name)
        failed = [r for r in results if not r.ok]
        checks.check(not failed, f"{len(results) - len(failed)}/{videos} ok in {elapsed:.1f} s "
                     f"({[str(r.error) for r in failed[:2]]})")  # fmt: skip
        bad = []
        for r in results:
            if r.ok and hashlib.sha256(r.path.read_bytes()).hexdigest() != digests[r.video_id]:
                bad.append(r.video_id)
        checks.check(
            len(results) == videos and not bad, f"files byte-exact on disk ({len(bad)} bad)"
        )
        checks.check(not list(work.glob("*.part")), "no .part file left")
        checks.check(
            sum(r.resumed for r in results) > 0,
            f"faults bit: {sum(r.resumed for r in results)} resumed; injected {injected}",
        )
        checks.check(peak[0] <= limit, f"client sockets peaked at {peak[0]} (limit {limit})")
        checks.check(acquired == 0, f"pool drained: {acquired} connections still acquired")
        checks.check(left_open == 0, f"after close(): {left_open} client sockets left")
        checks.check(not loop_errors, f"no event-loop error/unclosed report ({loop_errors[:2]!r})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    print("Load runs; machine:")
    print_machine()
    checks = Checks()
    names = [n for n in argv if n in ("sessions", "downloads")] or ["sessions", "downloads"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in names:
            asyncio.run(_sessions(checks) if name == "sessions" else _downloads(checks))
        gc.collect()
    resource = [w for w in caught if issubclass(w.category, ResourceWarning)]
    checks.check(not resource, f"no ResourceWarning ({[str(w.message) for w in resource[:2]]})")
    others = [w for w in caught if not issubclass(w.category, ResourceWarning)]
    checks.check(not others, f"no other warning ({[str(w.message) for w in others[:2]]})")
    print("PASS" if not checks.failed else f"FAIL: {len(checks.failed)} check(s)")
    return 0 if not checks.failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
