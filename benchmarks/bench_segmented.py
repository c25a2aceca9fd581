"""Segmented downloads (issue 13.7): ours against aria2c and curl, storage capped like S3.

Strategy: the emulator runs in its own process pinned to CPU 1 (``python -m
aioopentok.emulator --storage-rate 32000000``: every storage reply, so every connection, is
capped at 32 MB/s, as S3 caps one connection); this process and every client it starts run on
CPU 0. Per rep, in rotated order, each client fetches the same seeded 512 MiB video into a
temp dir on the repo's disk, followed by an fsync of the file:

- ours: ``Client.download_video`` with its defaults, in a child process that reports its
  elapsed time and its peak RSS (``VmHWM``); growth = that minus a baseline child that
  imports, opens the Client and makes one API call (as bench_downloads.py does);
- ``aria2c -x8 -s8`` (8 ranged connections, no preallocation);
- ``curl -o`` (one connection: at most the cap).

Figures: ours' throughput over aria2c's and over curl's, per rep. Then the same uncapped on
loopback with a 1 GiB video against curl + fsync (no cap: the disk and the CPU decide). With
nginx installed, the capped comparison runs again with storage served through nginx
``limit_rate 32m`` (32 MiB/s, per request) in front of an uncapped emulator; nginx also
proxies the API and rewrites the signed URL's host (``sub_filter``) so that every client's
storage traffic goes through it. Beware: nginx lets each request's first second's worth
through unpaced (measured: an 8 MiB range at 197 MiB/s, 64 MiB at 37.5, 256 MiB at 32.1), so
a client of 8 MiB ranged parts is not capped there at all; the emulator's token bucket has a
burst of one write (256 KiB), which is the cap S3 applies. Every file is checked after the
clock stops: its MD5 must equal the storage ``ETag`` (the quoted MD5 of the emulator's bytes).

The first storage request of a video waits for the emulator to compute its MD5 (~0.8 s for
512 MiB); a ranged GET of one byte pays that before any timing. Nothing is installed: without
aria2c or curl their rows are skipped (``apt-get install -y aria2 curl nginx``).

Run alone: ``python benchmarks/bench_segmented.py [--reps N]`` (~2 min per rep on a 2-core
VM; curl's capped runs take ~17 s each, ours as long while ``download_video`` uses one
connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _common import REPO, Row, bench_dir, pin, print_machine, print_table, ratio_row

from aioopentok import Client, Role

__all__ = ["run"]

MIB = 1 << 20
CAP = 32_000_000  # bytes/s per storage connection, roughly what S3 gives one connection
CAPPED_SIZE = 512 * MIB
UNCAPPED_SIZE = 1 << 30
_READY_TIMEOUT = 120  # seconds for a server to come up (bounded waits everywhere)
Server = dict[str, Any]


def _pin_to(cpu: int) -> Callable[[], None]:
    def pin_child() -> None:
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
            os.sched_setaffinity(0, {cpu})

    return pin_child


@contextlib.contextmanager
def _emulator(size: int, rate: int | None) -> Iterator[Server]:
    """Run the emulator CLI with one seeded video, pinned to CPU 1; yield its details."""
    argv = [sys.executable, "-m", "aioopentok.emulator", "--seed-archives", "1",
            "--videos-per-archive", "1", "--video-size", str(size)]  # fmt: skip
    if rate is not None:
        argv += ["--storage-rate", str(rate)]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, cwd=REPO, preexec_fn=_pin_to(1)
    )
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline(), proc.stdout.readline()
        m1 = re.search(r"url=(\S+) api_key=(\S+) api_secret=(\S+)", first)
        m2 = re.search(r"archive_id=(\S+) session_id=(\S+) videos=(\S+)", second)
        if m1 is None or m2 is None:
            raise RuntimeError(f"the emulator did not start: {first!r} {second!r}")
        yield {"url": m1[1], "api_key": m1[2], "api_secret": m1[3], "archive_id": m2[1],
               "session_id": m2[2], "video_id": m2[3], "size": size}  # fmt: skip
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


_NGINX_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream emulator {{ server 127.0.0.1:{emu_port}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location /storage/ {{
            proxy_pass http://emulator;
            proxy_max_temp_file_size 0;  # stream, never spool the body to disk
            limit_rate 32m;
        }}
        location / {{
            proxy_pass http://emulator;
            sub_filter_types text/html;  # the archive URL reply: its whole body is the URL
            sub_filter 'http://127.0.0.1:{emu_port}/' 'http://127.0.0.1:{port}/';
        }}
    }}
}}
"""


@contextlib.contextmanager
def _nginx(emu: Server) -> Iterator[Server]:
    """Run nginx (pinned to CPU 1) in front of ``emu``; yield ``emu`` with nginx's URL."""
    emu_port = int(re.search(r":(\d+)/", emu["url"])[1])  # type: ignore[index]
    port = _free_port()
    work = Path(tempfile.mkdtemp(prefix="aioopentok-nginx-"))
    user = "user root;" if os.geteuid() == 0 else ""
    conf = work / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(dir=work, user=user, emu_port=emu_port, port=port))
    proc = subprocess.Popen(
        ["nginx", "-p", str(work), "-c", str(conf)], stderr=subprocess.PIPE,
        preexec_fn=_pin_to(1),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"nginx did not start: {err[-500:]}")
            time.sleep(0.05)
        yield {**emu, "url": f"http://127.0.0.1:{port}/hl"}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def _client(server: Server) -> Client:
    return Client(server["api_key"], server["api_secret"], api_url=server["url"])


async def _signed_url(server: Server) -> str:
    async with _client(server) as client:
        token = client.generate_token(server["session_id"], Role.MODERATOR)
        return await client.download_archive_url(server["archive_id"], server["video_id"], token)


def _warm_etag(server: Server) -> str:
    """GET one byte (the emulator computes the video's MD5 first); return the ETag's MD5."""
    url = asyncio.run(_signed_url(server))
    done = subprocess.run(
        ["curl", "-s", "-f", "-r", "0-0", "-D", "-", "-o", "/dev/null", url],
        capture_output=True, text=True, check=True, timeout=_READY_TIMEOUT,
    )  # fmt: skip
    m = re.search(r'(?im)^etag:\s*"([0-9a-f]{32})"', done.stdout)
    if m is None:
        raise RuntimeError(f"no MD5 ETag in the storage reply: {done.stdout!r}")
    return m[1]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check(path: Path, server: Server, md5: str) -> None:
    """After the clock: the file is whole and its MD5 is the storage ETag."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
    if path.stat().st_size != server["size"] or digest.hexdigest() != md5:
        raise AssertionError(f"{path.name}: size or MD5 differs from storage's ETag")


def _timed_tool(argv: list[str], dest: Path) -> float:
    os.sync()  # no client pays for another's dirty pages
    start = time.perf_counter_ns()
    subprocess.run(argv, check=True, capture_output=True, timeout=3600)
    _fsync(dest)
    return (time.perf_counter_ns() - start) / 1e9


def _aria2c(server: Server, dest: Path) -> float:
    url = asyncio.run(_signed_url(server))
    argv = ["aria2c", "-x8", "-s8", "--file-allocation=none", "--allow-overwrite=true",
            "--auto-file-renaming=false", "--console-log-level=error", "--summary-interval=0",
            "--download-result=hide", "-q", "-d", str(dest.parent), "-o", dest.name,
            url]  # fmt: skip
    return _timed_tool(argv, dest)


def _curl(server: Server, dest: Path) -> float:
    url = asyncio.run(_signed_url(server))
    return _timed_tool(["curl", "-s", "-f", "-o", str(dest), url], dest)


# --- ours, in a child process (its peak RSS is its own) -----------------------------------


def _vm_hwm() -> int:
    """This process's peak RSS in bytes (VmHWM: unlike ru_maxrss, not inherited on exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


async def _child(server: Server, dest: Path | None) -> dict[str, float]:
    async with _client(server) as client:
        token = client.generate_token(server["session_id"], Role.MODERATOR)
        if dest is None:  # baseline: the same imports, pool and one API call, no download
            await client.get_archive_manifest(server["archive_id"], token)
            return {"hwm": _vm_hwm()}
        os.sync()
        start = time.perf_counter_ns()
        await client.download_video(server["archive_id"], server["video_id"], token, dest)
        _fsync(dest)
        elapsed = (time.perf_counter_ns() - start) / 1e9
    return {"elapsed": elapsed, "hwm": _vm_hwm()}


def _run_child(server: Server, dest: Path | None) -> dict[str, float]:
    argv = [sys.executable, __file__, "--child", json.dumps(server), str(dest or "")]
    done = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=3600)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- the benchmark --------------------------------------------------------------------------


def _compare(
    label: str, server: Server, sides: tuple[str, ...], reps: int, work: Path
) -> list[Row]:
    """Run ours and the tools ``sides`` on ``server``'s video, ``reps`` times, rotated."""
    md5 = _warm_etag(server)
    base = _run_child(server, None)["hwm"]
    times: dict[str, list[float]] = {side: [] for side in sides}
    growth: list[float] = []
    tools = {"aria2c": _aria2c, "curl": _curl}
    for rep in range(reps):
        for side in sides[rep % len(sides) :] + sides[: rep % len(sides)]:
            dest = work / f"{side}.flv"
            if side == "ours":
                child = _run_child(server, dest)
                times["ours"].append(child["elapsed"])
                growth.append((child["hwm"] - base) / MIB)
            else:
                times[side].append(tools[side](server, dest))
            _check(dest, server, md5)
            dest.unlink()
    size = server["size"]
    speed = {side: [size / t / MIB for t in ts] for side, ts in times.items()}
    med = statistics.median
    rows = []
    for tool in sides[1:]:
        ratios = [o / t for o, t in zip(speed["ours"], speed[tool], strict=True)]
        rows.append(
            ratio_row(
                "segmented",
                f"{label}: ours / {_TOOL_LABEL[tool]} (throughput)",
                ratios,
                note=f"ours {med(speed['ours']):.0f} MiB/s, {tool} {med(speed[tool]):.0f} MiB/s",
            )
        )
    rows.append(
        ratio_row(
            "segmented",
            f"{label}: peak RSS growth of ours",
            growth,
            unit="MiB",
            note="vs a child that imports, opens the Client, makes one API call",
        )
    )
    return rows


_TOOL_LABEL = {"aria2c": "(aria2c -x8 -s8 + fsync)", "curl": "(curl -o + fsync)"}


def run(reps: int = 3) -> list[Row]:
    """Return the segmented-download rows."""
    pin(0)
    tools = tuple(t for t in ("aria2c", "curl") if shutil.which(t))
    for missing in {"aria2c", "curl"} - set(tools):
        print(f"  {missing} not installed: its rows are skipped (apt-get install -y aria2 curl)")
    if "curl" not in tools:
        print("  curl is needed to warm and read the storage ETag: nothing to run")
        return []
    print(f"  aria2c: {_tool_line(['aria2c', '--version'])}", flush=True)
    rows: list[Row] = []
    work = bench_dir()
    capped = f"512 MiB, storage {CAP // 10**6} MB/s per connection"
    try:
        with _emulator(CAPPED_SIZE, CAP) as server:
            rows += _compare(capped, server, ("ours", *tools), reps, work)
        with _emulator(UNCAPPED_SIZE, None) as server:
            rows += _compare("1 GiB, uncapped loopback", server, ("ours", "curl"), reps, work)
        if shutil.which("nginx"):
            with _emulator(CAPPED_SIZE, None) as emu, _nginx(emu) as server:
                rows += _compare("512 MiB via nginx limit_rate 32m", server,
                                 ("ours", *tools), reps, work)  # fmt: skip
        else:
            print("  nginx not installed: the nginx limit_rate rows are skipped")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _tool_line(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    return (done.stdout or done.stderr).strip().splitlines()[0]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        server = json.loads(sys.argv[2])
        dest = Path(sys.argv[3]) if sys.argv[3] else None
        print(json.dumps(asyncio.run(_child(server, dest))), flush=True)
        return 0
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 3
    print("Segmented download benchmark; machine:")
    print_machine()
    print_table(run(reps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
