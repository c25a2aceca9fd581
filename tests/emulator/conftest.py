"""Fixtures for the emulator's own tests: a started emulator, an HTTP session, a token maker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from emulator_helpers import KEY, SECRET, MakeToken, build_token

from aioopentok.emulator import Emulator


@pytest.fixture
def make_token() -> MakeToken:
    return build_token


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(KEY, SECRET) as e:
        yield e


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        yield s
