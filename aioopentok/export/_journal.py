"""The export journal: one SQLite database per shard under ``dest/.aioopentok/``.

Strategy: stdlib ``sqlite3`` in WAL mode, autocommit, one row per archive. Each state change is
its own transaction, so a ``kill -9`` at any moment leaves the journal as it was after the last
one. ``synchronous=NORMAL`` is enough: in WAL mode it survives a killed process, and a power
cut can only lose the newest rows, which then redo work whose files are already fsynced (the
ordering that matters: files and ``manifest.json`` are fsynced and renamed *before* their
archive is recorded ``done``). Each shard writes its own file, so N processes sharing ``dest``
never wait on each other's locks; ``read_status`` merges them. Calls are short (a few tens of
microseconds) and run on the event loop thread, the only one that touches the connection.
Nothing secret is stored: errors are the exception text, which never holds a token or a signed
URL (the client's messages leave queries out).
"""

from __future__ import annotations

import errno
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from .._errors import DiskError
from ._list import Shard

__all__ = [
    "DELETED",
    "DONE",
    "FAILED",
    "JOURNAL_DIR",
    "PENDING",
    "ArchiveRecord",
    "Journal",
    "journal_paths",
]

JOURNAL_DIR = ".aioopentok"
PENDING, DONE, FAILED, DELETED = "pending", "done", "failed", "deleted"
_SUFFIX = ".sqlite"
_MAX_ERROR_CHARS = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS archives (
    archive_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'deleted')),
    videos INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    run INTEGER NOT NULL,
    updated REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS archives_status ON archives (status);
CREATE TABLE IF NOT EXISTS runs (
    run INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    listed INTEGER
);
"""


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """One archive's row: its last known status, and why it failed if it did."""

    archive_id: str
    session_id: str
    status: str
    videos: int = 0
    bytes: int = 0
    error: str | None = None
    attempts: int = 0
    run: int = 0


def journal_paths(dest: Path) -> list[Path]:
    """Return every shard's journal under ``dest`` (sorted by name)."""
    directory = dest / JOURNAL_DIR
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"shard-*{_SUFFIX}"))


class Journal:
    """One shard's journal, opened for this run (``run`` is this run's number).

    ``readonly`` opens it only to read (no schema, no run recorded): ``export-status``.
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self._others: list[Journal] = []
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        # A small page cache: lookups are by primary key, and SQLite's default (2 MB) would make
        # a 10,000-archive job's memory grow with its journal.
        self._db.execute("PRAGMA cache_size=-256")
        if readonly:  # export-status, --dry-run: read; a running job may be writing
            self.run = 0
            return
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            cursor = self._db.execute("INSERT INTO runs (started) VALUES (?)", (time.time(),))
            self.run = int(cursor.lastrowid or 0)
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def for_shard(cls, dest: Path, shard: Shard) -> Journal:
        """Open (creating if needed) the journal of ``shard`` under ``dest``.

        The other journals already under ``dest`` are opened to read: an archive done under
        another sharding (an unsharded run before ``--shard 3/8``, or 8 shards before 4) is
        done here too, and costs no request.
        """
        directory = dest / JOURNAL_DIR
        directory.mkdir(parents=True, exist_ok=True)
        journal = cls(directory / f"{shard.name}{_SUFFIX}")
        try:
            journal._others = [
                cls(path, readonly=True) for path in journal_paths(dest) if path != journal.path
            ]
        except BaseException:
            journal.close()
            raise
        return journal

    def close(self) -> None:
        """Close the database (idempotent); every change is already committed."""
        for other in self._others:
            other.close()
        self._db.close()

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        """Run one write (its own transaction); a full or failing disk is a ``DiskError``."""
        try:
            self._db.execute(sql, params)
        except sqlite3.OperationalError as exc:  # "database or disk is full", "disk I/O error"
            full = "full" in str(exc)
            error = DiskError(f"cannot write the journal {self.path}: {exc}")
            error.errno = errno.ENOSPC if full else errno.EIO
            error.strerror, error.filename = str(exc), str(self.path)
            raise error from exc

    # --- one archive ------------------------------------------------------------------------

    def get(self, archive_id: str) -> ArchiveRecord | None:
        """Return the archive's row, or None if this journal never saw it."""
        row = self._db.execute(
            "SELECT archive_id, session_id, status, videos, bytes, error, attempts, run "
            "FROM archives WHERE archive_id = ?",
            (archive_id,),
        ).fetchone()
        return None if row is None else ArchiveRecord(*row)

    def lookup(self, archive_id: str) -> ArchiveRecord | None:
        """Return the archive's row here, or its ``done``/``deleted`` row in another shard's."""
        own = self.get(archive_id)
        if own is not None and own.status in (DONE, DELETED):
            return own
        for other in self._others:
            found = other.get(archive_id)
            if found is not None and found.status in (DONE, DELETED):
                return replace(found, run=-1)  # another journal's run numbers mean nothing here
        return own

    def start(self, archive_id: str, session_id: str) -> None:
        """Record that this run works on the archive (a kill now leaves it ``pending``)."""
        self._write(
            "INSERT INTO archives (archive_id, session_id, status, run, updated) "
            "VALUES (?, ?, 'pending', ?, ?) ON CONFLICT (archive_id) DO UPDATE SET "
            "session_id = excluded.session_id, status = 'pending', run = excluded.run, "
            "updated = excluded.updated",
            (archive_id, session_id, self.run, time.time()),
        )

    def finish(
        self,
        archive_id: str,
        session_id: str,
        status: str,
        *,
        videos: int = 0,
        size: int = 0,
        error: str | None = None,
    ) -> None:
        """Record the archive's outcome: ``done``, ``deleted`` or ``failed`` with a reason."""
        failed = 1 if status == FAILED else 0
        reason = None if error is None else error[:_MAX_ERROR_CHARS]
        self._write(
            "INSERT INTO archives "
            "(archive_id, session_id, status, videos, bytes, error, attempts, run, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (archive_id) DO UPDATE SET "
            "session_id = excluded.session_id, status = excluded.status, "
            "videos = excluded.videos, bytes = excluded.bytes, error = excluded.error, "
            "attempts = archives.attempts + excluded.attempts, run = excluded.run, "
            "updated = excluded.updated",
            (archive_id, session_id, status, videos, size, reason, failed, self.run, time.time()),
        )

    # --- the run ----------------------------------------------------------------------------

    def set_listed(self, count: int) -> None:
        """Record how many archives the input gives this shard (for ``pending``)."""
        self._write("UPDATE runs SET listed = ? WHERE run = ?", (count, self.run))

    def end_run(self) -> None:
        """Record that this run ended (finished, failed or interrupted)."""
        self._write("UPDATE runs SET finished = ? WHERE run = ?", (time.time(), self.run))

    # --- reading ----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Return ``{status: archives}`` and ``bytes`` (done and deleted), plus ``listed``."""
        result = {PENDING: 0, DONE: 0, FAILED: 0, DELETED: 0, "bytes": 0}
        for status, count, size in self._db.execute(
            "SELECT status, COUNT(*), SUM(bytes) FROM archives GROUP BY status"
        ):
            result[status] = int(count)
            if status in (DONE, DELETED):
                result["bytes"] += int(size or 0)
        row = self._db.execute(
            "SELECT listed FROM runs WHERE listed IS NOT NULL ORDER BY run DESC LIMIT 1"
        ).fetchone()
        result["listed"] = -1 if row is None else int(row[0])
        return result

    def rows(self) -> Iterator[tuple[str, str, int]]:
        """Yield ``(archive_id, status, bytes)`` of every archive, in archive ID order."""
        yield from self._db.execute(
            "SELECT archive_id, status, bytes FROM archives ORDER BY archive_id"
        )

    def failures(self) -> Iterator[ArchiveRecord]:
        """Yield the failed archives, oldest failure first."""
        for row in self._db.execute(
            "SELECT archive_id, session_id, status, videos, bytes, error, attempts, run "
            "FROM archives WHERE status = 'failed' ORDER BY updated"
        ):
            yield ArchiveRecord(*row)
