"""Issue 6, clock skew: the Client learns the service's clock from ``Date`` and signs with it.

The emulator's ``clock`` is its "now" for token checks and its ``Date`` header; its
``date_offset`` knob shifts only the header. Both are used, against real loopback HTTP.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from aioopentok import (
    AuthError,
    Client,
    InvalidArgumentError,
    ServerError,
    decode_token,
    generate_token,
)
from aioopentok.emulator import Emulator

HOUR = 3600
DAY = 24 * HOUR


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as e:
        yield e


async def _no_sleep(_: float) -> None:
    return None


@pytest_asyncio.fixture
async def client(emu: Emulator) -> AsyncIterator[Client]:
    async with Client(emu.api_key, emu.api_secret, api_url=emu.url, sleep=_no_sleep) as c:
        yield c


def _skew(emu: Emulator, seconds: float) -> None:
    """Make the emulator's whole clock (checks and Date) run ``seconds`` ahead of ours."""
    emu.clock = lambda: time.time() + seconds


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "aioopentok" and r.levelno == logging.WARNING]


async def test_offset_is_learned_from_the_date_header(emu: Emulator, client: Client) -> None:
    assert client.clock_offset == 0.0
    _skew(emu, 3 * HOUR)
    await client.create_session()
    assert client.clock_offset == pytest.approx(3 * HOUR, abs=2)
    _skew(emu, -5 * HOUR)
    await client.create_session()
    assert client.clock_offset == pytest.approx(-5 * HOUR, abs=2)


async def test_offset_is_learned_from_error_replies_too(emu: Emulator, client: Client) -> None:
    emu.faults.date_offset = -2 * HOUR
    emu.faults.fail_503 = 1
    with pytest.raises(ServerError):
        await client.create_session()
    assert client.clock_offset == pytest.approx(-2 * HOUR, abs=2)
    emu.faults.date_offset = HOUR
    with pytest.raises(AuthError):
        await client.get_archive_manifest("an-archive", "T1==bm90LWEtdG9rZW4=")
    assert client.clock_offset == pytest.approx(HOUR, abs=2)


async def test_offsets_within_the_date_resolution_count_as_none(
    emu: Emulator, client: Client
) -> None:
    _skew(emu, 3 * HOUR)
    await client.create_session()
    assert client.clock_offset != 0.0
    emu.faults.date_offset = 0
    _skew(emu, 0.9)  # Date has one-second resolution: under 2 s is noise
    await client.create_session()
    assert client.clock_offset == 0.0


async def test_tokens_carry_the_services_time(emu: Emulator, client: Client) -> None:
    _skew(emu, 3 * HOUR)
    sid = (await client.create_session()).session_id
    created = decode_token(client.generate_token(sid)).create_time
    assert created == pytest.approx(emu.clock(), abs=3)
    assert abs(created - time.time()) > 3 * HOUR - 5


async def test_service_accepts_corrected_tokens_that_a_skewed_clock_would_spoil(
    emu: Emulator, client: Client
) -> None:
    # Our clock is 25 h slow: a token signed with it is past its default 24 h lifetime at the
    # service, which is exactly the support ticket the official SDKs get.
    _skew(emu, 25 * HOUR)
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [5000])
    naive = generate_token(emu.api_key, emu.api_secret, sid, role="moderator")
    with pytest.raises(AuthError):
        await client.get_archive_manifest(aid, naive)  # also teaches the client the offset
    corrected = client.generate_token(sid, role="moderator")
    assert (await client.get_archive_manifest(aid, corrected)).archive_id == aid


async def test_expire_time_is_checked_against_the_corrected_clock(
    emu: Emulator, client: Client
) -> None:
    _skew(emu, 2 * HOUR)
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [5000])
    local_soon = time.time() + HOUR  # future by our clock, past by the service's
    client.generate_token(sid, expire_time=local_soon)  # not learned yet: accepted locally
    await client.create_session()
    with pytest.raises(InvalidArgumentError, match="not in the future"):
        client.generate_token(sid, expire_time=local_soon)
    # Near the seven-day edge by the service's clock: allowed only once corrected.
    server_edge = emu.clock() + 7 * DAY - 60
    token = client.generate_token(sid, role="moderator", expire_time=server_edge)
    assert (await client.get_archive_manifest(aid, token)).archive_id == aid
    with pytest.raises(InvalidArgumentError, match="seven days"):
        generate_token(emu.api_key, emu.api_secret, sid, expire_time=server_edge)
    # Just past the edge by the service's clock is refused before any I/O.
    with pytest.raises(InvalidArgumentError, match="seven days"):
        client.generate_token(sid, expire_time=emu.clock() + 7 * DAY + 60)


async def test_large_skew_warns_once(
    emu: Emulator, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aioopentok")
    emu.faults.date_offset = 59  # just under the warning threshold: corrected, no warning
    await client.create_session()
    assert client.clock_offset == pytest.approx(59, abs=2)
    emu.faults.date_offset = 0
    await client.create_session()
    assert _warnings(caplog) == []
    emu.faults.date_offset = -10 * 60
    for _ in range(3):
        await client.create_session()
    emu.faults.date_offset = 3 * HOUR
    await client.create_session()
    warnings = _warnings(caplog)
    assert len(warnings) == 1
    # We are ten minutes ahead of the service (Date truncates to whole seconds).
    assert re.search(r"\+60[01] s", warnings[0].getMessage())
    assert "NTP" in warnings[0].getMessage()


async def test_each_client_warns_for_itself(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aioopentok")
    emu.faults.date_offset = HOUR
    for _ in range(2):
        async with Client(emu.api_key, emu.api_secret, api_url=emu.url) as client:
            await client.create_session()
            await client.create_session()
    assert len(_warnings(caplog)) == 2


def test_unparseable_date_headers_leave_the_offset_alone() -> None:
    client = Client("1234", "secret")
    client._learn_clock("Tue, 15 Nov 1994 08:12:31 GMT")
    learned = client.clock_offset
    assert learned < -DAY
    for bad in (None, "", "yesterday", "Tue, 99 Nov 1994 08:12:31 GMT", "\x00"):
        client._learn_clock(bad)
        assert client.clock_offset == learned
