"""Issue 6, hostile or broken replies: refused promptly, in bounded memory, as ``ResponseError``.

The emulator's ``hostile`` knob distorts session/create and manifest replies. What it cannot
stage (a lying Content-Length, a gzip bomb, a body that never ends) is served by a tiny aiohttp
server on 127.0.0.1 port 0 in this file.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from aioopentok import Client, ResponseError
from aioopentok._xml import MAX_XML_BYTES
from aioopentok.emulator import Emulator

MIB = 1024 * 1024
# Generous: the cap is 1 MiB, so a correct bounded read peaks at a few MiB. Reading a 10 MiB
# reply whole, or expanding an entity bomb, goes far past it.
PEAK_LIMIT = 6 * MIB


async def _peak(call: Callable[[], Awaitable[object]]) -> tuple[BaseException | None, int, float]:
    """Run ``call``; return (its exception, peak traced bytes, seconds)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        await call()
    except Exception as exc:
        error: BaseException | None = exc
    else:
        error = None
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return error, peak, elapsed


def _manifest_call(emu: Emulator, client: Client) -> Callable[[], Awaitable[object]]:
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [5000])
    token = client.generate_token(sid, role="moderator")
    return lambda: client.get_archive_manifest(aid, token)


@pytest.mark.parametrize("kind", ["entity_bomb", "external_entity", "oversized", "truncated"])
@pytest.mark.parametrize("call", ["create_session", "manifest"])
async def test_hostile_replies_raise_response_error_promptly_in_bounded_memory(
    emu: Emulator, client: Client, kind: str, call: str
) -> None:
    run = client.create_session if call == "create_session" else _manifest_call(emu, client)
    await client.create_session()  # warm the pool and imports outside the measurement
    emu.faults.hostile = kind
    error, peak, elapsed = await _peak(run)
    assert isinstance(error, ResponseError), repr(error)
    assert peak < PEAK_LIMIT, f"{kind}: peak {peak / MIB:.1f} MiB"
    assert elapsed < 5
    if kind == "external_entity":
        assert "root:" not in str(error)
        assert "root:" not in (error.body_excerpt or "")
    emu.faults.hostile = None
    await run()  # the client (and its pool) is fine afterwards


@pytest.mark.parametrize("kind", ["bom", "gzip"])
async def test_bom_whitespace_and_gzip_replies_parse(
    emu: Emulator, client: Client, kind: str
) -> None:
    emu.faults.hostile = kind
    session = await client.create_session()
    assert session.session_id in emu.sessions
    manifest = _manifest_call(emu, client)
    archive = await manifest()
    assert archive.resources


async def test_an_entity_bomb_on_an_error_status_is_still_not_expanded(
    emu: Emulator, client: Client
) -> None:
    # An error status with a refused body is judged by its status; the bomb stays unexpanded.
    emu.faults.hostile = "entity_bomb"
    error, peak, _ = await _peak(client.create_session)
    assert isinstance(error, ResponseError)
    assert peak < PEAK_LIMIT


# --- what the emulator cannot stage -------------------------------------------------------------

_SESSION_XML = b"<sessions><Session><session_id>1_abc</session_id></Session></sessions>"


async def _lying_length(request: web.Request) -> web.StreamResponse:
    """Announce (and send) a body twice the cap: refused from the header, before reading."""
    size = 2 * MAX_XML_BYTES
    resp = web.StreamResponse(headers={"Content-Type": "text/xml", "Content-Length": str(size)})
    await resp.prepare(request)
    try:
        for _ in range(size // (64 * 1024)):
            await resp.write(b" " * (64 * 1024))
    except ConnectionError:
        pass
    return resp


async def _endless(request: web.Request) -> web.StreamResponse:
    """A chunked body that never ends: only a bounded read gets out."""
    resp = web.StreamResponse(headers={"Content-Type": "text/xml"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        await resp.write(b"<sessions>")
        while True:
            await resp.write(b"<pad/>" * 10_000)
    except ConnectionError:
        pass
    return resp


_BOMB = gzip.compress(b"<sessions>" + b" " * (200 * MIB) + b"</sessions>", compresslevel=9)


async def _gzip_bomb(request: web.Request) -> web.StreamResponse:
    """~200 KiB on the wire, 200 MiB once decompressed."""
    return web.Response(
        body=_BOMB, headers={"Content-Type": "text/xml", "Content-Encoding": "gzip"}
    )


_INFLATED = b"<sessions>" + b" " * (200 * MIB) + b"</sessions>"
_DEFLATE_BOMB = zlib.compress(_INFLATED, 9)  # "deflate" as the RFC says: zlib-wrapped
_RAW = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
_RAW_DEFLATE_BOMB = _RAW.compress(_INFLATED) + _RAW.flush()  # as many servers send it


async def _deflate_bomb(request: web.Request) -> web.StreamResponse:
    return web.Response(
        body=_DEFLATE_BOMB, headers={"Content-Type": "text/xml", "Content-Encoding": "deflate"}
    )


async def _raw_deflate_bomb(request: web.Request) -> web.StreamResponse:
    """Chunked (no Content-Length), raw deflate: nothing announces the size."""
    resp = web.StreamResponse(headers={"Content-Type": "text/xml", "Content-Encoding": "deflate"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        for at in range(0, len(_RAW_DEFLATE_BOMB), 16 * 1024):
            await resp.write(_RAW_DEFLATE_BOMB[at : at + 16 * 1024])
    except ConnectionError:
        pass
    return resp


async def _gzip_ok(request: web.Request) -> web.StreamResponse:
    body = gzip.compress(_SESSION_XML)
    return web.Response(body=body, headers={"Content-Type": "text/xml", "Content-Encoding": "gzip"})


async def _bad_gzip(request: web.Request) -> web.StreamResponse:
    body = gzip.compress(_SESSION_XML)[:20]
    return web.Response(body=body, headers={"Content-Type": "text/xml", "Content-Encoding": "gzip"})


async def _not_http(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n<")
    request.transport.close()
    await asyncio.sleep(0)
    return web.Response()


ROUTES = {
    "lying-length": _lying_length,
    "endless": _endless,
    "gzip-bomb": _gzip_bomb,
    "deflate-bomb": _deflate_bomb,
    "raw-deflate-bomb": _raw_deflate_bomb,
    "gzip-ok": _gzip_ok,
    "bad-gzip": _bad_gzip,
    "not-http": _not_http,
}


@pytest_asyncio.fixture
async def rogue() -> AsyncIterator[TestServer]:
    app = web.Application()
    for name, handler in ROUTES.items():
        app.router.add_post(f"/{name}/session/create", handler)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


def _rogue_client(server: TestServer, route: str) -> Client:
    return Client("1234", "rogue-secret", api_url=str(server.make_url(f"/{route}")), retry=0)


@pytest.mark.parametrize(
    "route", ["lying-length", "endless", "gzip-bomb", "deflate-bomb", "raw-deflate-bomb"]
)
async def test_oversized_replies_are_cut_at_the_cap(rogue: TestServer, route: str) -> None:
    async with _rogue_client(rogue, route) as client:
        error, peak, elapsed = await _peak(client.create_session)
    assert isinstance(error, ResponseError), repr(error)
    assert "cap" in str(error)
    assert peak < PEAK_LIMIT, f"{route}: peak {peak / MIB:.1f} MiB"
    assert elapsed < 10


async def test_a_gzip_reply_is_decompressed(rogue: TestServer) -> None:
    async with _rogue_client(rogue, "gzip-ok") as client:
        assert (await client.create_session()).session_id == "1_abc"


@pytest.mark.parametrize("route", ["bad-gzip", "not-http"])
async def test_broken_encoding_or_framing_is_a_response_error(
    rogue: TestServer, route: str
) -> None:
    async with _rogue_client(rogue, route) as client:
        with pytest.raises(ResponseError):
            await client.create_session()
