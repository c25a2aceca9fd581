"""Shared fixtures: an emulator and a Client bound to it, from the opt-in pytest plugin."""

from __future__ import annotations

import pytest

from aioopentok import Client
from aioopentok.emulator import Emulator

# The plugin is opt-in (no pytest11 entry point): our suite enables it here, as users do.
pytest_plugins = ["aioopentok.testing.pytest_plugin"]


@pytest.fixture
def emu(opentok_emulator: Emulator) -> Emulator:
    """The emulator of this test (the plugin's ``opentok_emulator``, by a short name)."""
    return opentok_emulator


@pytest.fixture
def client(opentok_client: Client) -> Client:
    """A Client talking to the emulator over loopback; retries do not sleep."""
    return opentok_client
