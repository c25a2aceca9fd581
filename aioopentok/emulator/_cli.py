"""``python -m aioopentok.emulator``: run the emulator in the foreground for local development.

Strategy: parse arguments, start an ``Emulator``, print one line with the URL and the
credentials it accepts (its own made-up ones, so printing the secret is fine), then the seeded
session and archive ids, and serve until SIGINT/SIGTERM; exit 0. ``main(argv)`` is reusable
by the project CLI (``aioopentok emulator ...``).
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
    p.add_argument("--seed-archives", type=int, default=0, metavar="N", help="archives to seed")
    p.add_argument(
        "--video-size", type=int, default=1_000_000, metavar="BYTES", help="seeded video size"
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
        seed_archives=args.seed_archives,
        video_size=args.video_size,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with emu:
        print(
            f"aioopentok emulator: url={emu.url} api_key={emu.api_key} "
            f"api_secret={emu.api_secret}" + (" staging" if emu.staging else ""),
            flush=True,
        )
        if emu.seeded_session_id is not None:
            print(f"session_id={emu.seeded_session_id}", flush=True)
        for archive_id in emu.seeded_archive_ids:
            videos = " ".join(v.id for v in emu.archives[archive_id].videos)
            print(f"archive_id={archive_id} videos={videos}", flush=True)
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
