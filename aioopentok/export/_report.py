"""``--report FILE``: one row per archive of this run, as JSON lines or CSV (by extension).

Strategy: rows are written as outcomes arrive and flushed now and then, so a report of a
million archives never sits in memory and a killed run leaves the rows written so far. The
format is chosen, and the file name checked, before any request (``check_report_path``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from .._errors import InvalidArgumentError
from ._outcome import ArchiveOutcome

__all__ = ["FIELDS", "ReportWriter", "check_report_path"]

FIELDS = ("archive_id", "session_id", "status", "videos", "bytes", "error")
_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_FLUSH_EVERY = 256


def check_report_path(path: Path) -> str:
    """Return the report format of ``path`` (``jsonl`` or ``csv``), or raise."""
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InvalidArgumentError(f"--report must end in .jsonl or .csv, not {path.name!r}")
    return kind


class ReportWriter:
    """Appends one row per ``ArchiveOutcome`` to a ``.jsonl`` or ``.csv`` file."""

    def __init__(self, path: Path) -> None:
        self.kind = check_report_path(path)
        self.path = path
        self.rows = 0
        self._file: IO[str] = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file) if self.kind == "csv" else None
        if self._csv is not None:
            self._csv.writerow(FIELDS)

    def write(self, outcome: ArchiveOutcome) -> None:
        """Write one archive's row."""
        row = (
            outcome.archive_id,
            outcome.session_id,
            outcome.status,
            outcome.videos,
            outcome.bytes,
            outcome.error or "",
        )
        if self._csv is not None:
            self._csv.writerow(row)
        else:
            data = dict(zip(FIELDS, row, strict=True))
            data["error"] = outcome.error
            self._file.write(json.dumps(data) + "\n")
        self.rows += 1
        if self.rows % _FLUSH_EVERY == 0:
            self._file.flush()

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
