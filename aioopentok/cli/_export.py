"""``aioopentok export`` and ``aioopentok export-status``: a whole account to disk, and its state.

Strategy: everything that can be wrong with the input is found before the first request: the
shard and ``--report`` name are parsed, and a LIST file is scanned once, streaming, so that a
malformed line exits 2 naming ``FILE:LINE`` (stdin cannot be read twice: its lines are checked
as they come). Then ``export.run`` does the job; this module only draws the progress, writes
the report, and turns the result into a summary and an exit code: 0 all done, 8 some failed.
``--dry-run`` reads the LIST and the journals and makes no request at all (no client is made).
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from .. import export
from .._errors import DiskError, disk_error
from ._common import emit, partner_client
from ._exitcodes import EXIT_BAD_INPUT, EXIT_DOWNLOAD, EXIT_OK, CliError
from ._progress import make_job_display

__all__ = ["cmd_export", "cmd_export_status", "human_bytes"]


def human_bytes(size: float) -> str:
    """Return ``size`` in B, KiB, MiB, GiB or TiB, one decimal."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _pairs(source: str) -> Iterator[tuple[str, str]]:
    """Yield the LIST's pairs again, streaming (the file was scanned already)."""
    if source == "-":
        yield from export.read_list(sys.stdin, "-")
        return
    with Path(source).open(encoding="utf-8-sig", errors="surrogateescape") as stream:
        yield from export.read_list(stream, source)


def _scan(args: argparse.Namespace, shard: export.Shard) -> int | None:
    """Check the whole LIST file before any request; return this shard's count (None: stdin)."""
    if args.list == "-":
        return None
    try:
        return export.scan_list(Path(args.list), shard)
    except export.ListError as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    except OSError as exc:
        raise CliError(f"cannot read {args.list}: {exc.strerror or exc}", EXIT_BAD_INPUT) from None


async def cmd_export(args: argparse.Namespace) -> int:
    shard = export.parse_shard(args.shard)
    if args.report is not None:
        export.check_report_path(args.report)
    total = _scan(args, shard)
    if args.dry_run:
        return _dry_run(args, shard)
    with ExitStack() as stack:
        display = make_job_display(enabled=not (args.quiet or args.json))
        if display is not None:
            stack.callback(display.close)
        report = None
        if args.report is not None:
            try:
                report = stack.enter_context(export.ReportWriter(args.report))
            except OSError as exc:  # still before any request
                reason = exc.strerror or exc
                raise CliError(f"cannot write the report {args.report}: {reason}") from None

        def progress(snapshot: export.ExportProgress) -> None:
            if report is not None and snapshot.outcome is not None:
                try:
                    report.write(snapshot.outcome)
                except OSError as exc:  # the report's disk: stop as for any full disk (exit 8)
                    raise disk_error(exc, args.report, "write the report") from exc
            if display is not None:
                display.update(snapshot)

        try:
            async with partner_client(args) as client:
                # A 429 goes to the job-wide pace at once, as in Client.export.
                no_429 = replace(client.retry, statuses=client.retry.statuses - {429})
                result = await export.run(
                    client.with_retry(no_429),
                    _pairs(args.list),
                    args.dest,
                    concurrency=args.concurrency,
                    shard=shard,
                    delete_after_verify=args.delete_after_verify,
                    progress=progress,
                    total=total,
                )
        except export.ListError as exc:  # a bad line on stdin, met mid-job
            raise CliError(f"{exc} (the archives before it are recorded)", EXIT_BAD_INPUT) from None
        except DiskError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            what = "disk full" if full else "cannot write"
            raise CliError(
                f"{what}: {exc}. The journal is consistent: free space (or fix the directory) "
                "and run the same command again to finish.",
                EXIT_DOWNLOAD,
            ) from None
    summary = {
        "done": result.done,
        "failed": result.failed,
        "skipped": result.skipped,
        "deleted": result.deleted,
        "videos": result.videos,
        "bytes": result.bytes,
        "seconds": round(result.seconds, 3),
        "rate_limited": result.rate_limited,
        "shard": str(shard),
        "journal": str(result.journal),
    }
    rate = result.bytes / result.seconds if result.seconds > 0 else 0.0
    text = (
        f"export {args.dest} (shard {shard}): {result.done} done, {result.failed} failed, "
        f"{result.skipped} skipped (done before), {result.deleted} deleted; {result.videos} "
        f"videos, {human_bytes(result.bytes)} in {result.seconds:.1f} s ({human_bytes(rate)}/s)"
    )
    if result.failed:
        text += f"\n{result.failed} failed: see 'aioopentok export-status {args.dest} --failed'"
    emit(args, text, summary)
    return EXIT_OK if result.failed == 0 else EXIT_DOWNLOAD


def _dry_run(args: argparse.Namespace, shard: export.Shard) -> int:
    """Print what a run would download, skip and delete; no client, no request."""
    counts = {"download": 0, "skip": 0, "delete": 0}
    for planned in export.plan(
        _pairs(args.list), args.dest, shard=shard, delete_after_verify=args.delete_after_verify
    ):
        for action in planned.action.split("+"):
            counts[action] += 1
        if not args.json:
            print(f"{planned.action:<16} {planned.archive_id} {planned.session_id}")
    text = (
        f"dry run (shard {shard}): would download {counts['download']}, skip {counts['skip']}, "
        f"delete {counts['delete']}; no request made"
    )
    emit(
        args,
        text,
        {
            "download": counts["download"],
            "skip": counts["skip"],
            "delete": counts["delete"],
            "shard": str(shard),
        },
    )
    return EXIT_OK


async def cmd_export_status(args: argparse.Namespace) -> int:
    if not export.journal_paths(args.dir):
        raise CliError(f"no export journal under {args.dir} (looked in {export.JOURNAL_DIR}/)")
    status = export.read_status(args.dir)
    shards = [
        {
            "shard": s.shard,
            "done": s.done,
            "failed": s.failed,
            "pending": s.pending,
            "deleted": s.deleted,
            "bytes": s.bytes,
        }
        for s in status.shards
    ]
    data: dict[str, object] = {
        "done": status.done,
        "failed": status.failed,
        "pending": status.pending,
        "deleted": status.deleted,
        "bytes": status.bytes,
        "shards": shards,
    }
    lines = [
        f"{args.dir}: {status.done} done, {status.failed} failed, {status.pending} pending, "
        f"{status.deleted} deleted, {human_bytes(status.bytes)}"
    ]
    if len(status.shards) > 1:
        lines += [
            f"  shard {s.shard}: {s.done} done, {s.failed} failed, {s.pending} pending, "
            f"{human_bytes(s.bytes)}"
            for s in status.shards
        ]
    if args.failed:
        failed = [
            {
                "archive_id": r.archive_id,
                "session_id": r.session_id,
                "attempts": r.attempts,
                "error": r.error,
            }
            for r in export.failures(args.dir)
        ]
        data["failures"] = failed
        lines += [
            f"FAILED {f['archive_id']} (tries: {f['attempts']}): {f['error']}" for f in failed
        ]
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print("\n".join(lines))
    return EXIT_OK
