"""The ``aioopentok`` command line (also ``python -m aioopentok``).

Strategy: argparse subcommands, each a small coroutine that makes one ``Client``, calls it and
prints text (or ``--json``). ``main`` runs it with ``asyncio.run`` and turns every expected
failure into one line on stderr and a distinct exit code (``EXIT_CODES``), never a traceback.
Credentials come from flags or ``OPENTOK_API_KEY`` / ``OPENTOK_API_SECRET`` / ``OPENTOK_API_URL``;
the secret is never printed, and is masked in any message as a last line of defence.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ._client import PRODUCTION_URL, Client
from ._errors import (
    APIError,
    AuthError,
    DownloadError,
    InvalidArgumentError,
    InvalidTokenError,
    NotFoundError,
    OpenTokException,
    RateLimitedError,
    RequestError,
    RequestTimeoutError,
    ResponseError,
    ServerError,
)
from ._models import Role
from ._progress import make_progress
from ._tokens import decode_token, generate_token, verify_token
from ._version import __version__

__all__ = ["EXIT_CODES", "CliError", "build_parser", "main"]

EXIT_OK = 0
EXIT_FAILED = 1  # a check did not pass, or an unexpected error
EXIT_BAD_INPUT = 2  # also argparse's usage errors
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_SERVER = 5
EXIT_NETWORK = 6
EXIT_RESPONSE = 7
EXIT_DOWNLOAD = 8
EXIT_INTERRUPTED = 130

#: Exception class -> (exit code, label); the first ``isinstance`` match wins.
EXIT_CODES: tuple[tuple[type[BaseException], int, str], ...] = (
    (InvalidArgumentError, EXIT_BAD_INPUT, "bad input"),
    (InvalidTokenError, EXIT_BAD_INPUT, "bad token"),
    (AuthError, EXIT_AUTH, "auth"),
    (NotFoundError, EXIT_NOT_FOUND, "not found"),
    (RateLimitedError, EXIT_SERVER, "rate limited"),
    (ServerError, EXIT_SERVER, "server error"),
    (APIError, EXIT_SERVER, "service error"),
    (RequestTimeoutError, EXIT_NETWORK, "timeout"),
    (RequestError, EXIT_NETWORK, "network"),
    (ResponseError, EXIT_RESPONSE, "bad reply"),
    (DownloadError, EXIT_DOWNLOAD, "download failed"),
)

_NO_SECRET = "unused"  # token-auth calls never send the secret; Client wants a non-empty one
_DURATION_RE = re.compile(r"\+(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class CliError(Exception):
    """An expected failure of the CLI itself (missing credentials...), with its exit code."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def exit_code_for(exc: BaseException) -> tuple[int, str]:
    """Return the exit code and label of an exception (``EXIT_FAILED`` if unexpected)."""
    for cls, code, label in EXIT_CODES:
        if isinstance(exc, cls):
            return code, label
    return EXIT_FAILED, "error"


# --- output ---------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, BaseException):
        return str(value)
    return value


def emit(args: argparse.Namespace, text: str, data: Any) -> None:
    """Print ``text``, or ``data`` as JSON with ``--json``."""
    if args.json:
        print(json.dumps(_jsonable(data), indent=2, sort_keys=True))
    elif text:
        print(text)


# --- credentials and the client -------------------------------------------------------------


def _credentials(args: argparse.Namespace) -> tuple[str, str]:
    key = args.api_key or os.environ.get("OPENTOK_API_KEY")
    secret = args.api_secret or os.environ.get("OPENTOK_API_SECRET")
    if not key or not secret:
        raise CliError(
            "credentials needed: --api-key/--api-secret or OPENTOK_API_KEY/OPENTOK_API_SECRET"
        )
    return key, secret


def _api_url(args: argparse.Namespace) -> str:
    return str(args.api_url or os.environ.get("OPENTOK_API_URL") or PRODUCTION_URL)


def _secret_of(args: argparse.Namespace) -> str | None:
    return getattr(args, "api_secret", None) or os.environ.get("OPENTOK_API_SECRET")


def partner_client(args: argparse.Namespace) -> Client:
    """Return a Client with the partner credentials (session create, stitch)."""
    key, secret = _credentials(args)
    return Client(key, secret, api_url=_api_url(args), retry=args.retries)


def archive_token(args: argparse.Namespace) -> str:
    """Return ``--token``, or a fresh moderator token for ``--session-id`` (needs credentials)."""
    if args.token:
        return str(args.token)
    if args.session_id:
        key, secret = _credentials(args)
        return generate_token(key, secret, args.session_id, Role.MODERATOR)
    raise CliError("give --token (a moderator token), or --session-id with the credentials")


def token_client(args: argparse.Namespace, token: str) -> Client:
    """Return a Client for token-auth calls: the API key comes from the token if not given."""
    key = args.api_key or os.environ.get("OPENTOK_API_KEY")
    if not key:
        try:
            key = decode_token(token).partner_id
        except InvalidTokenError:
            key = "0"  # the service judges the token; the key is not sent on these calls
    secret = _secret_of(args) or _NO_SECRET
    return Client(key, secret, api_url=_api_url(args), retry=args.retries)


# --- commands -------------------------------------------------------------------------------


async def cmd_create_session(args: argparse.Namespace) -> int:
    async with partner_client(args) as client:
        session = await client.create_session(
            args.location, p2p_preference="enabled" if args.p2p else None
        )
    emit(args, session.session_id, session)
    return EXIT_OK


def _expire_time(text: str) -> int:
    """Parse ``--expire-time``: Unix seconds, or ``+N[s|m|h|d]`` from now."""
    match = _DURATION_RE.fullmatch(text)
    if match:
        return int(time.time()) + int(match[1]) * _UNITS[match[2]]
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"expected Unix seconds or +N[s|m|h|d], not {text!r}")


async def cmd_token(args: argparse.Namespace) -> int:
    key, secret = _credentials(args)
    token = generate_token(key, secret, args.session_id, args.role, args.expire_time, args.data)
    data = {"token": token, "session_id": args.session_id, "role": args.role}
    emit(args, token, data | {"expire_time": args.expire_time})
    return EXIT_OK


async def cmd_decode_token(args: argparse.Namespace) -> int:
    if args.verify:
        key, secret = _credentials(args)
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
                    args.archive_id, args.video_id, token, dest, progress=progress
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
        error = failed[0].error
        code = exit_code_for(error)[0] if isinstance(error, BaseException) else EXIT_DOWNLOAD
        raise CliError(f"{len(failed)} of {len(results)} downloads failed: {error}", code)
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


# --- the parser -----------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def _size(text: str) -> int:
    """Parse a byte size: ``1000000``, ``512K``, ``8M`` (binary units)."""
    match = re.fullmatch(r"(\d+)([KMG]?)(i?B)?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a size such as 8M or 1048576, not {text!r}")
    factor = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[match[2].upper()]
    return int(match[1]) * factor


Handler = Callable[[argparse.Namespace], Awaitable[int]]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api-key", help="API key (default: $OPENTOK_API_KEY)")
    common.add_argument("--api-secret", help="API secret (default: $OPENTOK_API_SECRET)")
    common.add_argument("--api-url", help="API base URL (default: $OPENTOK_API_URL or production)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    common.add_argument("--retries", type=int, default=3, help="retries of idempotent calls")
    archive = argparse.ArgumentParser(add_help=False)
    archive.add_argument("--token", help="a moderator token of the archive's session")
    archive.add_argument(
        "--session-id", help="instead of --token: make a moderator token (needs credentials)"
    )

    parser = argparse.ArgumentParser(
        prog="aioopentok",
        description="OpenTok server API from the command line. Exit codes: 0 ok, 1 failed, "
        "2 bad input, 3 auth, 4 not found, 5 server, 6 network, 7 bad reply, "
        "8 download, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"aioopentok {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_: str, *parents: argparse.ArgumentParser) -> Any:
        p = sub.add_parser(name, help=help_, description=help_, parents=[common, *parents])
        p.set_defaults(func=handler)
        return p

    p = add("demo", cmd_demo, "run the whole flow against an in-process emulator")
    p.add_argument("--videos", type=_positive, default=6, help="videos in the archive (6)")
    p.add_argument("--video-size", type=_size, default=8 * 1024**2, help="mean size (8M)")
    p.add_argument("--concurrency", type=_positive, default=4, help="parallel downloads (4)")
    p.add_argument("--dest", type=Path, help="download here (default: a temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the downloaded files")

    sub.add_parser("emulator", help="run the emulator (python -m aioopentok.emulator)")

    p = add("create-session", cmd_create_session, "create a session; print its ID")
    p.add_argument("--location", help="an IP address near the participants")
    p.add_argument("--p2p", action="store_true", help="enable peer-to-peer streaming")

    p = add("token", cmd_token, "make a token offline; print it")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("--role", choices=[r.value for r in Role], default=Role.PUBLISHER.value)
    p.add_argument(
        "--expire-time", type=_expire_time, metavar="T", help="Unix seconds or +N[s|m|h|d]"
    )
    p.add_argument("--data", metavar="TEXT", help="connection data (up to 1000 characters)")

    p = add("decode-token", cmd_decode_token, "show a token's fields")
    p.add_argument("token", metavar="TOKEN")
    p.add_argument("--verify", action="store_true", help="check its signature (needs credentials)")

    p = add("manifest", cmd_manifest, "show an archive's videos", archive)
    p.add_argument("archive_id", metavar="ARCHIVE_ID")

    p = add("url", cmd_url, "print a video's signed download URL", archive)
    p.add_argument("archive_id", metavar="ARCHIVE_ID")
    p.add_argument("video_id", metavar="VIDEO_ID")

    p = add("download", cmd_download, "download one video or a whole archive", archive)
    p.add_argument("archive_id", metavar="ARCHIVE_ID")
    p.add_argument("video_id", metavar="VIDEO_ID", nargs="?", help="only this video")
    p.add_argument("--dest", type=Path, default=Path("."), help="directory or file (.)")
    p.add_argument("--concurrency", type=_positive, default=4, help="parallel downloads (4)")

    p = add("delete", cmd_delete, "delete an archive", archive)
    p.add_argument("archive_id", metavar="ARCHIVE_ID")

    p = add("stitch", cmd_stitch, "ask for one MP4 of an archive (partner auth)")
    p.add_argument("archive_id", metavar="ARCHIVE_ID")
    return parser


# --- main -----------------------------------------------------------------------------------


def _fail(message: str, secret: str | None) -> None:
    if secret:
        message = message.replace(secret, "***")
    print(f"aioopentok: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (see ``EXIT_CODES``)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:
        from .emulator._cli import build_parser as emulator_parser
        from .emulator._cli import main as emulator_main

        try:
            emulator_parser("aioopentok emulator").parse_args(args_list[1:])
        except SystemExit as exc:  # --help, or a usage error already printed
            return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
        return emulator_main(args_list[1:])
    try:
        args = build_parser().parse_args(args_list)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    secret = _secret_of(args)
    try:
        code: int = asyncio.run(args.func(args))
        return code
    except KeyboardInterrupt:
        _fail("interrupted", None)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. piped into head: stop quietly, as other Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except CliError as exc:
        _fail(str(exc), secret)
        return exc.code
    except OpenTokException as exc:
        code, label = exit_code_for(exc)
        _fail(f"{label}: {exc}", secret)
        return code
    except OSError as exc:  # the local file system, outside the library's tree
        _fail(f"{type(exc).__name__}: {exc}", secret)
        return EXIT_FAILED
