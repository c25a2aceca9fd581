"""Export edges a review found: a stop right after the service deleted an archive, a LIST
whose session does not match the export, a LIST saved with a BOM, a LIST of lines that start
nothing (the event loop must keep turning)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import aioopentok
from aioopentok.emulator import Emulator
from aioopentok.export import Shard, failures, read_list, read_status, run


class _Killed(BaseException):
    """The process dies here: nothing after it runs (as kill -9 at that instant)."""


class _DiesAfterDelete:
    def __init__(self, client: aioopentok.Client) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def delete_archive(self, archive_id: str, token: str) -> None:
        await self._client.delete_archive(archive_id, token)
        raise _Killed


async def test_a_stop_right_after_the_delete_leaves_the_archive_done(
    emu: Emulator, tmp_path: Path
) -> None:
    pairs = emu.seed_archives(1, videos_per_archive=2, video_size=5000)
    async with aioopentok.Client(emu.api_key, emu.api_secret, api_url=emu.url) as client:
        with contextlib.suppress(_Killed):
            await run(_DiesAfterDelete(client), pairs, tmp_path, delete_after_verify=True)
        again = await run(client, pairs, tmp_path, delete_after_verify=True)
        assert (again.failed, again.deleted) == (0, 1)  # the delete's 404: gone, as it is
        plain = await run(client, pairs, tmp_path)
        assert plain.failed == 0
    assert read_status(tmp_path).failed == 0 and list(failures(tmp_path)) == []


async def test_a_list_with_another_session_never_deletes(emu: Emulator, tmp_path: Path) -> None:
    (archive, session), (_, other) = emu.seed_archives(2, videos_per_archive=1, video_size=5000)
    async with aioopentok.Client(emu.api_key, emu.api_secret, api_url=emu.url) as client:
        assert (await run(client, [(archive, session)], tmp_path)).done == 1
        emu.clear_requests()
        wrong = await run(client, [(archive, other)], tmp_path, delete_after_verify=True)
        assert (wrong.deleted, wrong.failed) == (0, 1)
        assert emu.requests == [] and not emu.archives[archive].deleted
        right = await run(client, [(archive, session)], tmp_path, delete_after_verify=True)
        assert right.deleted == 1 and emu.archives[archive].deleted


def test_a_list_saved_with_a_bom_reads_its_first_line(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    aid = "0c9c4b1e-0000-4000-8000-000000000001"
    listing.write_bytes(f"\ufeff{aid} 1_MX4xfg\r\n".encode())
    with listing.open(encoding="utf-8-sig") as stream:
        assert list(read_list(stream, str(listing))) == [(aid, "1_MX4xfg")]


async def test_lines_that_start_nothing_do_not_stall_the_loop(
    emu: Emulator, tmp_path: Path
) -> None:
    pairs = emu.seed_archives(1, videos_per_archive=1, video_size=5000)
    shard = Shard(0, 2)
    others = [(f"{i:08d}-0000-4000-8000-000000000000", "s") for i in range(200_000)]
    others = [pair for pair in others if not shard.owns(pair[0])]
    gaps: list[float] = []

    async def heartbeat() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    try:
        async with aioopentok.Client(emu.api_key, emu.api_secret, api_url=emu.url) as client:
            await run(client, others + pairs, tmp_path, shard=shard)
    finally:
        beat.cancel()
    assert gaps and max(gaps) < 0.25  # ~100,000 foreign lines: never a quarter second blocked
