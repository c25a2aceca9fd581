"""Run every benchmark and print one table (about 8 minutes on a 2-core VM; segmented ~5).

Strategy: each ``bench_*.py`` exposes ``run() -> list[Row]`` and also runs alone; this script
prints the machine once, runs them in turn (each in its own process, so one's memory and
pinned CPU don't colour the next) and prints the combined Markdown table for
``benchmarks/README.md``. ``load.py`` (full-size load runs, pass/fail, not ratios) is separate.

Usage: ``python benchmarks/run_all.py [tokens] [sessions] [downloads] [segmented]`` (default:
all).
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import Row, print_machine, print_table

__all__ = ["main"]

BENCHES = ("tokens", "sessions", "downloads", "segmented")
_CHILD = """
import dataclasses, json, sys
sys.path.insert(0, {here!r})
import bench_{name} as bench
print("@@ROWS@@" + json.dumps([dataclasses.asdict(r) for r in bench.run()]))
"""


def _run_one(name: str) -> list[Row]:
    here = str(Path(__file__).resolve().parent)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD.format(here=here, name=name)],
        capture_output=True,
        text=True,
        check=False,
    )
    rows: list[Row] = []
    for line in done.stdout.splitlines():
        if line.startswith("@@ROWS@@"):
            for raw in json.loads(line[len("@@ROWS@@") :]):
                raw["ratios"] = tuple(raw["ratios"])
                raw["target"] = tuple(raw["target"]) if raw["target"] else None
                rows.append(Row(**raw))
        elif line.strip():
            print(f"  [{name}] {line}")
    if done.returncode:
        print(f"  [{name}] FAILED (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return rows


def main(argv: list[str]) -> int:
    names = [n for n in argv if n in BENCHES] or list(BENCHES)
    print(f"aioopentok benchmarks, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print("Machine:")
    print_machine()
    rows: list[Row] = []
    started = time.monotonic()
    for name in names:
        t0 = time.monotonic()
        rows += _run_one(name)
        print(f"  {name}: {time.monotonic() - t0:.0f} s", flush=True)
    print(f"Total {time.monotonic() - started:.0f} s. Ratios: min/median/max over the reps.")
    print_table(rows)
    return 1 if any(r.verdict() == "NO" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
