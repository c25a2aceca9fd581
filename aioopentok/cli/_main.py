"""The ``aioopentok`` command line (also ``python -m aioopentok``).

Strategy: ``main`` parses (``_parser``), runs the command with ``asyncio.run`` and turns every
expected failure into one line on stderr and a distinct exit code (``_exitcodes``), never a
traceback. The secret is never printed, and is masked in any message as a last line of defence.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

from .._errors import OpenTokException
from ._common import secret_of
from ._exitcodes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, CliError, exit_code_for
from ._parser import build_parser

__all__ = ["main"]


def _fail(message: str, secret: str | None) -> None:
    if secret:
        message = message.replace(secret, "***")
    print(f"aioopentok: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (see ``EXIT_CODES``)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:
        from ..emulator._cli import build_parser as emulator_parser
        from ..emulator._cli import main as emulator_main

        try:
            emulator_parser("aioopentok emulator").parse_args(args_list[1:])
        except SystemExit as exc:  # --help, or a usage error already printed
            return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
        return emulator_main(args_list[1:])
    try:
        args = build_parser().parse_args(args_list)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    secret = secret_of(args)
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
