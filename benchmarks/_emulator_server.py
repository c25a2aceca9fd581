"""The emulator in its own process, with the benchmark's archives, for the download benchmarks.

Strategy: the client under test and the server must not share a core, so the emulator runs in a
child process pinned to the other CPU. It prints one JSON line (URL, credentials, archive and
video IDs, digests) and serves until its stdin closes, so it never outlives the benchmark.

Run: ``python benchmarks/_emulator_server.py CPU SPEC...`` where each SPEC is ``COUNTxSIZE``
(one archive of COUNT videos of SIZE bytes), e.g. ``1x1073741824 64x16777216``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from aioopentok.emulator import Emulator

__all__ = ["main"]


async def _serve(specs: list[tuple[int, int]], digests: bool) -> None:
    async with Emulator() as emu:
        session_id = emu.create_session_id()
        archives = []
        for count, size in specs:
            archive_id = emu.add_archive(session_id, [size] * count)
            videos = [v.id for v in emu.archives[archive_id].videos]
            archives.append(
                {
                    "archive_id": archive_id,
                    "videos": videos,
                    "size": size,
                    "digests": [emu.video_digest(archive_id, v) for v in videos] if digests else [],
                }
            )
        info = {
            "url": emu.url,
            "api_key": emu.api_key,
            "api_secret": emu.api_secret,
            "session_id": session_id,
            "archives": archives,
        }
        print(json.dumps(info), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        await reader.read()


def main() -> None:
    cpu = int(sys.argv[1])
    if cpu >= 0 and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {cpu})
    digests = "--digests" in sys.argv
    specs = []
    for spec in sys.argv[2:]:
        if spec.startswith("--"):
            continue
        count, size = spec.split("x")
        specs.append((int(count), int(size)))
    asyncio.run(_serve(specs, digests))


if __name__ == "__main__":
    main()
