"""Issue 6, clock skew: the Client learns the service's clock from ``Date`` and signs with it.

The emulator's ``clock`` is its "now" for token checks and its ``Date`` header; its
``date_offset`` knob shifts only the header. Both are used, against real loopback HTTP.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta

import pytest

from aioopentok import (
    AuthError,
    Client,
    InvalidArgumentError,
    ServerError,
    decode_token,
    generate_token,
)
from aioopentok._clock import ClockSkew
from aioopentok.emulator import Emulator

HOUR = 3600
DAY = 24 * HOUR


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


@pytest.mark.parametrize("skew", [2 * HOUR, -100.0])
async def test_expire_times_from_the_local_clock_keep_their_meaning_under_skew(
    emu: Emulator, client: Client, skew: float
) -> None:
    # Callers compute expire_time from their own clock ("an hour from now"); with the service's
    # clock ahead or behind, that must still mean an hour, and the seven-day edge must still be
    # seven days from the caller's now.
    _skew(emu, skew)
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [5000])
    await client.create_session()  # learn the offset
    assert client.clock_offset == pytest.approx(skew, abs=2)
    hour = decode_token(client.generate_token(sid, expire_time=time.time() + HOUR))
    assert hour.expire_time is not None
    assert hour.expire_time - hour.create_time == pytest.approx(HOUR, abs=2)
    assert hour.expire_time == pytest.approx(emu.clock() + HOUR, abs=3)
    edge = client.generate_token(sid, role="moderator", expire_time=time.time() + 7 * DAY - 5)
    assert (await client.get_archive_manifest(aid, edge)).archive_id == aid
    with pytest.raises(InvalidArgumentError, match="seven days"):
        client.generate_token(sid, expire_time=time.time() + 7 * DAY + 60)
    with pytest.raises(InvalidArgumentError, match="not in the future"):
        client.generate_token(sid, expire_time=time.time() - 60)


async def test_a_timedelta_is_a_lifetime_from_the_services_now(
    emu: Emulator, client: Client
) -> None:
    _skew(emu, 3 * HOUR)
    await client.create_session()
    token = decode_token(
        client.generate_token(emu.create_session_id(), expire_time=timedelta(hours=2))
    )
    assert token.expire_time == token.create_time + 2 * HOUR
    assert token.create_time == pytest.approx(emu.clock(), abs=3)


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
    clock = ClockSkew()
    clock.observe("Tue, 15 Nov 1994 08:12:31 GMT", time.time())
    learned = clock.offset
    assert learned < -DAY
    for bad in (None, "", "yesterday", "Tue, 99 Nov 1994 08:12:31 GMT", "\x00"):
        clock.observe(bad, time.time())
        assert clock.offset == learned
