"""Shared fixtures: an emulator (from the shipped pytest plugin) and a Client bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from aioopentok import Client
from aioopentok.emulator import Emulator


async def _no_sleep(_: float) -> None:
    """Retries in tests do not wait."""


@pytest.fixture
def emu(opentok_emulator: Emulator) -> Emulator:
    """The emulator of this test (the shipped ``opentok_emulator`` fixture, by a short name)."""
    return opentok_emulator


@pytest_asyncio.fixture
async def client(opentok_emulator: Emulator) -> AsyncIterator[Client]:
    """A Client talking to the emulator over loopback; retries do not sleep."""
    async with Client(
        opentok_emulator.api_key,
        opentok_emulator.api_secret,
        api_url=opentok_emulator.url,
        sleep=_no_sleep,
    ) as client:
        yield client
