"""The CLI's one-call commands: each makes one ``Client``, one call, prints text or ``--json``.

Strategy: failures are raised, never printed here: ``_main.main`` turns them into one line and
an exit code.
"""

from __future__ import annotations

import argparse
import time

from .._tokens import decode_token, generate_token, verify_token
from ._common import archive_token, credentials, emit, partner_client, token_client
from ._exitcodes import EXIT_DOWNLOAD, EXIT_OK, CliError
from ._progress import make_progress

__all__ = [
    "cmd_create_session",
    "cmd_decode_token",
    "cmd_delete",
    "cmd_demo",
    "cmd_download",
    "cmd_manifest",
    "cmd_stitch",
    "cmd_token",
    "cmd_url",
]


# --- commands -------------------------------------------------------------------------------


async def cmd_create_session(args: argparse.Namespace) -> int:
    async with partner_client(args) as client:
        session = await client.create_session(
            args.location, p2p_preference="enabled" if args.p2p else None
        )
    emit(args, session.session_id, session)
    return EXIT_OK


async def cmd_token(args: argparse.Namespace) -> int:
    key, secret = credentials(args)
    token = generate_token(key, secret, args.session_id, args.role, args.expire_time, args.data)
    data = {"token": token, "session_id": args.session_id, "role": args.role}
    emit(args, token, data | {"expire_time": args.expire_time})
    return EXIT_OK


async def cmd_decode_token(args: argparse.Namespace) -> int:
    if args.verify:
        key, secret = credentials(args)
        data = verify_token(args.token, key, secret)
    else:
        data = decode_token(args.token)
    fields = {
        "partner_id": data.partner_id,
        "session_id": data.session_id,
        "role": data.role.value,
        "create_time": data.create_time,
        "expire_time": data.expire_time,
        "nonce": data.nonce,
        "connection_data": data.connection_data,
        "signature": data.signature,
        "extra": dict(data.extra),
    }
    if args.verify:
        fields["verified"] = True
    text = "\n".join(
        f"{name}: {value}" for name, value in fields.items() if value not in (None, {})
    )
    emit(args, text, fields)
    return EXIT_OK


async def cmd_manifest(args: argparse.Namespace) -> int:
    token = archive_token(args)
    async with token_client(args, token) as client:
        archive = await client.get_archive_manifest(args.archive_id, token)
    lines = [f"archive {archive.archive_id} title={archive.title!r}"]
    for video in archive.resources:
        lines.append(f"  video {video.id}  {video.length / 1000:.1f} s  name={video.name!r}")
    emit(args, "\n".join(lines), archive)
    return EXIT_OK


async def cmd_url(args: argparse.Namespace) -> int:
    token = archive_token(args)
    async with token_client(args, token) as client:
        url = await client.download_archive_url(args.archive_id, args.video_id, token)
    emit(args, url, {"archive_id": args.archive_id, "video_id": args.video_id, "url": url})
    return EXIT_OK


async def cmd_delete(args: argparse.Namespace) -> int:
    token = archive_token(args)
    async with token_client(args, token) as client:
        await client.delete_archive(args.archive_id, token)
    emit(args, f"deleted {args.archive_id}", {"archive_id": args.archive_id, "deleted": True})
    return EXIT_OK


async def cmd_stitch(args: argparse.Namespace) -> int:
    async with partner_client(args) as client:
        result = await client.stitch_archive(args.archive_id)
    emit(args, result.url or "" if result.ready else "processing: ask again later", result)
    return EXIT_OK


async def cmd_download(args: argparse.Namespace) -> int:
    token = archive_token(args)
    progress = make_progress(enabled=not (args.quiet or args.json))
    started = time.perf_counter()
    try:
        async with token_client(args, token) as client:
            if args.video_id:
                dest = args.dest
                if dest.is_dir():
                    dest = dest / f"{args.video_id}.flv"
                result = await client.download_video(
                    args.archive_id,
                    args.video_id,
                    token,
                    dest,
                    progress=progress,
                    checksum=args.checksum,
                    connections=args.connections,
                    part_size=args.part_size,
                )
                results = [result]
            else:
                results = list(
                    await client.download_archive(
                        args.archive_id,
                        token,
                        args.dest,
                        concurrency=args.concurrency,
                        progress=progress,
                        checksum=args.checksum,
                        connections=args.connections,
                        part_size=args.part_size,
                    )
                )
    finally:
        if progress is not None:
            progress.close()
    seconds = time.perf_counter() - started
    lines = []
    for r in results:
        if r.ok:
            how = " (resumed)" if r.resumed else " (already complete)" if r.skipped else ""
            digest = f"  sha256 {r.sha256}" if r.sha256 else ""
            lines.append(f"{r.path}  {r.size} bytes{digest}{how}")
        else:
            lines.append(f"FAILED {r.video_id}: {r.error}")
    failed = [r for r in results if not r.ok]
    total = sum(r.size for r in results if r.ok)
    rate = total / 1024**2 / seconds if seconds > 0 else 0.0
    lines.append(
        f"{len(results) - len(failed)}/{len(results)} videos, {total / 1024**2:.1f} MiB "
        f"in {seconds:.2f} s ({rate:.1f} MiB/s)"
    )
    summary = {"ok": not failed, "seconds": seconds, "bytes": total, "files": results}
    emit(args, "\n".join(lines), summary)
    if failed:
        # Exit 8 for any failed video (README): the reason is in the line, not in the code.
        error = failed[0].error
        raise CliError(f"{len(failed)} of {len(results)} downloads failed: {error}", EXIT_DOWNLOAD)
    return EXIT_OK


async def cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return await run_demo(
        videos=args.videos,
        video_size=args.video_size,
        concurrency=args.concurrency,
        dest=args.dest,
        keep=args.keep,
        as_json=args.json,
        progress=make_progress(enabled=not (args.quiet or args.json)),
    )
