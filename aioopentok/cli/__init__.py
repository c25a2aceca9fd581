"""The ``aioopentok`` command line: ``main`` runs it (``python -m aioopentok``, the script).

Strategy: ``_parser`` builds the argparse tree, each group of commands is its own module
(``_commands``, ``_demo``), ``_main`` runs one and maps failures to exit codes (``_exitcodes``).
Arrows point one way: ``_main`` -> ``_parser`` -> commands -> ``_common`` -> the library.
"""

from __future__ import annotations

from ._exitcodes import EXIT_CODES, exit_code_for
from ._main import main
from ._parser import build_parser

__all__ = ["EXIT_CODES", "build_parser", "exit_code_for", "main"]
