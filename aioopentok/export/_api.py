"""The export's entry points: ``run`` a job, ``plan`` it without a request, read its ``status``.

Strategy: every argument is checked here, before any I/O; then ``run`` opens this shard's
journal and hands over to ``_job``. ``plan`` (``--dry-run``) and ``read_status`` only read the
input and the journals: they make no request and change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import heapq
import sqlite3
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import DiskError, InvalidArgumentError
from . import _journal as j
from ._interface import ExportClient
from ._job import ExportProgressCallback, _Job
from ._journal import ArchiveRecord, Journal, journal_paths
from ._list import Shard, parse_shard
from ._outcome import ExportResult

__all__ = [
    "ExportStatus",
    "PlannedArchive",
    "ShardStatus",
    "failures",
    "plan",
    "read_status",
    "run",
]


def _check_dest(dest: object) -> Path:
    try:
        return Path(dest)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidArgumentError(f"dest must be a path, not {dest!r}") from None


def _check_count(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidArgumentError(f"{name} must be an int >= {low}, not {value!r}")
    return value


async def run(
    client: ExportClient,
    items: Iterable[Any] | AsyncIterable[Any],
    dest: str | Path,
    *,
    concurrency: int = 16,
    shard: Shard | str | tuple[int, int] | None = None,
    delete_after_verify: bool = False,
    progress: ExportProgressCallback | None = None,
    total: int | None = None,
    retries: int = 3,
    backoff: float = 0.5,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ExportResult:
    """Export every archive of ``items`` into ``dest``; see ``Client.export``.

    ``total`` (this shard's archive count, if known) only feeds the progress snapshots;
    ``retries`` and ``backoff`` bound the job-level retries of transient failures, above the
    client's own; ``sleep`` and ``clock`` are injectable for tests.
    """
    concurrency = _check_count(concurrency, "concurrency", 1)
    retries = _check_count(retries, "retries", 0)
    the_shard = parse_shard(shard)
    directory = _check_dest(dest)
    if progress is not None and not callable(progress):
        raise InvalidArgumentError(f"progress must be callable or None, not {progress!r}")
    if not isinstance(items, Iterable | AsyncIterable) or isinstance(items, str | bytes):
        raise InvalidArgumentError(f"items must be an iterable of pairs, not {items!r}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        journal = Journal.for_shard(directory, the_shard)
    except (OSError, sqlite3.Error) as exc:
        error = DiskError(f"cannot open the export journal under {directory}: {exc}")
        error.errno = getattr(exc, "errno", None) or errno.EIO
        error.strerror, error.filename = str(exc), str(directory)
        raise error from exc
    job = _Job(
        client,
        directory,
        journal,
        the_shard,
        concurrency=concurrency,
        delete_after_verify=bool(delete_after_verify),
        progress=progress,
        total=total,
        retries=retries,
        backoff=backoff,
        sleep=sleep,
        clock=clock,
    )
    try:
        return await job.run(items)
    finally:
        with contextlib.suppress(Exception):  # a full disk must not hide the real error
            journal.end_run()
        journal.close()


# --- without requests -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedArchive:
    """What a run would do with one archive: ``download``, ``skip`` or ``delete``."""

    archive_id: str
    session_id: str
    action: str
    record: ArchiveRecord | None = None


def _readers(dest: Path) -> list[Journal]:
    return [Journal(path, readonly=True) for path in journal_paths(dest)]


def plan(
    items: Iterable[tuple[str, str]],
    dest: str | Path,
    *,
    shard: Shard | str | tuple[int, int] | None = None,
    delete_after_verify: bool = False,
) -> Iterator[PlannedArchive]:
    """Yield what ``run`` would do with each archive of this shard, from the journals only."""
    the_shard = parse_shard(shard)
    journals = _readers(_check_dest(dest))
    try:
        for archive_id, session_id in items:
            if not the_shard.owns(archive_id):
                continue
            # As the run decides (Journal.lookup): a done/deleted row in any journal wins.
            rows = [r for r in (jl.get(archive_id) for jl in journals) if r is not None]
            finished = (r for r in rows if r.status in (j.DONE, j.DELETED))
            record = next(finished, None) or next(iter(rows), None)
            if record is not None and record.status == j.DELETED:
                action = "skip"
            elif record is not None and record.status == j.DONE:
                action = "delete" if delete_after_verify else "skip"
            else:
                action = "download+delete" if delete_after_verify else "download"
            yield PlannedArchive(archive_id, session_id, action, record)
    finally:
        for journal in journals:
            journal.close()


@dataclass(frozen=True, slots=True)
class ShardStatus:
    """One shard's journal totals (``pending``: listed or started, not done or failed)."""

    shard: str
    done: int
    failed: int
    pending: int
    deleted: int
    bytes: int


@dataclass(frozen=True, slots=True)
class ExportStatus:
    """Totals over every journal under ``dest``, each archive counted once, and per shard.

    ``done`` includes ``deleted``. An archive in several journals (the job was sharded
    differently between runs) counts by its best state there: deleted, done, failed, pending.
    """

    dest: Path
    done: int = 0
    failed: int = 0
    pending: int = 0
    deleted: int = 0
    bytes: int = 0
    shards: tuple[ShardStatus, ...] = field(default_factory=tuple)


_RANK = {j.PENDING: 0, j.FAILED: 1, j.DONE: 2, j.DELETED: 3}


def _merged(journals: list[Journal]) -> Iterator[tuple[str, str, int, int]]:
    """Yield ``(archive_id, best status, bytes, journal index)`` once per archive.

    A k-way merge of the journals' rows in archive ID order: memory stays O(journals), not
    O(archives), for a journal of ten million rows.
    """

    def tagged(k: int) -> Iterator[tuple[str, str, int, int]]:
        for archive_id, status, size in journals[k].rows():
            yield archive_id, status, size, k

    streams = [tagged(k) for k in range(len(journals))]
    best: tuple[str, str, int, int] | None = None
    for row in heapq.merge(*streams):
        if best is not None and row[0] != best[0]:
            yield best
            best = None
        if best is None or _RANK[row[1]] > _RANK[best[1]]:
            best = row
    if best is not None:
        yield best


def _scheme(journal: Journal) -> int:
    """The N of a ``shard-K-of-N`` journal."""
    return int(journal.path.name.removesuffix(".sqlite").rpartition("-of-")[2] or 1)


def read_status(dest: str | Path) -> ExportStatus:
    """Return the totals of every shard's journal under ``dest`` (no journal: all zero)."""
    directory = _check_dest(dest)
    journals = _readers(directory)
    try:
        shards: list[ShardStatus] = []
        listed_by_scheme: dict[int, int] = {}
        for journal in journals:
            c = journal.counts()
            done = c[j.DONE] + c[j.DELETED]
            finished = done + c[j.FAILED]
            listed = c["listed"]
            pending = max(c[j.PENDING], listed - finished) if listed >= 0 else c[j.PENDING]
            name = journal.path.name.removesuffix(".sqlite").removeprefix("shard-")
            shards.append(
                ShardStatus(
                    name.replace("-of-", "/"), done, c[j.FAILED], pending, c[j.DELETED], c["bytes"]
                )
            )
            scheme = _scheme(journal)
            listed_by_scheme[scheme] = listed_by_scheme.get(scheme, 0) + max(listed, 0)
        if len(journals) <= 1:
            totals = shards[0] if shards else ShardStatus("", 0, 0, 0, 0, 0)
            return ExportStatus(directory, totals.done, totals.failed, totals.pending,
                                totals.deleted, totals.bytes, tuple(shards))  # fmt: skip
        counts = dict.fromkeys(_RANK, 0)
        size = 0
        for _, status, nbytes, _ in _merged(journals):
            counts[status] += 1
            if status in (j.DONE, j.DELETED):
                size += nbytes
        seen = sum(counts.values())
        unstarted = max(0, max(listed_by_scheme.values(), default=0) - seen)
        return ExportStatus(
            directory,
            done=counts[j.DONE] + counts[j.DELETED],
            failed=counts[j.FAILED],
            pending=counts[j.PENDING] + unstarted,
            deleted=counts[j.DELETED],
            bytes=size,
            shards=tuple(shards),
        )
    finally:
        for journal in journals:
            journal.close()


def failures(dest: str | Path) -> Iterator[ArchiveRecord]:
    """Yield the archives whose best state over every journal is ``failed``, with why."""
    journals = _readers(_check_dest(dest))
    try:
        if len(journals) == 1:
            yield from journals[0].failures()
            return
        for archive_id, status, _, k in _merged(journals):
            record = journals[k].get(archive_id) if status == j.FAILED else None
            if record is not None:
                yield record
    finally:
        for journal in journals:
            journal.close()
