"""Issue 6, reliability: timeouts and retries.

Where the wire is the point (timeouts, resets, refused connections, aiohttp's own resend) the
tests talk HTTP to a real emulator on 127.0.0.1; the retry policy's arithmetic (back-off,
Retry-After, bounds, which statuses) goes through ``aioopentok.testing.MockTransport``. The
retry sleep is injected, so the back-off delays are recorded, not waited for.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from aioopentok import (
    DEFAULT_DOWNLOAD_TIMEOUT,
    DEFAULT_TIMEOUT,
    AuthError,
    Client,
    ConnectError,
    NotFoundError,
    RateLimitedError,
    RequestError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    generate_token,
)
from aioopentok.emulator import Emulator
from aioopentok.testing import HTTPRequest, HTTPResponse, MockTransport, replies


class FakeSleep:
    """Records every back-off delay instead of waiting; ``hook`` runs during the sleep."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.hook = lambda: None

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.hook()


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest_asyncio.fixture
async def client(emu: Emulator, sleep: FakeSleep) -> AsyncIterator[Client]:
    async with Client(emu.api_key, emu.api_secret, api_url=emu.url, sleep=sleep) as c:
        yield c


def _archive(emu: Emulator, client: Client) -> tuple[str, str, str]:
    """Return (archive_id, video_id, moderator token) of a fresh one-video archive."""
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [5000])
    return aid, emu.archives[aid].videos[0].id, client.generate_token(sid, role="moderator")


def _api_requests(emu: Emulator) -> list[str]:
    return [f"{r.method} {r.path}" for r in emu.requests]


# --- timeouts ---------------------------------------------------------------------------------


def test_default_timeouts_are_ten_seconds_for_api_and_uncapped_for_downloads() -> None:
    client = Client("1234", "secret")
    assert client.timeout == DEFAULT_TIMEOUT
    assert client.timeout.total == 10
    assert client.download_timeout == DEFAULT_DOWNLOAD_TIMEOUT
    assert client.download_timeout.total is None
    assert client.download_timeout.sock_connect and client.download_timeout.sock_read


async def test_client_timeout_expiry_raises_request_timeout_error(
    emu: Emulator, sleep: FakeSleep
) -> None:
    emu.faults.delay = 5.0
    timeout = aiohttp.ClientTimeout(total=0.2)
    async with Client(emu.api_key, emu.api_secret, api_url=emu.url, timeout=timeout) as client:
        aid, _, token = _archive(emu, client)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RequestTimeoutError) as info:
            await client.get_archive_manifest(aid, token)
        assert loop.time() - started < 4  # the timeout fired, not the server's reply at 5 s
    assert isinstance(info.value, RequestError)
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, OSError)


async def test_per_call_timeout_overrides_the_clients(emu: Emulator, client: Client) -> None:
    aid, vid, token = _archive(emu, client)
    emu.faults.delay = 0.5
    # The client's 10 s default lets the slow reply through...
    assert (await client.get_archive_manifest(aid, token)).archive_id == aid
    # ...a per-call timeout does not, for every kind of call.
    short = aiohttp.ClientTimeout(total=0.1)
    with pytest.raises(RequestTimeoutError):
        await client.get_archive_manifest(aid, token, timeout=short)
    with pytest.raises(RequestTimeoutError):
        await client.download_archive_url(aid, vid, token, timeout=short)
    with pytest.raises(RequestTimeoutError):
        await client.create_session(timeout=short)
    with pytest.raises(RequestTimeoutError):
        await client.delete_archive(aid, token, timeout=short)
    with pytest.raises(RequestTimeoutError):
        await client.stitch_archive(aid, timeout=short)


async def test_sock_read_timeout_is_honoured(emu: Emulator, client: Client) -> None:
    aid, _, token = _archive(emu, client)
    emu.faults.delay = 0.5
    with pytest.raises(RequestTimeoutError):
        await client.get_archive_manifest(
            aid, token, timeout=aiohttp.ClientTimeout(total=None, sock_read=0.1)
        )


async def test_a_timeout_is_not_retried(emu: Emulator, client: Client, sleep: FakeSleep) -> None:
    # The caller's time budget is spent: a retry would multiply it.
    aid, _, token = _archive(emu, client)
    emu.clear_requests()
    emu.faults.delay = 0.5
    with pytest.raises(RequestTimeoutError):
        await client.get_archive_manifest(aid, token, timeout=aiohttp.ClientTimeout(total=0.1))
    assert len(emu.requests) == 1
    assert sleep.delays == []


# --- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_idempotent_calls_retry_retryable_statuses(
    emu: Emulator, client: Client, sleep: FakeSleep, status: int
) -> None:
    aid, vid, token = _archive(emu, client)
    emu.clear_requests()
    emu.faults.fail_status = status
    emu.faults.fail_503 = 2
    emu.faults.retry_after = 1
    archive = await client.get_archive_manifest(aid, token)
    assert archive.archive_id == aid
    assert len(emu.requests) == 3
    assert sleep.delays == [1.0, 1.0]  # Retry-After honoured
    emu.faults.fail_503 = 3
    url = await client.download_archive_url(aid, vid, token)
    assert url.startswith(emu.storage_url)
    assert len(emu.requests) == 7


async def test_connection_resets_are_retried(
    emu: Emulator, client: Client, sleep: FakeSleep
) -> None:
    aid, _, token = _archive(emu, client)
    emu.clear_requests()
    emu.faults.reset_connections = 3
    assert (await client.get_archive_manifest(aid, token)).archive_id == aid
    assert len(emu.requests) == 4
    assert len(sleep.delays) == 3


async def test_connection_refused_is_retried_then_raises_request_error(sleep: FakeSleep) -> None:
    async with Emulator() as emu:
        url, key, secret = emu.url, emu.api_key, emu.api_secret
        sid = emu.create_session_id()
    # The emulator is gone: its port now refuses connections.
    async with Client(key, secret, api_url=url, sleep=sleep) as client:
        token = client.generate_token(sid, role="moderator")
        with pytest.raises(RequestError) as info:
            await client.get_archive_manifest("some-archive", token)
    assert not isinstance(info.value, RequestTimeoutError)
    assert len(sleep.delays) == 3


async def test_create_session_is_not_retried_by_default(
    emu: Emulator, client: Client, sleep: FakeSleep
) -> None:
    emu.faults.fail_503 = 1
    with pytest.raises(ServerError):
        await client.create_session()
    emu.faults.reset_connections = 1
    with pytest.raises(RequestError):
        await client.create_session()
    assert len(emu.requests) == 2
    assert sleep.delays == []
    assert (await client.create_session()).session_id  # the emulator is fine again


async def test_create_session_retries_when_the_caller_opts_in(
    emu: Emulator, sleep: FakeSleep
) -> None:
    async with Client(
        emu.api_key, emu.api_secret, api_url=emu.url, sleep=sleep, retry_create_session=True
    ) as client:
        emu.faults.fail_503 = 2
        emu.faults.reset_connections = 1
        session = await client.create_session()
    assert session.session_id in emu.sessions
    assert len(emu.requests) == 4
    assert len(sleep.delays) == 3


async def test_stitch_is_retried_because_asking_again_is_its_protocol(
    emu: Emulator, client: Client, sleep: FakeSleep
) -> None:
    # 202 means "ask again later" (protocol.md, Stitch): a repeated stitch makes nothing twice.
    aid, _, _ = _archive(emu, client)
    emu.clear_requests()
    emu.faults.stitch_pending = 0
    emu.faults.reset_connections = 1
    emu.faults.fail_503 = 1
    assert (await client.stitch_archive(aid)).ready
    assert len(emu.requests) == 3
    assert len(sleep.delays) == 2


async def test_retry_zero_means_exactly_one_request_on_the_wire(
    emu: Emulator, sleep: FakeSleep
) -> None:
    # aiohttp on its own resends a GET once after a reset; the Client turns that off so its
    # RetryPolicy is the only one counting.
    async with Client(emu.api_key, emu.api_secret, api_url=emu.url, sleep=sleep, retry=0) as c:
        aid, _, token = _archive(emu, c)
        await c.get_archive_manifest(aid, token)  # a pooled connection to reuse
        emu.clear_requests()
        emu.faults.reset_connections = 1
        with pytest.raises(RequestError):
            await c.get_archive_manifest(aid, token)
    assert len(emu.requests) == 1


# --- the retry policy, through MockTransport (no socket: only the policy is under test) --------

MOCK_KEY, MOCK_SECRET = "12345", "0123456789abcdef0123456789abcdef01234567"
MOCK_SID = "1_MX4xMjM0NX4xMjcuMC4wLjF-VHVlIFNlcCAwNCAxNDo1MzowMiBQRFQgMjAxMn4wLjUyMTE4MTN-"
MOCK_ARCHIVE = "200567af-0726-4e93-883b-fe0426d6310a"
MOCK_TOKEN = generate_token(MOCK_KEY, MOCK_SECRET, MOCK_SID, role="moderator")


def _mock_client(transport: MockTransport, sleep: FakeSleep, **options: Any) -> Client:
    return Client(
        MOCK_KEY, MOCK_SECRET, api_url="https://api.test/hl", transport=transport, sleep=sleep,
        **options,
    )  # fmt: skip


def _answers(*replies_: Callable[[], HTTPResponse]) -> MockTransport:
    """Answer with each builder in turn, the last one for ever after."""
    made = iter(replies_)
    last = replies_[-1]
    return MockTransport(lambda request: next(made, last)())


def _reset(request: HTTPRequest) -> HTTPResponse:
    raise RequestError("connection reset by peer")


def _manifest() -> HTTPResponse:
    return replies.manifest(MOCK_ARCHIVE, ["v1"])


async def test_backoff_is_exponential_with_full_jitter(sleep: FakeSleep) -> None:
    # A reset has no Retry-After: the back-off alone decides.
    async with _mock_client(MockTransport(_reset), sleep) as client:
        policy = client.retry
        # Full jitter is uniform in [0, ceiling): with the top jitter the ceilings show.
        client._jitter = lambda: 0.999999
        with pytest.raises(RequestError):
            await client.get_archive_manifest(MOCK_ARCHIVE, MOCK_TOKEN)
        ceilings = [min(policy.max_backoff, policy.backoff * 2**n) for n in range(3)]
        assert sleep.delays == pytest.approx([c * 0.999999 for c in ceilings])
        assert ceilings == [0.5, 1.0, 2.0]
        # With real randomness every delay stays under its ceiling, and they are not all equal.
        client._jitter = random.random
        sleep.delays.clear()
        for _ in range(10):
            with pytest.raises(RequestError):
                await client.get_archive_manifest(MOCK_ARCHIVE, MOCK_TOKEN)
    assert len(sleep.delays) == 30
    for n, delay in enumerate(sleep.delays):
        assert 0 <= delay < ceilings[n % 3]
    assert len(set(sleep.delays)) > 20


async def test_retry_after_up_to_the_cap_is_waited_for(sleep: FakeSleep) -> None:
    transport = _answers(lambda: replies.status(503, retry_after=5), _manifest)
    async with _mock_client(transport, sleep, retry=RetryPolicy(max_retry_after=5)) as client:
        await client.get_archive_manifest(MOCK_ARCHIVE, MOCK_TOKEN)
    assert sleep.delays == [5.0]
    assert len(transport.requests) == 2


async def test_retry_after_beyond_the_cap_ends_the_retries_and_is_reported(
    sleep: FakeSleep,
) -> None:
    # Calling back after 5 s a service that asked for an hour would ignore it: the caller gets
    # the error with retry_after and schedules the call itself.
    transport = _answers(lambda: replies.status(503, retry_after=3600), _manifest)
    async with _mock_client(transport, sleep, retry=RetryPolicy(max_retry_after=5)) as client:
        with pytest.raises(ServerError) as info:
            await client.get_archive_manifest(MOCK_ARCHIVE, MOCK_TOKEN)
    assert info.value.retry_after == 3600.0
    assert sleep.delays == []
    assert len(transport.requests) == 1


async def test_retries_are_bounded_and_then_the_status_error_raises(sleep: FakeSleep) -> None:
    transport = _answers(lambda: replies.status(503))
    async with _mock_client(transport, sleep) as client:
        with pytest.raises(ServerError) as info:
            await client.get_archive_manifest(MOCK_ARCHIVE, MOCK_TOKEN)
    assert info.value.status == 503
    assert len(transport.requests) == 4  # the first try and 3 retries (the default)
    assert len(sleep.delays) == 3


async def test_429_after_the_last_try_raises_rate_limited(sleep: FakeSleep) -> None:
    transport = _answers(lambda: replies.status(429, retry_after=7))
    async with _mock_client(transport, sleep) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.get_archive_manifest(MOCK_ARCHIVE, MOCK_TOKEN)
    assert info.value.status == 429
    assert info.value.retry_after == 7.0
    assert len(transport.requests) == 4
    assert sleep.delays == [7.0, 7.0, 7.0]


@pytest.mark.parametrize("retries", [0, 1, 5])
async def test_number_of_retries_is_configurable(sleep: FakeSleep, retries: int) -> None:
    unavailable = _answers(lambda: replies.status(503))
    async with _mock_client(unavailable, sleep, retry=retries) as client:
        with pytest.raises(ServerError):
            await client.get_archive_manifest(MOCK_ARCHIVE, MOCK_TOKEN)
    assert len(unavailable.requests) == retries + 1
    resetting = MockTransport(_reset)
    async with _mock_client(resetting, sleep, retry=retries) as client:
        with pytest.raises(RequestError):
            await client.get_archive_manifest(MOCK_ARCHIVE, MOCK_TOKEN)
    assert len(resetting.requests) == retries + 1
    assert len(sleep.delays) == 2 * retries


async def test_non_retryable_statuses_are_not_retried(sleep: FakeSleep) -> None:
    transport = _answers(lambda: replies.status(500))
    async with _mock_client(transport, sleep) as client:
        with pytest.raises(ServerError):
            await client.get_archive_manifest(MOCK_ARCHIVE, MOCK_TOKEN)
    assert len(transport.requests) == 1
    # An auth failure is the caller's to fix, never retried either.
    refused = _answers(lambda: replies.errors(403))
    async with _mock_client(refused, sleep, retry_create_session=True) as client:
        with pytest.raises(AuthError):
            await client.create_session()
        with pytest.raises(AuthError):
            await client.get_archive_manifest(MOCK_ARCHIVE, MOCK_TOKEN)
    assert len(refused.requests) == 2
    assert sleep.delays == []


# --- delete_archive and the lost reply ---------------------------------------------------------


async def test_delete_404_on_first_try_raises_not_found(emu: Emulator, client: Client) -> None:
    aid, _, token = _archive(emu, client)
    await client.delete_archive(aid, token)
    assert emu.archives[aid].deleted
    with pytest.raises(NotFoundError):
        await client.delete_archive(aid, token)


async def test_delete_404_after_a_lost_reply_counts_as_deleted(
    emu: Emulator, client: Client, sleep: FakeSleep, caplog: pytest.LogCaptureFixture
) -> None:
    aid, _, token = _archive(emu, client)
    emu.clear_requests()
    # Stage "the first try deleted it, but its reply was lost": the connection is reset, and
    # while the client backs off the archive is deleted (as that first try would have done).
    emu.faults.reset_connections = 1
    sleep.hook = lambda: setattr(emu.archives[aid], "deleted", True)
    with caplog.at_level(logging.INFO, logger="aioopentok"):
        await client.delete_archive(aid, token)
    assert [r.method for r in emu.requests] == ["POST", "POST"]
    assert "taken as deleted" in caplog.text


def _free_port() -> int:
    """A loopback port nothing listens on (until a test starts something there)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest_asyncio.fixture
async def late() -> AsyncIterator[tuple[Emulator, Client]]:
    """A client whose first connection is refused: the service starts during its first back-off."""
    port = _free_port()
    service = Emulator(port=port)
    started = False

    async def start_the_service(_: float) -> None:
        nonlocal started
        if not started:
            started = True
            await service.start()

    try:
        async with Client(
            service.api_key,
            service.api_secret,
            api_url=f"http://127.0.0.1:{port}/hl",
            sleep=start_the_service,
        ) as client:
            yield service, client
    finally:
        await service.close()


async def test_delete_404_after_tries_that_never_connected_still_raises(
    late: tuple[Emulator, Client],
) -> None:
    # A refused connection sent nothing: the 404 that follows is the archive's own answer.
    service, client = late
    token = client.generate_token(service.create_session_id(), "moderator")
    with pytest.raises(NotFoundError):
        await client.delete_archive("00000000-0000-0000-0000-000000000000", token)
    assert [r.method for r in service.requests] == ["POST"]


async def test_create_session_retries_a_connection_that_was_never_made(
    late: tuple[Emulator, Client],
) -> None:
    # Not idempotent, but a refused connection sent nothing: trying again cannot make two.
    service, client = late
    session = await client.create_session()
    assert session.session_id in service.sessions
    assert [r.path for r in service.requests] == ["/hl/session/create"]


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with Client("1", "s", api_url=f"http://127.0.0.1:{_free_port()}/hl", retry=0) as client:
        with pytest.raises(ConnectError) as info:
            await client.create_session()
    assert isinstance(info.value, RequestError) and isinstance(info.value, OSError)


async def test_delete_retries_a_503_and_a_404_then_still_raises(
    emu: Emulator, client: Client, sleep: FakeSleep
) -> None:
    # A 503 is a reply, not a lost one: a 404 after it means the archive was never there.
    emu.faults.fail_503 = 1
    with pytest.raises(NotFoundError):
        await client.delete_archive(
            "no-such-archive", client.generate_token(emu.create_session_id(), role="moderator")
        )
    assert len(sleep.delays) == 1


async def test_storage_url_reads_and_manifest_survive_mixed_faults(
    emu: Emulator, client: Client, sleep: FakeSleep
) -> None:
    aid, vid, token = _archive(emu, client)
    for _ in range(5):
        emu.faults.reset_connections = 1
        emu.faults.fail_503 = 1
        assert (await client.get_archive_manifest(aid, token)).archive_id == aid
        emu.faults.reset_connections = 1
        emu.faults.fail_503 = 1
        assert (await client.download_archive_url(aid, vid, token)).startswith("http://")
    assert len(sleep.delays) == 20
