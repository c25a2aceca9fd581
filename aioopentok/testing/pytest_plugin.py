"""pytest plugin (opt-in): a live emulator, ``opentok_emulator``, and a Client on it.

Strategy: nothing registers this plugin, so it never loads into a project that merely installs
aioopentok; a suite enables it from its top-level conftest.py with
``pytest_plugins = ["aioopentok.testing.pytest_plugin"]`` (or ``-p
aioopentok.testing.pytest_plugin``). The fixtures are ``pytest_asyncio.fixture``s, so they
work in pytest-asyncio's strict mode (tests marked ``@pytest.mark.asyncio``) and in auto mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

try:
    import pytest_asyncio
except ImportError as exc:  # pragma: no cover - tests/testing/test_pytest_plugin.py, a subprocess
    # Opted in without the dependency: say what is missing.
    raise ImportError(
        "aioopentok.testing.pytest_plugin needs pytest-asyncio (pip install pytest-asyncio)"
    ) from exc

from .._client import Client
from ..emulator import Emulator

__all__ = ["opentok_client", "opentok_emulator"]


async def _no_sleep(_: float) -> None:
    """Retries in tests do not wait."""


@pytest_asyncio.fixture
async def opentok_emulator() -> AsyncIterator[Emulator]:
    """A started ``Emulator`` on 127.0.0.1 (port 0) with made-up credentials, closed after."""
    async with Emulator() as emu:
        yield emu


@pytest_asyncio.fixture
async def opentok_client(opentok_emulator: Emulator) -> AsyncIterator[Client]:
    """A ``Client`` bound to ``opentok_emulator``; its retries do not sleep."""
    async with Client(
        opentok_emulator.api_key,
        opentok_emulator.api_secret,
        api_url=opentok_emulator.url,
        sleep=_no_sleep,
    ) as client:
        yield client
