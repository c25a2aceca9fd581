"""The export's entry points: ``run`` a job, ``plan`` it without a request, read its ``status``.

Strategy: every argument is checked here, before any I/O; then ``run`` opens this shard's
journal and hands over to ``_job``. ``plan`` (``--dry-run``) and ``read_status`` only read the
input and the journals: they make no request and change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
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
            record = next((r for r in (jl.get(archive_id) for jl in journals) if r), None)
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
    """Totals over every shard's journal under ``dest``."""

    dest: Path
    shards: tuple[ShardStatus, ...] = field(default_factory=tuple)

    def _sum(self, name: str) -> int:
        return sum(int(getattr(s, name)) for s in self.shards)

    @property
    def done(self) -> int:
        """Archives exported (``deleted`` ones included)."""
        return self._sum("done")

    @property
    def failed(self) -> int:
        return self._sum("failed")

    @property
    def pending(self) -> int:
        return self._sum("pending")

    @property
    def deleted(self) -> int:
        return self._sum("deleted")

    @property
    def bytes(self) -> int:
        return self._sum("bytes")


def read_status(dest: str | Path) -> ExportStatus:
    """Return the totals of every shard's journal under ``dest`` (no journal: all zero)."""
    directory = _check_dest(dest)
    shards = []
    for journal in _readers(directory):
        try:
            c = journal.counts()
        finally:
            journal.close()
        done = c[j.DONE] + c[j.DELETED]
        finished = done + c[j.FAILED]
        pending = max(c[j.PENDING], c["listed"] - finished) if c["listed"] >= 0 else c[j.PENDING]
        name = journal.path.name.removesuffix(".sqlite").removeprefix("shard-")
        shards.append(
            ShardStatus(
                name.replace("-of-", "/"), done, c[j.FAILED], pending, c[j.DELETED], c["bytes"]
            )
        )
    return ExportStatus(directory, tuple(shards))


def failures(dest: str | Path) -> Iterator[ArchiveRecord]:
    """Yield every shard's failed archives with their reasons."""
    for journal in _readers(_check_dest(dest)):
        try:
            yield from journal.failures()
        finally:
            journal.close()
