"""Requests exactly as the official SDKs of the time sent them, replayed over a raw socket.

Each request is written byte for byte (method, HTTP version, header names in the SDK's casing,
body) so that nothing a client library would normalise hides a route the emulator lacks
(../shared/protocol.md, "Archives" and "Test-only endpoints").
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp
import pytest
from emulator_helpers import KEY, SECRET, MakeToken

from aioopentok.emulator import Emulator

FORM = "application/x-www-form-urlencoded"
Headers = list[tuple[str, str]]
PhpSender = Callable[[str], tuple[Headers, str]]


async def _raw(
    emu: Emulator, method: str, target: str, headers: Headers, *, version: str
) -> tuple[int, dict[str, str], bytes]:
    """Send one request as raw bytes; return (status, lower-cased headers, body)."""
    url = urlsplit(emu.url)
    assert url.hostname == "127.0.0.1" and url.port is not None
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        lines = [f"{method} {target} HTTP/{version}", f"Host: 127.0.0.1:{url.port}"]
        lines += [f"{name}: {value}" for name, value in headers]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
        reply = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            reply[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(reply["content-length"])), 10)
        return int(status_line.split()[1]), reply, body
    finally:
        writer.close()


def _php_curl(token: str) -> tuple[Headers, str]:
    """PHP SDK with curl: its second CURLOPT_HTTPHEADER replaced the first, so curl's own
    Content-Type went out; CURLOPT_POSTFIELDS of "" gave Content-Length: 0."""
    return [
        ("Accept", "*/*"),
        ("X-TB-TOKEN-AUTH", token),
        ("Content-Length", "0"),
        ("Content-Type", FORM),
    ], "1.1"


def _php_stream(token: str) -> tuple[Headers, str]:
    """PHP SDK without curl: file_get_contents, HTTP/1.0, its own header casing."""
    return [("Content-type", FORM), ("X-TB-TOKEN-AUTH", token), ("Content-Length", "0")], "1.0"


PHP_SENDERS = [_php_curl, _php_stream]


@pytest.mark.parametrize("prefix", ["/hl", ""])
@pytest.mark.parametrize("sender", PHP_SENDERS, ids=["curl", "file_get_contents"])
async def test_php_post_getmanifest_is_answered_like_get(
    emu: Emulator, make_token: MakeToken, prefix: str, sender: PhpSender
) -> None:
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [("v-1", 100_000), ("v-2", 50_000)], title="t")
    token = make_token(sid)
    headers, version = sender(token)
    status, reply, body = await _raw(
        emu, "POST", f"{prefix}/archive/getmanifest/{aid}", headers, version=version
    )
    assert emu.requests[-1].method == "POST" and emu.requests[-1].body == b""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{emu.url}/archive/getmanifest/{aid}", headers={"X-TB-TOKEN-AUTH": token}) as r,
    ):
        expected = await r.read()
    assert status == 200
    assert reply["content-type"] == "text/xml; charset=utf-8"
    assert body == expected
    assert body.startswith(f'<manifest version="0.1" archiveid="{aid}" title="t">'.encode())
    # The archive checks apply to POST as to GET: a publisher token finds nothing.
    headers, version = sender(make_token(sid, role="publisher"))
    _, _, body = await _raw(
        emu, "POST", f"{prefix}/archive/getmanifest/{aid}", headers, version=version
    )
    assert f'<itemNotFound message="Archive {aid} not found"/>'.encode() in body


@pytest.mark.parametrize("prefix", ["/hl", ""])
@pytest.mark.parametrize("sender", PHP_SENDERS, ids=["curl", "file_get_contents"])
async def test_php_post_archive_url_gives_a_working_storage_url(
    emu: Emulator, make_token: MakeToken, prefix: str, sender: PhpSender
) -> None:
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [("v-1", 100_000)])
    headers, version = sender(make_token(sid))
    status, reply, body = await _raw(
        emu, "POST", f"{prefix}/archive/url/{aid}/v-1", headers, version=version
    )
    assert status == 200
    assert reply["content-type"] == "text/html; charset=utf-8"
    url = body.decode()
    assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/storage/{KEY}/{aid}/v-1\.flv\?\S+", url)
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        assert r.status == 200
        assert await r.read() == emu.video_bytes(aid, "v-1")
    _, _, body = await _raw(
        emu, "POST", f"{prefix}/archive/url/{aid}/nope", headers, version=version
    )
    assert b'<itemNotFound message="Video nope not found"/>' in body


def _python_urllib2(token: str) -> Headers:
    """Python SDK tests: urllib2.Request(url, data="", headers=...) capitalize()s names."""
    return [
        ("Accept-Encoding", "identity"),
        ("Content-length", "0"),
        ("X-tb-token-auth", token),
        ("Connection", "close"),
        ("User-Agent", "Python-urllib/2.7"),
        ("Content-type", FORM),
    ]


def _java(token: str) -> Headers:
    """Java SDK tests: an HttpURLConnection POST with no body."""
    return [
        ("X-TB-TOKEN-AUTH", token),
        ("User-Agent", "Java/1.6.0_33"),
        ("Accept", "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2"),
        ("Connection", "keep-alive"),
        ("Content-type", FORM),
        ("Content-Length", "0"),
    ]


async def _create_session(emu: Emulator, fields: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{emu.url}/session/create",
            data=fields,
            headers={"X-TB-PARTNER-AUTH": f"{KEY}:{SECRET}", "Content-Type": FORM},
        ) as r,
    ):
        m = re.search(r"<session_id>(.*)</session_id>", await r.text())
    assert m is not None
    return m.group(1)


@pytest.mark.parametrize("prefix", ["/hl", ""])
@pytest.mark.parametrize("sender", [_python_urllib2, _java], ids=["python", "java"])
async def test_sdk_test_suite_session_info_then_token_validate(
    emu: Emulator, make_token: MakeToken, prefix: str, sender: Callable[[str], Headers]
) -> None:
    # The SDK test suites: create a session with properties, read it back, validate a token.
    sid = await _create_session(
        emu,
        "location=10.1.2.3&p2p.preference=enabled&multiplexer.numOutputStreams=5"
        "&multiplexer.switchType=1&multiplexer.switchTimeout=2000&echoSuppression.enabled=true",
    )
    token = make_token(sid, role="publisher", connection_data="a=<b>", expire_time=2**40)
    headers = sender(token)
    status, reply, body = await _raw(
        emu, "POST", f"{prefix}/session/{sid}?extended=true", headers, version="1.1"
    )
    assert status == 200
    assert reply["content-type"].startswith("text/xml")
    assert body.decode() == (
        f"<Sessions><Session><session_id>{sid}</session_id>"
        "<p2p><preference>enabled</preference></p2p>"
        "<numOutputStreams>5</numOutputStreams><switchType>1</switchType>"
        "<switchTimeout>2000</switchTimeout>"
        "<echoSuppression><enabled>True</enabled></echoSuppression></Session></Sessions>"
    )
    assert emu.requests[-1].query == "extended=true"
    status, _, body = await _raw(emu, "POST", f"{prefix}/token/validate", headers, version="1.1")
    assert status == 200
    assert body.decode() == (
        "<token><role>publisher</role><permissions><subscribe/><publish/><signal/></permissions>"
        f"<session_id>{sid}</session_id><expire_time>{2**40}</expire_time>"
        "<connection_data>a=&lt;b&gt;</connection_data></token>"
    )


async def test_session_info_shows_only_properties_that_were_set(
    emu: Emulator, make_token: MakeToken
) -> None:
    sid = await _create_session(emu, "location=&echoSuppression.enabled=false")
    _, _, body = await _raw(
        emu, "POST", f"/hl/session/{sid}?extended=true", _java(make_token(sid)), version="1.1"
    )
    assert body.decode() == (
        f"<Sessions><Session><session_id>{sid}</session_id>"
        "<p2p><preference>disabled</preference></p2p>"
        "<echoSuppression><enabled>False</enabled></echoSuppression></Session></Sessions>"
    )


async def test_session_info_refuses_bad_and_foreign_tokens(
    emu: Emulator, make_token: MakeToken
) -> None:
    sid = emu.create_session_id()
    other = emu.create_session_id()
    cases = {
        make_token(other): f'<itemNotFound message="Session {sid} not found"/>',
        make_token(sid, secret="f" * 40): "notAuthorized",
        make_token(sid, create_time=1346801245): "notAuthorized",  # expired
    }
    for token, expected in cases.items():
        status, _, body = await _raw(
            emu, "POST", f"/hl/session/{sid}?extended=true", _java(token), version="1.1"
        )
        assert status == 200
        assert expected in body.decode()
    status, _, body = await _raw(
        emu, "POST", f"/hl/session/{sid}?extended=true", [("Content-Length", "0")], version="1.1"
    )
    assert "notAuthorized" in body.decode()
    _, _, body = await _raw(
        emu, "POST", "/hl/session/2_nope?extended=true", _java(make_token(sid)), version="1.1"
    )
    assert '<itemNotFound message="Session 2_nope not found"/>' in body.decode()
    # session/create is still session/create, not a session called "create".
    status, _, body = await _raw(
        emu, "POST", "/hl/session/create", [("X-TB-PARTNER-AUTH", f"{KEY}:{SECRET}"),
                                           ("Content-Length", "0")], version="1.1",
    )  # fmt: skip
    assert status == 200 and b"<session_id>2_" in body
