"""Shared helpers of the benchmarks: machine details, ratio statistics, the table, CPU pinning.

Strategy: every figure is a ratio of two things measured in the same process run, interleaved
rep by rep (A, B, A, B, ...), so drift of a noisy machine hits both sides; each row reports the
min/median/max of the per-rep ratio. Nothing here asserts: the table says "yes"/"NO" against the
issue's target and the README says why a miss is a miss.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "REPO",
    "Row",
    "bench_dir",
    "machine_details",
    "pin",
    "print_machine",
    "print_table",
    "ratio_row",
]

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    """One line of the table. ``ratios`` are per-rep; ``target`` is (op, value) or None."""

    bench: str
    metric: str
    ratios: tuple[float, ...]
    unit: str = "x"
    target: tuple[str, float] | None = None
    note: str = ""

    @property
    def low(self) -> float:
        return min(self.ratios)

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    @property
    def high(self) -> float:
        return max(self.ratios)

    def verdict(self) -> str:
        """Judge the median against the target ("yes"/"NO"), "" when there is none."""
        if self.target is None:
            return ""
        op, value = self.target
        ok = self.median <= value if op == "<=" else self.median >= value
        return "yes" if ok else "NO"


def ratio_row(
    bench: str,
    metric: str,
    ratios: Sequence[float],
    target: tuple[str, float] | None = None,
    *,
    unit: str = "x",
    note: str = "",
) -> Row:
    return Row(bench, metric, tuple(ratios), unit, target, note)


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "%":
        return f"{value:.0f}%"
    return f"{value:.3g} {unit}"


def print_table(rows: Sequence[Row], file: object = None) -> None:
    """Print rows as a Markdown table (pasteable into benchmarks/README.md)."""
    out = sys.stdout if file is None else file
    header = ("benchmark", "figure", "min", "median", "max", "target", "met", "note")
    lines = [header]
    for r in rows:
        target = "" if r.target is None else f"{r.target[0]} {_fmt(r.target[1], r.unit)}"
        lines.append(
            (
                r.bench,
                r.metric,
                _fmt(r.low, r.unit),
                _fmt(r.median, r.unit),
                _fmt(r.high, r.unit),
                target,
                r.verdict(),
                r.note,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |",
              file=out)  # fmt: skip
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
    out.flush()  # type: ignore[attr-defined]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return "not installed"


def _tool_version(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "unusable"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def machine_details() -> dict[str, str]:
    """CPU, cores, memory, kernel, Python and the libraries every figure depends on."""
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    fs = "unknown"
    try:
        done = subprocess.run(
            ["df", "-T", tempfile.gettempdir()], capture_output=True, text=True, check=False
        )
        fs = " ".join(done.stdout.splitlines()[-1].split()[:2])
    except (OSError, IndexError):
        pass
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": mem,
        "kernel": platform.release(),
        "python": sys.version.split()[0] + " " + platform.python_implementation(),
        "aiohttp": _version("aiohttp"),
        "aioopentok": _version("aioopentok"),
        "opentok (official SDK)": _version("opentok"),
        "curl": _tool_version(["curl", "--version"]),
        "nginx": _tool_version(["nginx", "-v"]),
        "temp dir filesystem": f"{tempfile.gettempdir()} ({fs})",
    }


def print_machine() -> None:
    for key, value in machine_details().items():
        print(f"  {key}: {value}")
    sys.stdout.flush()


def pin(cpu: int) -> None:
    """Pin this process to one CPU (if there are two or more), so client and server don't share."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {cpu})


def bench_dir() -> Path:
    """A fresh temp dir on the repo's disk (or /tmp if that is the same), for benchmark files."""
    return Path(tempfile.mkdtemp(prefix="aioopentok-bench-"))
