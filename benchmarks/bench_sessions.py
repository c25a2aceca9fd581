"""Session creation: 5,000 ``create_session`` calls at concurrency 64, ours against a raw loop.

Strategy: ``_reply_server.py`` answers every POST with protocol.md's recorded production reply,
in its own process pinned to CPU 1; this process (the client) is pinned to CPU 0. Per rep, our
``Client`` and the floor each make the same 5,000 calls with 64 workers, alternating, and the
ratio of their throughputs is one sample. The floor is a hand-written ``aiohttp.ClientSession``
loop doing the same POST (same headers and form body, same connector limit) and parsing
``session_id`` with defusedxml: what a careful user would write with no library.

Also reported: client CPU per call (``time.process_time`` of this process over the calls) of
both, and the server's CPU busy fraction during our runs (under ~90% means the server was not
the bottleneck). The official SDK (``opentok``, sync ``requests``; a new connection per call as
its ``create_session`` does) can be pointed at the same server with ``api_url``: it runs in 64
threads for the table, on fewer calls.

Run alone: ``python benchmarks/bench_sessions.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from _common import Row, pin, print_machine, print_table, ratio_row
from defusedxml import ElementTree

from aioopentok import Client

__all__ = ["reply_server", "run"]

API_KEY = "459782"
SECRET = "0123456789abcdef0123456789abcdef01234567"
EXPECTED = "2_MX40NTk3ODJ-fjIwMTItMDktMDQgMjM6Mjc6MTIuNzY3ODY5KzAwOjAwfjAuNTQzNTEwNTE4NjQxfg"


@contextlib.contextmanager
def reply_server(cpu: int = 1) -> Iterator[tuple[str, int]]:
    """Start ``_reply_server.py`` in a child process; yield (base URL, pid)."""
    script = Path(__file__).with_name("_reply_server.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(cpu)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}/hl", proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the server exits on EOF
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks
    except (OSError, IndexError, ValueError):
        return float("nan")


async def _workers(call: Callable[[], Awaitable[str]], calls: int, concurrency: int) -> None:
    left = calls

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            if await call() != EXPECTED:
                raise AssertionError("wrong session ID parsed")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _ours(url: str, calls: int, concurrency: int) -> tuple[float, float]:
    async with Client(API_KEY, SECRET, api_url=url) as client:

        async def call() -> str:
            return (await client.create_session()).session_id

        await _workers(call, 200, concurrency)  # warm the pool: connections are not the subject
        gc.collect()
        wall, cpu = time.perf_counter_ns(), time.process_time()
        await _workers(call, calls, concurrency)
        return (time.perf_counter_ns() - wall) / 1e9, time.process_time() - cpu


async def _raw(url: str, calls: int, concurrency: int) -> tuple[float, float]:
    headers = {
        "X-TB-PARTNER-AUTH": f"{API_KEY}:{SECRET}",
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "raw-aiohttp-loop",
    }
    body = urlencode({"location": "", "api_key": API_KEY}).encode()
    target = url + "/session/create"
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def call() -> str:
            async with http.post(target, data=body, headers=headers) as response:
                response.raise_for_status()
                root = ElementTree.fromstring(await response.read())
                node = root.find(".//session_id")
                return "" if node is None or node.text is None else node.text

        await _workers(call, 200, concurrency)
        gc.collect()
        wall, cpu = time.perf_counter_ns(), time.process_time()
        await _workers(call, calls, concurrency)
        return (time.perf_counter_ns() - wall) / 1e9, time.process_time() - cpu


def _official(url: str, calls: int, threads: int) -> tuple[float, float] | None:
    try:
        import opentok
    except ImportError:
        return None
    sdk = opentok.Client(API_KEY, SECRET, api_url=url)

    def call(_: int) -> None:
        if sdk.create_session().session_id != EXPECTED:
            raise AssertionError("wrong session ID parsed")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(call, range(threads)))
        wall, cpu = time.perf_counter_ns(), time.process_time()
        list(pool.map(call, range(calls)))
        return (time.perf_counter_ns() - wall) / 1e9, time.process_time() - cpu


def run(
    reps: int = 7, calls: int = 5_000, concurrency: int = 64, sdk_calls: int = 1_000
) -> list[Row]:
    """Return the session-creation rows (~40 s on a 2-core VM)."""
    pin(0)
    throughput: list[float] = []
    cpu_ratio: list[float] = []
    ours_rate: list[float] = []
    raw_rate: list[float] = []
    ours_cpu: list[float] = []
    raw_cpu: list[float] = []
    server_busy: list[float] = []
    sdk_ratio: list[float] = []
    sdk_cpu: list[float] = []
    with reply_server(cpu=1) as (url, pid):
        for rep in range(reps):
            if rep % 2:  # alternate who goes first
                r_wall, r_cpu = asyncio.run(_raw(url, calls, concurrency))
            s0 = _cpu_seconds(pid)
            o_wall, o_cpu = asyncio.run(_ours(url, calls, concurrency))
            server_busy.append((_cpu_seconds(pid) - s0) / o_wall)
            if not rep % 2:
                r_wall, r_cpu = asyncio.run(_raw(url, calls, concurrency))
            throughput.append(r_wall / o_wall)  # ours' calls/s over the raw loop's
            cpu_ratio.append(o_cpu / r_cpu)
            ours_rate.append(calls / o_wall)
            raw_rate.append(calls / r_wall)
            ours_cpu.append(o_cpu / calls * 1e6)
            raw_cpu.append(r_cpu / calls * 1e6)
        for _ in range(max(1, reps // 2)):
            sdk = _official(url, sdk_calls, concurrency)
            if sdk is None:
                break
            s_wall, s_cpu = sdk
            sdk_ratio.append(statistics.median(ours_rate) / (sdk_calls / s_wall))
            sdk_cpu.append(s_cpu / sdk_calls * 1e6)
    med = statistics.median
    rows = [
        ratio_row(
            "sessions",
            f"{calls} creates @{concurrency}: ours / raw aiohttp loop (throughput)",
            throughput,
            (">=", 0.85),
            note=f"ours {med(ours_rate):.0f}/s, raw {med(raw_rate):.0f}/s; "
            f"server CPU busy {med(server_busy):.0%} during ours",
        ),
        ratio_row(
            "sessions",
            "client CPU per call: ours / raw loop",
            cpu_ratio,
            note=f"ours {med(ours_cpu):.0f} us/call, raw {med(raw_cpu):.0f} us/call",
        ),
    ]
    if sdk_ratio:
        rows.append(
            ratio_row(
                "sessions",
                f"{sdk_calls} creates, 64 threads: ours / official SDK (throughput)",
                sdk_ratio,
                note=f"SDK {med(ours_rate) / med(sdk_ratio):.0f}/s, "
                f"{med(sdk_cpu):.0f} us CPU/call (new connection per call)",
            )
        )
    else:
        print("  official SDK not installed: pip install -r benchmarks/requirements.txt")
    return rows


def main() -> int:
    print("Session creation benchmark; machine:")
    print_machine()
    print_table(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
