"""``python -m aioopentok.emulator``: run the emulator in the foreground for local development.

Strategy: parse arguments, seed the archives (each in a session of its own), start an
``Emulator``, write the ``--export-list`` file if asked (before anything is printed, so a
reader of the first line finds it complete), print one line with the URL and the credentials
it accepts (its own made-up ones, so printing the secret is fine), then one
``archive_id=.. session_id=.. videos=..`` line per seeded archive (or, with ``--export-list``,
one ``export_list=FILE archives=N`` line), and serve until SIGINT/SIGTERM; exit 0.
``main(argv)`` is reusable by the project CLI (``aioopentok emulator ...``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from ._faults import Faults
from ._server import Emulator

__all__ = ["build_parser", "main"]


def build_parser(prog: str = "python -m aioopentok.emulator") -> argparse.ArgumentParser:
    """Return the argument parser (exposed so a parent CLI can reuse its options)."""
    p = argparse.ArgumentParser(prog=prog, description="Run a local OpenTok API emulator.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind (default 0: any free)")
    p.add_argument("--api-key", help="API key to accept (default: random digits)")
    p.add_argument("--api-secret", help="API secret to accept (default: random hex)")
    p.add_argument("--staging", action="store_true", help="behave like the staging service")
    p.add_argument(
        "--seed-archives",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="archives to seed, each in a session of its own",
    )
    p.add_argument(
        "--videos-per-archive",
        type=_positive_int,
        default=2,
        metavar="V",
        help="videos per seeded archive (default 2)",
    )
    p.add_argument(
        "--video-size", type=int, default=1_000_000, metavar="BYTES", help="seeded video size"
    )
    p.add_argument(
        "--export-list",
        metavar="FILE",
        help="write the seeded archives to FILE, one 'ARCHIVE_ID SESSION_ID' line each, "
        "instead of printing them",
    )
    p.add_argument(
        "--storage-rate",
        type=_positive_int,
        metavar="BYTES_PER_SEC",
        help="cap each storage reply (connection) at this many bytes/second (default: no cap)",
    )
    p.add_argument(
        "--first-byte-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="storage replies wait this long before their headers (S3's time to first byte)",
    )
    return p


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _write_list(path: str, seeded: list[tuple[str, str]]) -> None:
    """Write the LIST file of an account export: one ``ARCHIVE_ID SESSION_ID`` line each."""
    with open(path, "w", encoding="ascii") as out:
        out.writelines(f"{aid} {sid}\n" for aid, sid in seeded)


async def _serve(args: argparse.Namespace) -> None:
    """Start, announce, and wait for a stop signal."""
    faults = Faults(storage_rate=args.storage_rate, first_byte_delay=args.first_byte_delay)
    emu = Emulator(
        args.api_key,
        args.api_secret,
        host=args.host,
        port=args.port,
        staging=args.staging,
        faults=faults,
        max_recorded_requests=1000,  # a server runs for hours: keep the log bounded
    )
    seeded = emu.seed_archives(
        args.seed_archives, videos_per_archive=args.videos_per_archive, video_size=args.video_size
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with emu:
        if args.export_list is not None:  # complete before the first line says "ready"
            _write_list(args.export_list, seeded)
        print(
            f"aioopentok emulator: url={emu.url} api_key={emu.api_key} "
            f"api_secret={emu.api_secret}" + (" staging" if emu.staging else ""),
            flush=True,
        )
        if args.export_list is not None:
            print(f"export_list={args.export_list} archives={len(seeded)}", flush=True)
        else:
            lines = (
                f"archive_id={aid} session_id={sid} "
                f"videos={' '.join(v.id for v in emu.archives[aid].videos)}\n"
                for aid, sid in seeded
            )
            sys.stdout.writelines(lines)
            sys.stdout.flush()
        await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until interrupted; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except ValueError as exc:  # bad credentials or sizes given on the command line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the port is taken
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a signal arrived before the handlers were installed
        return 0
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 0
