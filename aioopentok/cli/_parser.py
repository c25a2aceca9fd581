"""The CLI's argparse parser: every subcommand, its options, and the coroutine that runs it.

Strategy: argparse subcommands, each bound (``func``) to a small coroutine in a module per group
of commands (``_commands``, ``_demo``). Option types that need parsing (durations, sizes) are
checked here, so a command never sees a malformed value.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .._models import Role
from .._version import __version__
from . import _commands as cmd
from . import _export as exp

__all__ = ["build_parser"]

# --- the parser -----------------------------------------------------------------------------

_DURATION_RE = re.compile(r"\+(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _expire_time(text: str) -> int:
    """Parse ``--expire-time``: Unix seconds, or ``+N[s|m|h|d]`` from now."""
    match = _DURATION_RE.fullmatch(text)
    if match:
        return int(time.time()) + int(match[1]) * _UNITS[match[2]]
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"expected Unix seconds or +N[s|m|h|d], not {text!r}")


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
    archive.add_argument(
        "--token",
        help="a moderator token of the archive's session (default: $OPENTOK_TOKEN, which keeps "
        "it out of the process list and shell history)",
    )
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

    p = add("demo", cmd.cmd_demo, "run the whole flow against an in-process emulator")
    p.add_argument("--videos", type=_positive, default=6, help="videos in the archive (6)")
    p.add_argument("--video-size", type=_size, default=8 * 1024**2, help="mean size (8M)")
    p.add_argument("--concurrency", type=_positive, default=4, help="parallel downloads (4)")
    p.add_argument("--dest", type=Path, help="download here (default: a temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the downloaded files")

    sub.add_parser("emulator", help="run the emulator (python -m aioopentok.emulator)")

    p = add("create-session", cmd.cmd_create_session, "create a session; print its ID")
    p.add_argument("--location", help="an IP address near the participants")
    p.add_argument("--p2p", action="store_true", help="enable peer-to-peer streaming")

    p = add("token", cmd.cmd_token, "make a token offline; print it")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("--role", choices=[r.value for r in Role], default=Role.PUBLISHER.value)
    p.add_argument(
        "--expire-time", type=_expire_time, metavar="T", help="Unix seconds or +N[s|m|h|d]"
    )
    p.add_argument("--data", metavar="TEXT", help="connection data (up to 1000 characters)")

    p = add("decode-token", cmd.cmd_decode_token, "show a token's fields")
    p.add_argument("token", metavar="TOKEN")
    p.add_argument("--verify", action="store_true", help="check its signature (needs credentials)")

    p = add("manifest", cmd.cmd_manifest, "show an archive's videos", archive)
    p.add_argument("archive_id", metavar="ARCHIVE_ID")

    p = add("url", cmd.cmd_url, "print a video's signed download URL", archive)
    p.add_argument("archive_id", metavar="ARCHIVE_ID")
    p.add_argument("video_id", metavar="VIDEO_ID")

    p = add("download", cmd.cmd_download, "download one video or a whole archive", archive)
    p.add_argument("archive_id", metavar="ARCHIVE_ID")
    p.add_argument("video_id", metavar="VIDEO_ID", nargs="?", help="only this video")
    p.add_argument("--dest", type=Path, default=Path("."), help="directory or file (.)")
    p.add_argument("--concurrency", type=_positive, default=4, help="parallel downloads (4)")
    p.add_argument(
        "--connections", type=_positive, default=None, help="ranged connections per video (8)"
    )
    p.add_argument(
        "--part-size",
        type=_positive,
        default=None,
        metavar="BYTES",
        help="bytes per ranged request (8388608)",
    )
    p.add_argument(
        "--no-checksum",
        dest="checksum",
        action="store_false",
        help="skip the SHA-256 (size and FLV checks stay; saves ~0.85 s CPU per GiB)",
    )

    p = add("delete", cmd.cmd_delete, "delete an archive", archive)
    p.add_argument("archive_id", metavar="ARCHIVE_ID")

    p = add("stitch", cmd.cmd_stitch, "ask for one MP4 of an archive (partner auth)")
    p.add_argument("archive_id", metavar="ARCHIVE_ID")

    p = add(
        "export",
        exp.cmd_export,
        "export every archive of LIST to --dest: journaled, resumable, shardable "
        "(exit 0 all done, 8 some failed, 3 bad credentials, 130 interrupted)",
    )
    p.add_argument(
        "list", metavar="LIST", help="a file of 'ARCHIVE_ID SESSION_ID' lines, or - for stdin"
    )
    p.add_argument("--dest", type=Path, required=True, help="the export directory")
    p.add_argument(
        "--concurrency", type=_positive, default=16, help="requests in flight, whole job (16)"
    )
    p.add_argument("--shard", metavar="K/N", help="only shard K of N (0 <= K < N) of the LIST")
    p.add_argument("--report", type=Path, metavar="FILE", help="one row per archive: .jsonl/.csv")
    p.add_argument(
        "--delete-after-verify",
        action="store_true",
        help="delete each archive from the service once every file verifies (size, MD5/ETag)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be done; make no request"
    )

    p = add("export-status", exp.cmd_export_status, "totals of an export's journals")
    p.add_argument("dir", type=Path, metavar="DIR", help="the export's --dest")
    p.add_argument("--failed", action="store_true", help="list the failed archives and why")
    return parser
