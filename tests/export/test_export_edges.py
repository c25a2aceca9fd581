"""Export edges a review found: a stop right after the service deleted an archive, a LIST
whose session does not match the export, a LIST saved with a BOM, a LIST of lines that start
nothing (the event loop must keep turning)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

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
    others = [(f"{i:08d}-0000-4000-8000-000000000000", "s") for i in range(400_000)]
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
    # ~200,000 foreign lines (over a second of work without yielding): never half a second
    # blocked, with room for a loaded CI machine.
    assert gaps and max(gaps) < 0.5


async def test_every_429_of_client_export_reaches_the_job_wide_pace(
    emu: Emulator, tmp_path: Path
) -> None:
    pairs = emu.seed_archives(20, videos_per_archive=1, video_size=5000)
    emu.faults.fail_status = 429
    emu.faults.retry_after = 0
    emu.faults.fail_503 = 12
    async with aioopentok.Client(emu.api_key, emu.api_secret, api_url=emu.url) as client:
        result = await client.export(pairs, tmp_path, concurrency=8)
        assert client.retry.statuses >= {429}  # the client's own policy is unchanged
    assert (result.done, result.failed) == (20, 0)
    assert result.rate_limited == 12  # each one, not only those past the client's retries
    assert result.lowest_concurrency < 8


async def test_a_retry_view_shares_the_pool_and_closes_nothing(emu: Emulator) -> None:
    async with aioopentok.Client(emu.api_key, emu.api_secret, api_url=emu.url) as client:
        view = client.with_retry(0)
        assert view.retry.retries == 0 and client.retry.retries == 3
        assert view.http_session is client.http_session
        emu.faults.fail_503 = 1
        sid = emu.create_session_id()
        aid = emu.add_archive(sid, [1000])
        token = client.generate_token(sid, aioopentok.Role.MODERATOR)
        with pytest.raises(aioopentok.ServerError):  # no retry in the view
            await view.get_archive_manifest(aid, token)
        await view.close()
        assert (await client.get_archive_manifest(aid, token)).archive_id == aid
    with pytest.raises(RuntimeError, match="closed"):  # the parent closed: so is the view
        await view.get_archive_manifest(aid, token)


async def test_a_new_archive_folder_is_made_durable_in_dest(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aioopentok.export._job as job_module

    synced: list[Path] = []
    real = job_module.fsync_dir
    monkeypatch.setattr(job_module, "fsync_dir", lambda d: (synced.append(d), real(d)))
    pairs = emu.seed_archives(2, videos_per_archive=1, video_size=5000)
    async with aioopentok.Client(emu.api_key, emu.api_secret, api_url=emu.url) as client:
        assert (await run(client, pairs, tmp_path)).done == 2
    assert synced.count(tmp_path) == 2  # one fsync of dest per new folder


def test_the_dry_run_plans_as_the_run_decides_across_shardings(tmp_path: Path) -> None:
    import itertools

    from aioopentok.export import plan, shard_of
    from aioopentok.export._journal import DONE, FAILED, Journal

    aid = next(f"a{i}" for i in itertools.count() if shard_of(f"a{i}", 8) == 3)
    unsharded = Journal.for_shard(tmp_path, Shard(0, 1))
    unsharded.finish(aid, "s", FAILED, error="boom")
    unsharded.close()
    sharded = Journal.for_shard(tmp_path, Shard(3, 8))
    sharded.finish(aid, "s", DONE, videos=1, size=1)
    decided = sharded.lookup(aid)
    sharded.close()
    assert decided is not None and decided.status == DONE
    assert [p.action for p in plan([(aid, "s")], tmp_path, shard="3/8")] == ["skip"]
    assert [p.action for p in plan([(aid, "s")], tmp_path, shard="3/8",
                                   delete_after_verify=True)] == ["delete"]  # fmt: skip
