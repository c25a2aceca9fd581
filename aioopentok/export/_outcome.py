"""What an export reports: each archive's outcome, the job's progress, and its result.

Strategy: frozen values the job builds and hands out; no behaviour beyond derived properties.
``ExportProgress`` is a snapshot passed to the caller's ``progress`` callback after every
archive (with that archive's ``outcome``) and, at most ten times a second, as bytes arrive.
``Tally`` is the job's counters, which build both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DELETED",
    "DONE",
    "FAILED",
    "SKIPPED",
    "ArchiveOutcome",
    "ExportProgress",
    "ExportResult",
    "Tally",
]

DONE, FAILED, SKIPPED, DELETED = "done", "failed", "skipped", "deleted"


@dataclass(frozen=True, slots=True)
class ArchiveOutcome:
    """One archive of this run.

    ``status`` is ``done`` (exported now), ``skipped`` (done in an earlier run), ``deleted``
    (exported, verified and deleted from the service) or ``failed`` (``error`` says why; the
    next run tries it again).
    """

    archive_id: str
    session_id: str
    status: str
    videos: int = 0
    bytes: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ExportProgress:
    """A snapshot of the job; ``outcome`` is the archive that just ended, if any."""

    done: int
    failed: int
    skipped: int
    deleted: int
    videos: int
    bytes: int
    seconds: float
    total: int | None = None
    concurrency: int = 0
    outcome: ArchiveOutcome | None = None

    @property
    def finished(self) -> int:
        """Archives of this shard dealt with so far (done, failed or skipped)."""
        return self.done + self.failed + self.skipped


@dataclass(frozen=True, slots=True)
class ExportResult:
    """How an export run ended.

    Attributes:
        done: archives exported in this run (``deleted`` ones included).
        failed: archives that failed in this run (recorded in the journal, retried next run).
        skipped: archives done in an earlier run (no request made for them).
        deleted: archives deleted from the service after verification, in this run.
        videos, bytes: videos and bytes of the archives exported in this run.
        seconds: the run's wall time.
        journal: this shard's journal file.
        rate_limited: 429s (or ``SlowDown``) the job slowed down for.
        lowest_concurrency: the lowest concurrency the job-wide pace went down to.
    """

    done: int
    failed: int
    skipped: int
    deleted: int
    videos: int
    bytes: int
    seconds: float
    journal: Path
    rate_limited: int = 0
    lowest_concurrency: int = 0

    @property
    def ok(self) -> bool:
        """Whether every archive of the input is exported (now or before)."""
        return self.failed == 0


class Tally:
    """The counters of one run; builds its progress snapshots and its result."""

    def __init__(self, clock: Callable[[], float], total: int | None, journal: Path) -> None:
        self.clock, self.total, self.journal = clock, total, journal
        self.started = clock()
        self.counts = {DONE: 0, FAILED: 0, SKIPPED: 0, DELETED: 0}
        self.videos = self.bytes = 0
        self.received = 0  # bytes that arrived in this run (live; ``bytes`` counts archives)

    def add(self, outcome: ArchiveOutcome, *, exported_now: bool = True) -> None:
        """Count an archive's outcome (a ``deleted`` one is also done, or skipped if earlier)."""
        status = outcome.status
        if status == DELETED:
            self.counts[DELETED] += 1
            status = DONE if exported_now else SKIPPED
        self.counts[status] += 1
        if status == DONE:
            self.videos += outcome.videos
            self.bytes += outcome.bytes

    def snapshot(self, outcome: ArchiveOutcome | None, concurrency: int) -> ExportProgress:
        """Return the progress so far."""
        c = self.counts
        return ExportProgress(
            done=c[DONE],
            failed=c[FAILED],
            skipped=c[SKIPPED],
            deleted=c[DELETED],
            videos=self.videos,
            bytes=self.received,
            seconds=self.clock() - self.started,
            total=self.total,
            concurrency=concurrency,
            outcome=outcome,
        )

    def result(self, rate_limited: int, lowest_concurrency: int) -> ExportResult:
        """Return the run's result."""
        c = self.counts
        return ExportResult(
            done=c[DONE],
            failed=c[FAILED],
            skipped=c[SKIPPED],
            deleted=c[DELETED],
            videos=self.videos,
            bytes=self.bytes,
            seconds=self.clock() - self.started,
            journal=self.journal,
            rate_limited=rate_limited,
            lowest_concurrency=lowest_concurrency,
        )
