"""A local emulator of the 2012 OpenTok server API, for tests, demos and benchmarks.

Strategy: an ``aiohttp.web`` app over in-memory state, written without importing anything
from the client (``aioopentok._*``) so that a bug on one side cannot hide the same bug on the
other. See ``Emulator`` for the entry point and ``Faults`` for the misbehaviour knobs.
"""

from __future__ import annotations

from ._app import make_app
from ._faults import HOSTILE_KINDS, Faults
from ._flv import FlvVideo
from ._server import Emulator
from ._state import ArchiveInfo, RecordedRequest, SessionInfo, State, VideoInfo
from ._tokens import TokenError, TokenInfo, verify_token

__all__ = [
    "HOSTILE_KINDS",
    "ArchiveInfo",
    "Emulator",
    "Faults",
    "FlvVideo",
    "RecordedRequest",
    "SessionInfo",
    "State",
    "TokenError",
    "TokenInfo",
    "VideoInfo",
    "make_app",
    "verify_token",
]
