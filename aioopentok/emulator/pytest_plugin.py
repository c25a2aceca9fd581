"""pytest plugin (entry point ``aioopentok_emulator``): the ``opentok_emulator`` fixture.

Strategy: the package registers this plugin, so pytest loads it in every project where
aioopentok is installed, async tests or not. It must then cost nothing and break nothing: the
emulator is imported inside the fixture, and the fixture exists only where pytest-asyncio is
installed (an async fixture needs it; without it the plugin defines nothing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._server import Emulator

__all__: list[str] = []

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised by a subprocess test without pytest-asyncio
    pass
else:

    @pytest_asyncio.fixture
    async def opentok_emulator() -> AsyncIterator[Emulator]:
        """A started ``Emulator`` with made-up credentials, closed after the test."""
        from ._server import Emulator

        async with Emulator() as emu:
            yield emu

    __all__ += ["opentok_emulator"]
