"""Download many archives at once with ``Client.export``: journaled, resumable, a line each.

The file has one archive per line, ``ARCHIVE_ID SESSION_ID`` (the session it was recorded in,
which a moderator token must name); blank lines and ``#`` comments are skipped. Each archive
lands in ``DEST/ARCHIVE_ID/`` with its ``manifest.json``; the job's journal is in
``DEST/.aioopentok/``, so re-running skips finished archives without a single request and
retries the failed ones. For the real job (progress, reports, shards, deletion) use the CLI:
``aioopentok export archives.txt --dest downloads`` (README, "Export a whole account").

    export OPENTOK_API_KEY=... OPENTOK_API_SECRET=... [OPENTOK_API_URL=...]
    python examples/bulk_download.py archives.txt --dest downloads --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import aioopentok
from aioopentok.export import read_list


def print_outcome(progress: aioopentok.ExportProgress) -> None:
    """Print one line per archive as it ends (and why, if it failed)."""
    o = progress.outcome
    if o is None:
        return
    status = "FAILED" if o.status == "failed" else "ok"
    print(f"{status:6} {o.archive_id}  {o.videos}/{o.videos} videos  {o.bytes / 2**20:.1f} MiB")
    if o.error:
        print(f"         {o.error}")


async def run(args: argparse.Namespace) -> int:
    async with aioopentok.Client(
        os.environ["OPENTOK_API_KEY"],
        os.environ["OPENTOK_API_SECRET"],
        api_url=os.environ.get("OPENTOK_API_URL", aioopentok.PRODUCTION_URL),
    ) as client:
        with args.archives.open() as lines:  # read lazily: the list may be huge
            result = await client.export(
                read_list(lines, str(args.archives)),
                args.dest,
                concurrency=args.concurrency,
                progress=print_outcome,
            )
    good = result.done + result.skipped
    rate = result.bytes / 2**20 / result.seconds if result.seconds > 0 else 0.0
    print(
        f"{good}/{good + result.failed} archives complete, {result.bytes / 2**20:.1f} MiB "
        f"in {result.seconds:.2f} s ({rate:.1f} MiB/s)"
    )
    return 0 if result.ok else 1


def positive(text: str) -> int:
    """An argparse type: an int of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archives", type=Path, help="file of 'ARCHIVE_ID SESSION_ID' lines")
    parser.add_argument("--dest", type=Path, default=Path("downloads"))
    parser.add_argument("--concurrency", type=positive, default=8, help="requests in flight (8)")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
