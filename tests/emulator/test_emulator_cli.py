"""``python -m aioopentok.emulator`` and the pytest plugin."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp
import pytest
from emulator_helpers import KEY, SECRET

from aioopentok.emulator import Emulator


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_cli_serves_until_signal_and_exits_0(sig: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aioopentok.emulator", "--port", "0",
        "--api-key", KEY, "--api-secret", SECRET, "--seed-archives", "2", "--video-size", "5000",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        m = re.fullmatch(
            rf"aioopentok emulator: url=(http://127\.0\.0\.1:\d+/hl) api_key={KEY} "
            rf"api_secret={SECRET}\n",
            first,
        )
        assert m is not None, first
        lines = [(await proc.stdout.readline()).decode() for _ in range(2)]
        for line in lines:  # each seeded archive in a session of its own
            assert re.fullmatch(r"archive_id=\S+ session_id=2_\S+ videos=\S+ \S+\n", line), line
        assert len({line.split()[1] for line in lines}) == 2
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{m.group(1)}/session/create", headers={"X-TB-PARTNER-AUTH": f"{KEY}:{SECRET}"}
            ) as r,
        ):
            assert "<session_id>" in await r.text()
        proc.send_signal(sig)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_pytest_plugin_fixture(opentok_emulator: Emulator) -> None:
    # The opt-in plugin, enabled for our suite in tests/conftest.py.
    assert opentok_emulator.url.startswith("http://127.0.0.1:")
    async with aiohttp.ClientSession() as http, http.get(f"{opentok_emulator.url}/x") as r:
        assert r.status == 404
