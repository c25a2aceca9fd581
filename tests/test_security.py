"""Issue 6, security: injection refused before any I/O, and no secret in a repr, error or log.

The secret and the tokens are distinctive strings; every failure the emulator (and a rogue
loopback server) can stage is provoked, and the whole exception (message, attributes, args,
the ``__cause__``/``__context__`` chain, its pickle) and every log record of every logger
are searched for them.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from aioopentok import (
    Client,
    InvalidArgumentError,
    OpenTokException,
    RequestTimeoutError,
)
from aioopentok.emulator import Emulator

SECRET = "s3cr3t-" + "f00d" * 8  # distinctive: any leak of it is found by substring
KEY = "46000001"


async def _no_sleep(_: float) -> None:
    return None


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(KEY, SECRET) as e:
        yield e


@pytest_asyncio.fixture
async def client(emu: Emulator) -> AsyncIterator[Client]:
    async with Client(KEY, SECRET, api_url=emu.url, sleep=_no_sleep) as c:
        yield c


# --- injection ---------------------------------------------------------------------------------

BAD_IDS: list[Any] = [
    "",
    ".",
    "..",
    "../etc",
    "a/b",
    "a\\b",
    "a\r\nX-Evil: 1",
    "a\nb",
    "a b",
    "a%2Fb",
    "a?x=1",
    "a#frag",
    "a;b",
    "é",
    "a\x00",
    "x" * 256,
    None,
    123,
    b"abc",
]
BAD_TOKENS: list[Any] = [
    "",
    "T1==abc\r\nX-Evil: 1",
    "T1==abc\n",
    "T1== abc",
    "T1==\x00",
    "T1==é",
    "T1==" + "A" * 8200,
    None,
    b"T1==abc",
]


async def _calls_with_ids(client: Client, bad: Any, good: str, token: str) -> list[Any]:
    return [
        lambda: client.get_archive_manifest(bad, token),
        lambda: client.download_archive_url(bad, good, token),
        lambda: client.download_archive_url(good, bad, token),
        lambda: client.delete_archive(bad, token),
        lambda: client.stitch_archive(bad),
    ]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
async def test_bad_ids_are_refused_before_any_io(emu: Emulator, client: Client, bad: Any) -> None:
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [5000])
    token = client.generate_token(sid, role="moderator")
    for call in await _calls_with_ids(client, bad, aid, token):
        with pytest.raises(InvalidArgumentError):
            await call()
    assert emu.requests == []


@pytest.mark.parametrize("bad", BAD_TOKENS, ids=lambda t: repr(t)[:20])
async def test_bad_tokens_are_refused_before_any_io_without_echo(
    emu: Emulator, client: Client, bad: Any
) -> None:
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [5000])
    vid = emu.archives[aid].videos[0].id
    for call in (
        lambda: client.get_archive_manifest(aid, bad),
        lambda: client.download_archive_url(aid, vid, bad),
        lambda: client.delete_archive(aid, bad),
    ):
        with pytest.raises(InvalidArgumentError) as info:
            await call()
        if isinstance(bad, str) and len(bad) > 4:
            assert bad[4:] not in str(info.value)  # a token is a credential: never echoed
    assert emu.requests == []


async def test_good_ids_of_every_allowed_character_reach_the_service(
    emu: Emulator, client: Client
) -> None:
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [("v.1_~-Z", 5000, "n")])
    token = client.generate_token(sid, role="moderator")
    url = await client.download_archive_url(aid, "v.1_~-Z", token)
    assert "/v.1_~-Z.flv?" in url
    assert emu.requests[-1].path == f"/hl/archive/url/{aid}/v.1_~-Z"


@pytest.mark.parametrize(
    "location", ["1.2.3.4\r\nX-Evil: 1", "host.example", "1.2.3.4/24", "::1\n", 1234]
)
async def test_bad_locations_are_refused_before_any_io(
    emu: Emulator, client: Client, location: Any
) -> None:
    with pytest.raises(InvalidArgumentError):
        await client.create_session(location)
    assert emu.requests == []


async def test_session_properties_cannot_inject_fields_or_headers(
    emu: Emulator, client: Client
) -> None:
    value = "x\r\nX-Evil: 1&location=6.6.6.6"
    session = await client.create_session("10.0.0.1", properties={"note": value})
    request = emu.requests[-1]
    assert "X-Evil" not in request.headers
    assert emu.sessions[session.session_id].location == "10.0.0.1"
    assert emu.sessions[session.session_id].properties.get("note") == value


@pytest.mark.parametrize("agent", ["me\r\nX-Evil: 1", "me\nx", "me\x00", "me\x7f"])
def test_user_agent_with_control_characters_is_refused(agent: str) -> None:
    with pytest.raises(InvalidArgumentError):
        Client(KEY, SECRET, user_agent=agent)


@pytest.mark.parametrize(
    "session_id", ["1_abc\r\nX: y", "2_" + "A" * 300, "../../x", "", "1_" + "é" * 4]
)
def test_generate_token_refuses_bad_session_ids(session_id: str) -> None:
    with pytest.raises(InvalidArgumentError):
        Client(KEY, SECRET).generate_token(session_id)


# --- secrets: the haystack ---------------------------------------------------------------------


def _strings_of(exc: BaseException, seen: set[int] | None = None) -> Iterator[str]:
    """Yield every string view of an exception: str, repr, args, attributes, chain, pickle."""
    seen = set() if seen is None else seen
    if id(exc) in seen:
        return
    seen.add(id(exc))
    yield str(exc)
    yield repr(exc)
    yield repr(exc.args)
    for name, value in vars(exc).items():
        yield f"{name}={value!r}"
        request_info = getattr(value, "request_info", None)
        if request_info is not None:
            yield repr(request_info)
    request_info = getattr(exc, "request_info", None)
    if request_info is not None:
        yield repr(request_info)
    if isinstance(exc, OpenTokException):
        yield repr(pickle.dumps(exc))
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None:
            yield from _strings_of(linked, seen)


def _assert_clean(exc: BaseException, *needles: str) -> None:
    for text in _strings_of(exc):
        for needle in needles:
            assert needle not in text, f"{needle[:12]}... leaked in {text[:300]}"


async def _failures(emu: Emulator, client: Client) -> list[tuple[str, BaseException]]:
    """Provoke every failure the emulator can stage; return (label, exception) pairs."""
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [5000])
    vid = emu.archives[aid].videos[0].id
    token = client.generate_token(sid, role="moderator")
    failures: list[tuple[str, BaseException]] = []

    async def expect(label: str, call: Any) -> None:
        try:
            await call()
        except Exception as exc:
            failures.append((label, exc))
        else:
            raise AssertionError(f"{label}: no error")

    faults = emu.faults
    await expect("not found", lambda: client.get_archive_manifest("nope", token))
    await expect("bad token", lambda: client.get_archive_manifest(aid, token[:-4] + "AAAA"))
    wrong = Client(KEY, "not-the-" + SECRET[8:], api_url=emu.url, sleep=_no_sleep)
    async with wrong:
        await expect("wrong secret", wrong.create_session)
        await expect("wrong secret stitch", lambda: wrong.stitch_archive(aid))
    faults.fail_503 = 100
    await expect("503", client.create_session)
    await expect("503 retried", lambda: client.get_archive_manifest(aid, token))
    faults.fail_status = 429
    await expect("429", lambda: client.download_archive_url(aid, vid, token))
    faults.fail_503 = 0
    faults.reset_connections = 100
    await expect("reset", client.create_session)
    await expect("reset retried", lambda: client.delete_archive(aid, token))
    await expect("reset stitch", lambda: client.stitch_archive(aid))
    faults.reset_connections = 0
    faults.delay = 0.3
    short = aiohttp.ClientTimeout(total=0.05)
    await expect("timeout", lambda: client.create_session(timeout=short))
    await expect("timeout token", lambda: client.get_archive_manifest(aid, token, timeout=short))
    faults.delay = 0
    for kind in ("entity_bomb", "oversized", "truncated"):
        faults.hostile = kind
        await expect(kind, client.create_session)
        await expect(kind + " manifest", lambda: client.get_archive_manifest(aid, token))
    faults.hostile = None
    await expect("bad id", lambda: client.get_archive_manifest("../x", token))
    await expect("bad token arg", lambda: client.get_archive_manifest(aid, token + "\n"))
    return failures


async def test_no_exception_carries_the_secret_or_a_token(emu: Emulator, client: Client) -> None:
    failures = await _failures(emu, client)
    assert len(failures) >= 20
    assert any(isinstance(exc, RequestTimeoutError) for _, exc in failures)
    for label, exc in failures:
        assert isinstance(exc, OpenTokException), (label, exc)
        _assert_clean(exc, SECRET, f"{KEY}:{SECRET}")
    # Tokens: the ones sent are distinct per call, so look for any T1== token body.
    for label, exc in failures:
        for text in _strings_of(exc):
            assert not re.search(r"T1==[A-Za-z0-9+/]{40,}", text), (label, text[:300])


async def _malformed_http(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
    request.transport.close()
    await asyncio.sleep(0)
    return web.Response()


async def test_a_malformed_http_reply_does_not_chain_our_headers() -> None:
    # aiohttp's ClientResponseError keeps the request headers (our partner auth, a token) in
    # request_info; it is our error's __cause__, so the Client redacts them.
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _malformed_http)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with Client(KEY, SECRET, api_url=str(server.make_url("/hl")), retry=0) as client:
            token = client.generate_token(
                Emulator(KEY, SECRET).create_session_id(), role="moderator"
            )
            errors = []
            for call in (
                client.create_session,
                lambda: client.stitch_archive("an-id"),
                lambda: client.get_archive_manifest("an-id", token),
            ):
                try:
                    await call()
                except OpenTokException as exc:
                    errors.append(exc)
    finally:
        await server.close()
    assert len(errors) == 3
    for exc in errors:
        assert isinstance(exc.__cause__, aiohttp.ClientResponseError)  # a cause is kept
        assert "<redacted>" in repr(exc.__cause__.request_info)
        _assert_clean(exc, SECRET, token[4:])


async def test_connection_refused_error_is_clean() -> None:
    async with Emulator(KEY, SECRET) as emu:
        url = emu.url
    async with Client(KEY, SECRET, api_url=url, retry=0) as client:
        with pytest.raises(OpenTokException) as info:
            await client.create_session()
    _assert_clean(info.value, SECRET)


def test_repr_and_str_of_the_client_hide_the_secret() -> None:
    client = Client(KEY, SECRET, api_url="http://127.0.0.1:9/hl")
    for text in (repr(client), str(client), repr(client._signer), f"{client}", f"{client!r}"):
        assert SECRET not in text
    assert KEY in repr(client)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_key": "", "api_secret": SECRET},
        {"api_key": "a:b", "api_secret": SECRET},
        {"api_key": KEY, "api_secret": SECRET, "api_url": "ftp://x"},
        {"api_key": KEY, "api_secret": SECRET, "limit": -1},
        {"api_key": KEY, "api_secret": SECRET, "retry": -1},
    ],
)
def test_constructor_errors_do_not_echo_the_secret(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Client(**kwargs)
    _assert_clean(info.value, SECRET)


# --- secrets: logs -----------------------------------------------------------------------------

_REQUEST_LINE = re.compile(r"^(GET|POST|HEAD) (\S+) -> (\d{3}|error) in \d+\.\d ms$")


async def test_logs_carry_no_secret_token_or_signature(
    emu: Emulator, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level: aiohttp's and asyncio's too
    emu.faults.date_offset = 3600  # a skew warning
    sid = (await client.create_session()).session_id
    aid = emu.add_archive(sid, [5000])
    vid = emu.archives[aid].videos[0].id
    token = client.generate_token(sid, role="moderator", connection_data="name=Bob")
    await client.get_archive_manifest(aid, token)
    url = await client.download_archive_url(aid, vid, token)
    storage = await client._link.open(url, {}, None)
    assert storage.status == 200
    await storage.aclose()
    signature = re.search(r"Signature=([^&]+)", url)
    assert signature is not None
    emu.faults.reset_connections = 1
    emu.faults.fail_503 = 1
    await client.get_archive_manifest(aid, token)  # two retries logged
    emu.faults.reset_connections = 1
    emu.archives[aid].deleted = True  # as if the lost try deleted it
    await client.delete_archive(aid, token)  # "taken as deleted" logged
    await client.stitch_archive(emu.add_archive(sid, [5000]))
    emu.faults.fail_503 = 1
    with pytest.raises(OpenTokException):
        await client.create_session()

    ours = [r for r in caplog.records if r.name.startswith("aioopentok")]
    levels = {r.levelname for r in ours}
    assert {"DEBUG", "INFO", "WARNING"} <= levels
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + repr(record.__dict__)
        for needle in (SECRET, token, token[4:], signature.group(1), "Signature="):
            assert needle not in text, f"{record.name}: {text[:300]}"
    request_lines = [r.getMessage() for r in ours if r.levelno == logging.DEBUG]
    api_lines = [line for line in request_lines if _REQUEST_LINE.match(line)]
    assert len(api_lines) >= 9
    paths = {m.group(2) for m in map(_REQUEST_LINE.match, api_lines) if m}
    assert f"archive/getmanifest/{aid}" in paths
    assert "session/create" in paths
    statuses = {m.group(3) for m in map(_REQUEST_LINE.match, api_lines) if m}
    assert {"200", "503", "error"} <= statuses
