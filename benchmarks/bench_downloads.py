"""Downloads: ours against ``curl`` + fsync on one 1 GiB video and a 64 x 16 MiB archive; RSS.

Strategy: the emulator serves the bytes from its own process pinned to CPU 1; this process and
every client it starts (curl inherits the affinity) run on CPU 0. Per rep, ours and curl fetch
the same video alternately into a temp dir on the repo's disk, each file deleted after its rep:

- one video: ``client.download_video`` (it asks the API for the signed URL, streams to a temp
  name, fsyncs, renames) against ``curl -s -o FILE URL`` of the same signed URL followed by an
  ``fsync`` of FILE (the same durability). Figure: curl's time over ours (= our throughput as a
  fraction of curl's). Target >= 0.90.
- an archive: ``client.download_archive(..., concurrency=8)`` (manifest + 64 URL calls + 64
  downloads) against ``curl --parallel --parallel-max 8`` over the 64 signed URLs followed by 64
  fsyncs. Figure: our wall time over curl's. Target <= 1.10.
- server check: ``curl -o /dev/null`` from the emulator (no disk) must outrun both clients,
  else the server would be the bottleneck and the ratios would flatter whichever is slower.
- peak RSS growth: a child process downloads one video and reports its peak RSS (``VmHWM``,
  not ``ru_maxrss``, which Linux carries over from the parent across exec); a baseline
  child imports the same modules, opens the Client and makes one API call, and reports its own.
  Growth = the difference, for 256 MiB and 1 GiB (flat = the same for both). Target < 32 MiB.

Nothing is installed: without curl the curl rows are skipped with a message.

Run alone: ``python benchmarks/bench_downloads.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import Row, bench_dir, pin, print_machine, print_table, ratio_row

from aioopentok import Client, Role

__all__ = ["emulator_process", "run"]

GIB = 1 << 30
MIB = 1 << 20
ARCHIVE = (64, 16 * MIB)


@contextlib.contextmanager
def emulator_process(*specs: str, cpu: int = 1, digests: bool = True) -> Iterator[dict[str, Any]]:
    """Run ``_emulator_server.py`` in a child process; yield its JSON description."""
    script = Path(__file__).with_name("_emulator_server.py")
    argv = [sys.executable, str(script), str(cpu), *specs] + (["--digests"] if digests else [])
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process exited before it was ready")
        info = json.loads(line)
        info["pid"] = proc.pid
        yield info
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _client(info: dict[str, Any]) -> Client:
    return Client(info["api_key"], info["api_secret"], api_url=info["url"])


async def _signed_urls(info: dict[str, Any], archive: dict[str, Any]) -> tuple[str, list[str]]:
    async with _client(info) as client:
        token = client.generate_token(info["session_id"], Role.MODERATOR)
        urls = [
            await client.download_archive_url(archive["archive_id"], v, token)
            for v in archive["videos"]
        ]
        return token, urls


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def _curl_one(url: str, dest: Path) -> float:
    os.sync()
    start = time.perf_counter_ns()
    subprocess.run(["curl", "-s", "-f", "-o", str(dest), url], check=True)
    _fsync(dest)
    return (time.perf_counter_ns() - start) / 1e9


def _curl_many(urls: list[str], dest_dir: Path, parallel: int) -> float:
    argv = ["curl", "-s", "-f", "--parallel", "--parallel-max", str(parallel)]
    paths = [dest_dir / f"{n}.flv" for n in range(len(urls))]
    for url, path in zip(urls, paths, strict=True):
        argv += ["-o", str(path), url]
    os.sync()
    start = time.perf_counter_ns()
    done = subprocess.run(argv, check=False, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"curl --parallel failed ({done.returncode}): {done.stderr[-500:]}")
    for path in paths:
        _fsync(path)
    return (time.perf_counter_ns() - start) / 1e9


def _curl_null(url: str) -> float:
    """Return the server's speed alone (bytes/s): curl into /dev/null, no disk."""
    done = subprocess.run(
        ["curl", "-s", "-f", "-o", "/dev/null", "-w", "%{speed_download}", url],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(done.stdout)


async def _ours_one(
    info: dict[str, Any], archive: dict[str, Any], dest: Path, checksum: bool = True
) -> float:
    async with _client(info) as client:
        token = client.generate_token(info["session_id"], Role.MODERATOR)
        os.sync()  # neither side pays for the other's dirty pages
        start = time.perf_counter_ns()
        video_id = archive["videos"][0]
        result = await client.download_video(
            archive["archive_id"], video_id, token, dest, checksum=checksum
        )
        elapsed = (time.perf_counter_ns() - start) / 1e9
    if not checksum:
        result = dataclasses.replace(result, sha256=_sha256(dest))  # check it, after the clock
    if archive["digests"] and result.sha256 != archive["digests"][0]:
        raise AssertionError("our download's digest differs from the emulator's")
    return elapsed


async def _ours_archive(
    info: dict[str, Any], archive: dict[str, Any], dest_dir: Path, checksum: bool = True
) -> float:
    async with _client(info) as client:
        token = client.generate_token(info["session_id"], Role.MODERATOR)
        os.sync()
        start = time.perf_counter_ns()
        results = await client.download_archive(
            archive["archive_id"], token, dest_dir, concurrency=8, checksum=checksum
        )
        elapsed = (time.perf_counter_ns() - start) / 1e9
    if not checksum:  # check the bytes all the same, after the clock stopped
        results = [dataclasses.replace(r, sha256=_sha256(r.path)) for r in results]
    if not all(r.ok for r in results):
        raise AssertionError(f"a download failed: {[r.error for r in results if not r.ok]}")
    if archive["digests"] and sorted(r.sha256 or "" for r in results) != sorted(archive["digests"]):
        raise AssertionError("our archive's digests differ from the emulator's")
    return elapsed


# --- peak RSS: run in a child process -------------------------------------------------------


def _vm_hwm() -> int:
    """This process's peak RSS in bytes (VmHWM).

    Not ``ru_maxrss``: Linux keeps that across fork + exec, so a child started by a bigger
    parent reports the parent's peak. VmHWM belongs to the process image and starts afresh.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def _rss_child(info: dict[str, Any], index: int, dest: Path | None) -> None:
    archive = info["archives"][index]
    async with _client(info) as client:
        token = client.generate_token(info["session_id"], Role.MODERATOR)
        if dest is None:  # baseline: the same imports, pool and one API call, no download
            await client.get_archive_manifest(archive["archive_id"], token)
        else:
            await client.download_video(archive["archive_id"], archive["videos"][0], token, dest)
    print(_vm_hwm(), flush=True)


def _peak_rss(info: dict[str, Any], index: int, dest: Path | None) -> int:
    argv = [sys.executable, __file__, "--rss-child", json.dumps(info), str(index), str(dest or "")]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    return int(done.stdout.strip().splitlines()[-1])


# --- the benchmark --------------------------------------------------------------------------


def run(reps: int = 5) -> list[Row]:
    """Return the download rows (~90 s on a 2-core VM)."""
    pin(0)
    have_curl = shutil.which("curl") is not None
    if not have_curl:
        print("  curl not installed: the curl comparisons are skipped (apt-get install curl)")
    rows: list[Row] = []
    work = bench_dir()
    specs = (f"1x{GIB}", f"{ARCHIVE[0]}x{ARCHIVE[1]}", f"1x{256 * MIB}")
    try:
        with emulator_process(*specs) as info:
            one, many, _ = info["archives"]
            single: list[float] = []
            single_nosum: list[float] = []
            wall_nosum: list[float] = []
            ours_speed: list[float] = []
            curl_speed: list[float] = []
            wall: list[float] = []
            ours_wall: list[float] = []
            curl_wall: list[float] = []
            server: list[float] = []
            fastest: list[float] = []
            for rep in range(reps):
                # Rotate who goes first: the first run after a 1 GiB unlink pays for it.
                sides = ("ours", "nosum", "curl")
                sides = sides[rep % 3 :] + sides[: rep % 3]
                for side in sides:
                    if side in ("ours", "nosum"):
                        dest = work / "ours.flv"
                        elapsed = asyncio.run(_ours_one(info, one, dest, side == "ours"))
                        dest.unlink()
                        if side == "ours":
                            t_ours = elapsed
                        else:
                            t_nosum = elapsed
                    elif have_curl:
                        _, urls = asyncio.run(_signed_urls(info, one))
                        server.append(_curl_null(urls[0]))
                        dest = work / "curl.flv"
                        t_curl = _curl_one(urls[0], dest)
                        if one["digests"] and _sha256(dest) != one["digests"][0]:
                            raise AssertionError("curl's file differs from the emulator's")
                        dest.unlink()
                ours_speed.append(GIB / t_ours)
                if have_curl:
                    single.append(t_curl / t_ours)
                    single_nosum.append(t_curl / t_nosum)
                    curl_speed.append(GIB / t_curl)
                    fastest.append(max(GIB / t_ours, GIB / t_curl))
                for side in sides:
                    if side in ("ours", "nosum"):
                        adir = work / "ours"
                        adir.mkdir()
                        elapsed = asyncio.run(_ours_archive(info, many, adir, side == "ours"))
                        shutil.rmtree(adir)
                        if side == "ours":
                            ours_wall.append(elapsed)
                        else:
                            t_nosum = elapsed
                    elif have_curl:
                        _, urls = asyncio.run(_signed_urls(info, many))
                        cdir = work / "curl"
                        cdir.mkdir()
                        t_curl = _curl_many(urls, cdir, 8)
                        shutil.rmtree(cdir)
                        curl_wall.append(t_curl)
                if have_curl:
                    wall.append(ours_wall[-1] / curl_wall[-1])
                    wall_nosum.append(t_nosum / curl_wall[-1])
            med = statistics.median
            if have_curl:
                rows.append(
                    ratio_row(
                        "downloads",
                        "1 GiB video: ours / (curl -o + fsync) throughput",
                        single,
                        (">=", 0.90),
                        note=f"ours {med(ours_speed) / MIB:.0f} MiB/s, "
                        f"curl {med(curl_speed) / MIB:.0f} MiB/s; SHA-256 on (the default)",
                    )
                )
                rows.append(
                    ratio_row(
                        "downloads",
                        "1 GiB video, checksum=False: ours / (curl -o + fsync)",
                        single_nosum,
                        (">=", 0.90),
                        note="the same transfer, verify and fsync, no SHA-256",
                    )
                )
                rows.append(
                    ratio_row(
                        "downloads",
                        "64 x 16 MiB @8: ours / (curl --parallel + fsyncs) wall time",
                        wall,
                        ("<=", 1.10),
                        note=f"ours {med(ours_wall):.2f} s, curl {med(curl_wall):.2f} s; "
                        "SHA-256 on (the default)",
                    )
                )
                rows.append(
                    ratio_row(
                        "downloads",
                        "64 x 16 MiB @8, checksum=False: ours / curl wall time",
                        wall_nosum,
                        ("<=", 1.10),
                        note="the same transfers, verify and fsyncs, no SHA-256",
                    )
                )
                rows.append(
                    ratio_row(
                        "downloads",
                        "server alone (curl -o /dev/null) / faster client, per rep",
                        [s / f for s, f in zip(server, fastest, strict=True)],
                        (">=", 1.0),
                        note=f"emulator alone {med(server) / MIB:.0f} MiB/s",
                    )
                )
            else:
                rows.append(
                    ratio_row(
                        "downloads",
                        "64 x 16 MiB @8: ours wall time (s), no curl to compare",
                        ours_wall,
                        unit="s",
                    )
                )
            # peak RSS growth, 256 MiB and 1 GiB, against a baseline child
            growth: dict[str, list[float]] = {"256 MiB": [], "1 GiB": []}
            for _ in range(2):
                base = _peak_rss(info, 0, None)
                for label, index in (("256 MiB", 2), ("1 GiB", 0)):
                    dest = work / "rss.flv"
                    growth[label].append((_peak_rss(info, index, dest) - base) / MIB)
                    dest.unlink()
            for label, values in growth.items():
                rows.append(
                    ratio_row(
                        "downloads",
                        f"peak RSS growth, one {label} video",
                        values,
                        ("<=", 32.0),
                        unit="MiB",
                        note="vs a child that imports, opens the Client, makes one API call",
                    )
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--rss-child":
        info = json.loads(sys.argv[2])
        dest = Path(sys.argv[4]) if sys.argv[4] else None
        asyncio.run(_rss_child(info, int(sys.argv[3]), dest))
        return 0
    print("Download benchmark; machine:")
    print_machine()
    print_table(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
