"""pytest plugin (entry point ``aioopentok_emulator``): the ``opentok_emulator`` fixture.

Strategy: import nothing heavy at collection time; the emulator is imported inside the
fixture, so merely having the package installed costs every pytest run almost nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest_asyncio

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["opentok_emulator"]


@pytest_asyncio.fixture
async def opentok_emulator() -> AsyncIterator[Emulator]:
    """A started ``Emulator`` with made-up credentials, closed after the test."""
    from ._server import Emulator

    async with Emulator() as emu:
        yield emu
