"""Download many archives at once: IDs from a file, every video in flight together, a summary.

The file has one archive per line, ``ARCHIVE_ID SESSION_ID`` (the session it was recorded in,
which a moderator token must name); blank lines and ``#`` comments are skipped. All manifests are
fetched concurrently, then every video of every archive is downloaded through one shared
``Client`` with at most ``--concurrency`` transfers at a time, into ``DEST/ARCHIVE_ID/``.
Re-running resumes: finished files are skipped, partial ones continue.

    export OPENTOK_API_KEY=... OPENTOK_API_SECRET=... [OPENTOK_API_URL=...]
    python examples/bulk_download.py archives.txt --dest downloads --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aioopentok


@dataclass
class ArchiveOutcome:
    """What happened to one archive."""

    archive_id: str
    videos: int = 0
    ok: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)


def read_archive_list(path: Path) -> list[tuple[str, str]]:
    """Return ``(archive_id, session_id)`` pairs from the file."""
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2:
            raise SystemExit(f"{path}:{number}: expected 'ARCHIVE_ID SESSION_ID'")
        pairs.append((fields[0], fields[1]))
    return pairs


async def download_one_archive(
    client: aioopentok.Client,
    archive_id: str,
    session_id: str,
    dest: Path,
    limit: asyncio.Semaphore,
) -> ArchiveOutcome:
    """Fetch the manifest, then download every video (each waits for a slot in ``limit``)."""
    outcome = ArchiveOutcome(archive_id)
    try:
        token = client.generate_token(session_id, aioopentok.Role.MODERATOR)
        archive = await client.get_archive_manifest(archive_id, token)
    except aioopentok.OpenTokException as exc:
        outcome.errors.append(f"manifest: {exc}")
        return outcome
    video_ids = list(dict.fromkeys(video.id for video in archive.resources))  # no duplicates
    outcome.videos = len(video_ids)
    folder = dest / archive_id
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        outcome.errors.append(f"cannot create {folder}: {exc.strerror}")
        return outcome

    async def one(video_id: str) -> None:
        async with limit:
            try:
                # A directory as dest: the file is <video_id>.flv, and an ID that is unsafe as
                # a file name is refused (InvalidArgumentError) before anything is written.
                result = await client.download_video(archive_id, video_id, token, folder)
            except aioopentok.OpenTokException as exc:
                outcome.errors.append(f"{video_id}: {exc}")
                return
        outcome.ok += 1
        outcome.bytes += result.size

    await asyncio.gather(*(one(video_id) for video_id in video_ids))
    return outcome


async def bulk_download(
    client: aioopentok.Client, pairs: list[tuple[str, str]], dest: Path, concurrency: int
) -> list[ArchiveOutcome]:
    """Download every archive in ``pairs`` concurrently; return one outcome per archive."""
    limit = asyncio.Semaphore(concurrency)
    return await asyncio.gather(
        *(download_one_archive(client, aid, sid, dest, limit) for aid, sid in pairs)
    )


def print_summary(outcomes: list[ArchiveOutcome], seconds: float) -> None:
    """Print one line per archive and the totals."""
    for o in outcomes:
        status = "ok" if not o.errors else "FAILED"
        print(f"{status:6} {o.archive_id}  {o.ok}/{o.videos} videos  {o.bytes / 2**20:.1f} MiB")
        for error in o.errors:
            print(f"         {error}")
    total = sum(o.bytes for o in outcomes)
    good = sum(not o.errors for o in outcomes)
    rate = total / 2**20 / seconds if seconds > 0 else 0.0
    print(
        f"{good}/{len(outcomes)} archives complete, {total / 2**20:.1f} MiB "
        f"in {seconds:.2f} s ({rate:.1f} MiB/s)"
    )


async def run(args: argparse.Namespace) -> int:
    pairs = list(dict.fromkeys(read_archive_list(args.archives)))  # each archive once
    started = time.perf_counter()
    async with aioopentok.Client(
        os.environ["OPENTOK_API_KEY"],
        os.environ["OPENTOK_API_SECRET"],
        api_url=os.environ.get("OPENTOK_API_URL", aioopentok.PRODUCTION_URL),
    ) as client:
        outcomes = await bulk_download(client, pairs, args.dest, args.concurrency)
    print_summary(outcomes, time.perf_counter() - started)
    return 0 if all(not o.errors for o in outcomes) else 1


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
    parser.add_argument("--concurrency", type=positive, default=4, help="videos in flight (4)")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
