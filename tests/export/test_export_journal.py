"""The journal (SQLite, WAL) and the job-wide ``Pace`` semaphore, without a network."""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from pathlib import Path

import pytest

from aioopentok import DiskError
from aioopentok.export import JOURNAL_DIR, Shard, journal_paths, read_status
from aioopentok.export._journal import DONE, FAILED, PENDING, Journal
from aioopentok.export._pace import Pace


def test_journal_keeps_each_archive_state_across_runs(tmp_path: Path) -> None:
    journal = Journal.for_shard(tmp_path, Shard(1, 4))
    assert journal.path == tmp_path / JOURNAL_DIR / "shard-1-of-4.sqlite"
    journal.start("a1", "s1")
    journal.finish("a2", "s1", DONE, videos=2, size=300)
    journal.finish("a3", "s1", FAILED, error="NotFoundError: gone (code 404)")
    run = journal.run
    journal.close()

    again = Journal.for_shard(tmp_path, Shard(1, 4))
    assert again.run == run + 1
    assert again.get("a1").status == PENDING
    assert again.get("a2").bytes == 300 and again.get("a2").videos == 2
    record = again.get("a3")
    assert record.status == FAILED and record.attempts == 1 and "404" in record.error
    again.finish("a3", "s1", FAILED, error="still gone")
    assert again.get("a3").attempts == 2
    again.finish("a3", "s1", DONE, videos=1, size=5)
    assert again.get("a3").error is None
    assert again.get("nope") is None
    again.close()
    mode = sqlite3.connect(journal.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_status_merges_every_shard_and_counts_listed_as_pending(tmp_path: Path) -> None:
    for index in range(2):
        journal = Journal.for_shard(tmp_path, Shard(index, 2))
        journal.finish(f"d{index}", "s", DONE, videos=1, size=100)
        journal.finish(f"f{index}", "s", FAILED, error="x")
        journal.set_listed(5)  # 5 listed, 2 dealt with: 3 pending
        journal.close()
    assert len(journal_paths(tmp_path)) == 2
    status = read_status(tmp_path)
    assert (status.done, status.failed, status.pending, status.bytes) == (2, 2, 6, 200)
    assert [s.shard for s in status.shards] == ["0/2", "1/2"]


def test_status_of_a_directory_without_journals_is_all_zero(tmp_path: Path) -> None:
    status = read_status(tmp_path)
    assert (status.done, status.failed, status.pending, status.bytes) == (0, 0, 0, 0)


async def test_pace_bounds_requests_in_flight_and_pauses_after_a_429() -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
        await asyncio.sleep(0)

    pace = Pace(4, clock=lambda: now[0], sleep=fake_sleep)
    peak = 0

    async def request(k: int) -> None:
        nonlocal peak
        epoch = await pace.acquire()
        peak = max(peak, pace.in_flight)
        await asyncio.sleep(0)
        if k == 0:
            pace.release(rate_limited=True, retry_after=3.0, epoch=epoch)
        else:
            pace.release(epoch=epoch)

    await asyncio.gather(*(request(k) for k in range(20)))
    assert peak <= 4
    assert pace.state.limit <= 4 and pace.lowest == 2
    assert pace.rate_limited == 1
    assert slept and now[0] >= 3.0  # every request after the 429 waited for its Retry-After
    assert pace.in_flight == 0


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    pace = Pace(1)
    await pace.acquire()
    waiter = asyncio.ensure_future(pace.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    pace.release()
    assert pace.in_flight == 0
    await asyncio.wait_for(pace.acquire(), 1)
    assert pace.in_flight == 1


def test_a_full_journal_disk_is_a_disk_error_not_a_crash(tmp_path: Path) -> None:
    journal = Journal.for_shard(tmp_path, Shard(0, 1))
    pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
    journal._db.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own "disk is full"
    with pytest.raises(DiskError) as info:
        for k in range(10_000):
            journal.finish(f"archive-{k:05d}", "s" * 200, DONE, videos=1, size=1)
    assert info.value.errno == errno.ENOSPC and "full" in str(info.value)
    journal.close()
