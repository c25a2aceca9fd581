"""Progress for the CLI: one tqdm bar per video (downloads), one status line per job (export).

Strategy: ``make_progress`` returns a callback with the downloads' ``progress(video_id, done,
total)`` signature, or None when bars are off (``--quiet``, ``--json``, stdout not a terminal, or
tqdm not installed). tqdm is the optional ``cli`` extra, so it is imported here, lazily.
An export of 100,000 archives must not draw 200,000 bars: ``make_job_display`` returns one line
for the whole job (archives done/total, bytes, rate, ETA, failures), redrawn in place on a
terminal, or printed every ``_LOG_EVERY`` seconds into a log (a Kubernetes pod's stderr).
"""

from __future__ import annotations

import importlib
import shutil
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ..export import ExportProgress

__all__ = ["JobDisplay", "ProgressBars", "make_job_display", "make_progress"]

_DRAW_EVERY = 0.25  # seconds between redraws on a terminal
_LOG_EVERY = 10.0  # seconds between lines when stderr is a file or a pipe


class ProgressBars:
    """A ``progress(video_id, done, total)`` callback drawing one bar per video on ``file``."""

    def __init__(self, tqdm: Any, file: TextIO) -> None:
        self._tqdm = tqdm
        self._file = file
        self._bars: dict[str, Any] = {}

    def __call__(self, video_id: str, done: int, total: int | None) -> None:
        bar = self._bars.get(video_id)
        if bar is None:
            size = shutil.get_terminal_size()  # tqdm's own probe says 0x0 on a sizeless pty
            bar = self._tqdm(
                total=total,
                desc=video_id[:13],
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                position=len(self._bars),
                leave=True,
                file=self._file,
                ncols=min(size.columns, 100),
                nrows=size.lines,
            )
            self._bars[video_id] = bar
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    def close(self) -> None:
        """Close every bar (idempotent)."""
        bars, self._bars = self._bars, {}
        for bar in bars.values():
            bar.close()


def make_progress(
    *, enabled: bool, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> ProgressBars | None:
    """Return bars (drawn on stderr) if wanted, tqdm is installed, and both stdout and stderr
    are terminals: output piped to a file stays clean, and no escape codes land in a log."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    if not enabled or not out.isatty() or not err.isatty():
        return None
    try:
        tqdm = importlib.import_module("tqdm").tqdm
    except ImportError:  # the "cli" extra is not installed: no bars, the summary still prints
        return None
    return ProgressBars(tqdm, err)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def job_line(snap: ExportProgress) -> str:
    """Return the one-line status of an export job."""
    total = f"/{snap.total:,}" if snap.total is not None else ""
    rate = snap.bytes / snap.seconds if snap.seconds > 0 else 0.0
    worked = snap.done + snap.failed
    eta = ""
    if snap.total is not None and worked and snap.seconds > 0:
        left = max(snap.total - snap.finished, 0)
        eta = f" | ETA {_duration(left * snap.seconds / worked)}"
    return (
        f"archives {snap.finished:,}{total} ({snap.done:,} done, {snap.skipped:,} skipped, "
        f"{snap.failed:,} failed) | {_size(snap.bytes)} | {_size(rate)}/s{eta} | "
        f"concurrency {snap.concurrency}"
    )


class JobDisplay:
    """An export's progress on one line: redrawn on a terminal, logged now and then otherwise."""

    def __init__(
        self, file: TextIO, *, tty: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._file, self._tty, self._clock = file, tty, clock
        self._every = _DRAW_EVERY if tty else _LOG_EVERY
        self._last = -self._every
        self._latest: ExportProgress | None = None

    def update(self, snap: ExportProgress) -> None:
        """Take a snapshot; draw it if the last drawing is old enough."""
        self._latest = snap
        now = self._clock()
        if now - self._last >= self._every:
            self._last = now
            self._draw(snap)

    def _draw(self, snap: ExportProgress) -> None:
        line = job_line(snap)
        if self._tty:
            width = max(shutil.get_terminal_size().columns - 1, 20)
            self._file.write("\r" + line[:width].ljust(width))
        else:
            self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        """Draw the last snapshot and end the line (idempotent)."""
        if self._latest is not None and self._tty:
            self._draw(self._latest)
            self._file.write("\n")
            self._file.flush()
        self._latest = None


def make_job_display(*, enabled: bool, stderr: TextIO | None = None) -> JobDisplay | None:
    """Return the job's display on stderr, or None when silenced (``-q``, ``--json``)."""
    if not enabled:
        return None
    err = stderr if stderr is not None else sys.stderr
    return JobDisplay(err, tty=err.isatty())
