"""``kill -9`` of ``aioopentok export`` at ten random moments; then the job completes, exactly.

The CLI runs in a child process (``python -m aioopentok``) against the emulator served by this
test's event loop over loopback. Storage is slowed to 1 MB/s per reply so that kills land in
the middle of bodies, manifests and journal writes, not only between archives.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sys
from pathlib import Path

from aioopentok.emulator import Emulator
from aioopentok.export import read_status

ROOT = Path(__file__).resolve().parents[2]
ARCHIVES, VIDEOS, SIZE = 40, 2, 128 * 1024


def _parts(dest: Path) -> list[Path]:
    return [p for p in dest.rglob("*") if p.name.endswith(".part")]


async def _export(emu: Emulator, listing: Path, dest: Path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "OPENTOK_API_KEY": emu.api_key,
        "OPENTOK_API_SECRET": emu.api_secret,
        "OPENTOK_API_URL": emu.url,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aioopentok", "export", str(listing), "--dest", str(dest),
        "--concurrency", "8", "-q",
        cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_kill_9_at_ten_random_moments_then_the_job_completes_byte_exact(
    emu: Emulator, tmp_path: Path
) -> None:
    pairs = emu.seed_archives(ARCHIVES, videos_per_archive=VIDEOS, video_size=SIZE)
    listing, dest = tmp_path / "archives.txt", tmp_path / "out"
    listing.write_text("".join(f"{a} {s}\n" for a, s in pairs))
    emu.faults.storage_rate = 1_000_000
    moments = random.Random(14).sample([k / 100 for k in range(40, 160)], 10)
    saw_part = False
    for moment in moments:
        child = await _export(emu, listing, dest)
        await asyncio.sleep(moment)
        if child.returncode is None:
            child.kill()  # SIGKILL: no handler, no cleanup, no journal close
        await child.wait()
        saw_part = saw_part or bool(await asyncio.to_thread(_parts, dest))

    child = await _export(emu, listing, dest)
    _, err = await child.communicate()
    assert child.returncode == 0, err.decode()
    for archive_id, _ in pairs:
        for video in emu.archives[archive_id].videos:
            path = dest / archive_id / f"{video.id}.flv"
            data = await asyncio.to_thread(path.read_bytes)
            assert data == emu.video_bytes(archive_id, video.id), path
    assert await asyncio.to_thread(_parts, dest) == []
    status = read_status(dest)
    assert (status.done, status.failed, status.pending) == (ARCHIVES, 0, 0)
    # Only unfinished work was redone: a video is fetched from its first byte once, plus at
    # most once more per kill that caught it in flight (8 at a time), never once per run.
    fresh = [
        r for r in emu.requests if re.fullmatch(r"bytes=0-(?!0$)\d*", r.headers.get("Range", ""))
    ]
    assert saw_part
    assert ARCHIVES * VIDEOS <= len(fresh) <= ARCHIVES * VIDEOS + len(moments) * 8


async def test_ctrl_c_exits_130_with_a_consistent_journal_and_a_rerun_finishes(
    emu: Emulator, tmp_path: Path
) -> None:
    pairs = emu.seed_archives(20, videos_per_archive=VIDEOS, video_size=SIZE)
    listing, dest = tmp_path / "archives.txt", tmp_path / "out"
    listing.write_text("".join(f"{a} {s}\n" for a, s in pairs))
    emu.faults.storage_rate = 200_000  # the job would take ~3 s: interrupt it at 1 s
    child = await _export(emu, listing, dest)
    await asyncio.sleep(1.0)
    assert child.returncode is None
    child.send_signal(signal.SIGINT)
    _, err = await child.communicate()
    assert child.returncode == 130, err.decode()
    assert "interrupted" in err.decode()
    status = read_status(dest)
    assert status.failed == 0 and status.done < 20  # nothing blamed on the interruption
    assert status.done + status.pending == 20  # the scanned LIST says what is left
    for archive_id, _ in pairs:  # every archive recorded done has all its files
        record_done = (dest / archive_id / "manifest.json").is_file()
        files = [dest / archive_id / f"{v.id}.flv" for v in emu.archives[archive_id].videos]
        assert not record_done or all(f.is_file() for f in files)

    emu.faults.storage_rate = None
    child = await _export(emu, listing, dest)
    _, err = await child.communicate()
    assert child.returncode == 0, err.decode()
    assert read_status(dest).done == 20
