"""Bulk export: ``aioopentok export`` against ``aria2c -j16`` of pre-signed URLs; rerun; RSS.

Strategy: this process runs the emulator (in-process, pinned to CPU 1, its request log read
directly) and starts every client as a child pinned to CPU 0, so client and server never share
a core and both sides of a ratio pay the same process start:

- export: ``python -m aioopentok export LIST --dest D`` of 2,000 archives x 2 videos x 200 KB
  (manifest + URL call + transfer per video, SHA-256, fsync per file, manifest.json, journal)
  against ``aria2c -j16 -i URLS`` of the 4,000 signed URLs, signed beforehand and not timed
  (aria2 pays for no API call at all), then ``sync`` (the same durability, in one go). Figure:
  aria2's wall time over ours (= our throughput as a fraction of aria2's). Target >= 0.90.
- rerun: the same command again on a finished 10,000-archive job. Figures: requests the
  emulator saw (target 0) and wall seconds (target < 2).
- peak RSS: the child's ``VmHWM`` at exit, 10,000 archives over 1,000 (2 x 20 KB videos).
  Target within 10% (<= 1.10x).

One run of each (the issue's "one run, ratios"); ``aria2c`` missing skips its row.
Run alone: ``python benchmarks/bench_export.py [--archives 2000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path

from _common import REPO, Row, bench_dir, pin, print_machine, print_table, ratio_row

from aioopentok import Client, Role
from aioopentok.emulator import Emulator

__all__ = ["run"]

_CHILD = """
import json, sys, time
sys.argv[0] = "aioopentok"
from aioopentok.cli import main
started = time.perf_counter()
code = main(sys.argv[1:])
seconds = time.perf_counter() - started
hwm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print("@@" + json.dumps({"code": code, "seconds": seconds, "hwm": hwm}), file=sys.stderr)
"""


def _child_env(emu: Emulator) -> dict[str, str]:
    return {
        **os.environ,
        "OPENTOK_API_KEY": emu.api_key,
        "OPENTOK_API_SECRET": emu.api_secret,
        "OPENTOK_API_URL": emu.url,
    }


def _pinned(cpu: int) -> list[str]:
    """The prefix that runs a child on ``cpu`` (nothing on one core or without taskset)."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)]
    return []


async def _export(emu: Emulator, listing: Path, dest: Path) -> dict[str, float]:
    """Run the CLI in a pinned child; return its exit code, wall time and peak RSS."""
    argv = [*_pinned(0), sys.executable, "-c", _CHILD, "export", str(listing), "--dest",
            str(dest), "--concurrency", "16", "-q", "--json"]  # fmt: skip
    started = time.perf_counter()
    child = await asyncio.create_subprocess_exec(
        *argv, env=_child_env(emu), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await child.communicate()
    wall = time.perf_counter() - started
    facts = next(json.loads(x[2:]) for x in err.decode().splitlines() if x.startswith("@@"))
    if facts["code"] != 0:
        raise RuntimeError(f"export failed ({facts['code']}): {err.decode()[-2000:]}")
    return {"wall": wall, **facts, **json.loads(out)}


async def _presign(emu: Emulator, pairs: list[tuple[str, str]], dest: Path, urls: Path) -> int:
    """Write aria2's input file: every video's signed URL and its target (not timed)."""
    limit = asyncio.Semaphore(16)
    lines: list[str] = []
    async with Client(emu.api_key, emu.api_secret, api_url=emu.url) as client:

        async def one(archive_id: str, session_id: str) -> None:
            async with limit:
                token = client.generate_token(session_id, Role.MODERATOR)
                archive = await client.get_archive_manifest(archive_id, token)
                for video in archive.resources:
                    url = await client.download_archive_url(archive_id, video.id, token)
                    lines.append(f"{url}\n  dir={dest / archive_id}\n  out={video.id}.flv\n")

        await asyncio.gather(*(one(a, s) for a, s in pairs))
    await asyncio.to_thread(urls.write_text, "".join(lines))
    return len(lines)


async def _aria2(emu: Emulator, urls: Path) -> float:
    argv = [*_pinned(0), "aria2c", "-j16", "-x1", "--file-allocation=none", "--quiet=true",
            "--auto-file-renaming=false", "--allow-overwrite=true", "-i", str(urls)]  # fmt: skip
    started = time.perf_counter()
    child = await asyncio.create_subprocess_exec(*argv, env=_child_env(emu))
    if await child.wait() != 0:
        raise RuntimeError("aria2c failed")
    sync = await asyncio.create_subprocess_exec("sync")
    await sync.wait()
    return time.perf_counter() - started


def _write_list(path: Path, pairs: list[tuple[str, str]]) -> None:
    path.write_text("".join(f"{a} {s}\n" for a, s in pairs))


async def _run(archives: int, large: int) -> list[Row]:
    pin(1)  # this process is the server
    rows: list[Row] = []
    work = bench_dir()
    emu = Emulator()
    big = emu.seed_archives(archives, videos_per_archive=2, video_size=200_000)
    small = emu.seed_archives(large, videos_per_archive=2, video_size=20_000)
    try:
        async with emu:
            listing = work / "big.txt"
            _write_list(listing, big)
            ours = await _export(emu, listing, work / "ours")
            print(f"  export {archives} x 2 x 200 KB: {ours['wall']:.2f} s, done {ours['done']}")
            if shutil.which("aria2c"):
                await asyncio.to_thread(shutil.rmtree, work / "ours")
                count = await _presign(emu, big, work / "aria2", work / "urls.txt")
                theirs = await _aria2(emu, work / "urls.txt")
                print(f"  aria2c -j16 of {count} pre-signed URLs + sync: {theirs:.2f} s")
                rows.append(ratio_row("export", f"{archives} x 2 x 200 KB vs aria2c -j16 + sync",
                                      [theirs / ours["wall"]], (">=", 0.9),
                                      note="aria2 pays no API call"))  # fmt: skip
            else:
                print("  aria2c not installed: its row is skipped")

            rss = {}
            for count in (large // 10, large):
                _write_list(work / f"small{count}.txt", small[:count])
                facts = await _export(emu, work / f"small{count}.txt", work / f"small{count}")
                rss[count] = facts["hwm"]
                print(f"  export {count} x 2 x 20 KB: {facts['wall']:.1f} s, peak RSS "
                      f"{facts['hwm'] / 2**20:.1f} MiB")  # fmt: skip
            rows.append(ratio_row("export", f"peak RSS, {large:,} archives over {large // 10:,}",
                                  [rss[large] / rss[large // 10]], ("<=", 1.10)))  # fmt: skip

            emu.clear_requests()
            rerun = await _export(emu, work / f"small{large}.txt", work / f"small{large}")
            print(f"  rerun of the finished {large:,}-archive job: {rerun['wall']:.2f} s, "
                  f"{len(emu.requests)} requests, skipped {rerun['skipped']}")  # fmt: skip
            requests = [float(len(emu.requests))]
            rows.append(ratio_row("export", f"rerun of a finished {large:,}-archive job: requests",
                                  requests, ("<=", 0), unit="requests"))  # fmt: skip
            rows.append(ratio_row("export", f"rerun of a finished {large:,}-archive job: wall",
                                  [rerun["wall"]], ("<=", 2.0), unit="s",
                                  note="process start included"))  # fmt: skip
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    return rows


def run(archives: int = 2_000, large: int = 10_000) -> list[Row]:
    """Run the export benchmark; return its rows."""
    return asyncio.run(_run(archives, large))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archives", type=int, default=2_000)
    parser.add_argument("--large", type=int, default=10_000, help="the RSS and rerun job (10,000)")
    args = parser.parse_args()
    print("Machine:")
    print_machine()
    print_table(run(args.archives, args.large))


if __name__ == "__main__":
    main()
