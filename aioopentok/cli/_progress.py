"""Download progress for the CLI: one tqdm bar per video, or nothing.

Strategy: ``make_progress`` returns a callback with the downloads' ``progress(video_id, done,
total)`` signature, or None when bars are off (``--quiet``, ``--json``, stdout not a terminal, or
tqdm not installed). tqdm is the optional ``cli`` extra, so it is imported here, lazily.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from typing import Any, TextIO

__all__ = ["ProgressBars", "make_progress"]


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
