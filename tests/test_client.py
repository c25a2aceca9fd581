"""The Client on the wire, against the emulator over real loopback sockets."""

from __future__ import annotations

import gc
import warnings
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import aioopentok
from aioopentok import (
    AuthError,
    Client,
    InvalidArgumentError,
    NotFoundError,
    Role,
    decode_token,
    verify_token,
)
from aioopentok.emulator import Emulator


def api_requests(emu: Emulator) -> list:  # type: ignore[type-arg]
    return [r for r in emu.requests if "/storage/" not in r.path]


async def test_seed_flow_end_to_end(opentok_emulator: Emulator, client: Client) -> None:
    emu = opentok_emulator
    session = await client.create_session("192.0.43.10", p2p_preference="enabled")
    assert emu.sessions[session.session_id].p2p_preference == "enabled"
    assert emu.sessions[session.session_id].location == "192.0.43.10"
    assert session.partner_id == emu.api_key
    assert isinstance(session.create_dt, datetime)

    tokens = {role: client.generate_token(session.session_id, role=role) for role in Role}
    for role, token in tokens.items():
        assert verify_token(token, emu.api_key, emu.api_secret).role is role

    archive_id = emu.add_archive(
        session.session_id, videos=[20_000, ("v-2", 30_000, "Bob")], title="Standup & demo"
    )
    archive = await client.get_archive_manifest(archive_id, tokens[Role.MODERATOR])
    assert archive.archive_id == archive_id
    assert archive.title == "Standup & demo"
    assert [v.id for v in archive.resources] == [v.id for v in emu.archives[archive_id].videos]
    assert archive.resources[1].name == "Bob"
    assert all(isinstance(v.length, int) for v in archive.resources)

    url = await client.download_archive_url(archive_id, "v-2", tokens[Role.MODERATOR])
    async with aiohttp.ClientSession() as plain, plain.get(url) as response:
        body = await response.read()
    assert body == emu.video_bytes(archive_id, "v-2")

    await client.delete_archive(archive_id, tokens[Role.MODERATOR])
    with pytest.raises(NotFoundError) as info:
        await client.get_archive_manifest(archive_id, tokens[Role.MODERATOR])
    assert info.value.code == "404" and info.value.status == 200
    assert archive_id in (info.value.message or "")


async def test_requests_carry_exactly_the_auth_each_call_needs(
    opentok_emulator: Emulator, client: Client
) -> None:
    emu = opentok_emulator
    session = await client.create_session()
    token = client.generate_token(session.session_id, Role.MODERATOR)
    archive_id = emu.add_archive(session.session_id, videos=[10_000])
    video_id = emu.archives[archive_id].videos[0].id
    await client.get_archive_manifest(archive_id, token)
    await client.download_archive_url(archive_id, video_id, token)
    await client.stitch_archive(archive_id)
    await client.delete_archive(archive_id, token)

    create, manifest, url, stitch, delete = api_requests(emu)
    assert (create.method, create.path) == ("POST", "/hl/session/create")
    assert create.headers["X-TB-PARTNER-AUTH"] == f"{emu.api_key}:{emu.api_secret}"
    assert create.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "X-TB-TOKEN-AUTH" not in create.headers
    for request in (manifest, url, delete):
        assert request.headers["X-TB-TOKEN-AUTH"] == token
        assert "X-TB-PARTNER-AUTH" not in request.headers
    assert (manifest.method, manifest.path) == ("GET", f"/hl/archive/getmanifest/{archive_id}")
    assert (url.method, url.path) == ("GET", f"/hl/archive/url/{archive_id}/{video_id}")
    assert (delete.method, delete.path, delete.body) == (
        "POST",
        f"/hl/archive/delete/{archive_id}",
        b"",
    )
    assert (stitch.method, stitch.path) == ("POST", f"/hl/archive/{archive_id}/stitch")
    assert stitch.headers["X-TB-PARTNER-AUTH"] == f"{emu.api_key}:{emu.api_secret}"
    assert "X-TB-TOKEN-AUTH" not in stitch.headers
    for request in (create, manifest, url, stitch, delete):
        assert request.headers["User-Agent"].startswith(f"aioopentok/{aioopentok.__version__} ")


async def test_bad_credentials_in_production_are_an_auth_error(
    opentok_emulator: Emulator,
) -> None:
    async with Client(opentok_emulator.api_key, "wrong-secret", api_url=opentok_emulator.url) as c:
        with pytest.raises(AuthError) as info:
            await c.create_session()
    assert (info.value.status, info.value.code) == (200, "403")
    assert "wrong-secret" not in str(info.value) and "wrong-secret" not in repr(vars(info.value))


async def test_staging_empty_403_and_staging_xml() -> None:
    async with Emulator(staging=True) as emu:
        async with Client(emu.api_key, emu.api_secret, api_url=emu.url) as good:
            session = await good.create_session("127.0.0.1")
            assert isinstance(session.create_dt, datetime)
            assert session.session_id in emu.sessions
        async with Client(emu.api_key, "wrong", api_url=emu.url) as bad:
            with pytest.raises(AuthError) as info:
                await bad.create_session()
    assert info.value.status == 403 and info.value.code is None
    assert info.value.body_excerpt == ""


async def test_non_moderator_token_and_other_session_are_not_found(
    opentok_emulator: Emulator, client: Client
) -> None:
    emu = opentok_emulator
    mine = emu.create_session_id()
    other = emu.create_session_id()
    archive_id = emu.add_archive(mine, videos=[10_000])
    for token in (
        client.generate_token(mine, Role.PUBLISHER),
        client.generate_token(other, Role.MODERATOR),
    ):
        with pytest.raises(NotFoundError):
            await client.get_archive_manifest(archive_id, token)
    with pytest.raises(NotFoundError):
        await client.delete_archive(
            "00000000-0000-0000-0000-000000000000", client.generate_token(mine, Role.MODERATOR)
        )


async def test_stitch_is_processing_then_ready(opentok_emulator: Emulator, client: Client) -> None:
    emu = opentok_emulator
    emu.faults.stitch_pending = 2
    archive_id = emu.add_archive(emu.create_session_id(), videos=[10_000, 10_000])
    assert (await client.stitch_archive(archive_id)).ready is False
    assert (await client.stitch_archive(archive_id)).ready is False
    result = await client.stitch_archive(archive_id)
    assert result.ready and result.url and result.url.startswith("http://127.0.0.1:")
    with pytest.raises(NotFoundError):
        await client.stitch_archive("00000000-0000-0000-0000-000000000000")


async def test_bad_input_raises_before_any_request(
    opentok_emulator: Emulator, client: Client
) -> None:
    sid = opentok_emulator.create_session_id()
    token = client.generate_token(sid, Role.MODERATOR)
    with pytest.raises(InvalidArgumentError):
        await client.get_archive_manifest("../../session/create", token)
    with pytest.raises(InvalidArgumentError):
        await client.download_archive_url("a", "b\r\nX-Evil: 1", token)
    with pytest.raises(InvalidArgumentError):
        await client.delete_archive("a", "T1==\r\n")
    with pytest.raises(InvalidArgumentError):
        await client.create_session("not an ip")
    with pytest.raises(InvalidArgumentError, match=r"another|belongs"):
        client.generate_token(Emulator().create_session_id())
    assert opentok_emulator.requests == []


async def test_one_connection_pool_serves_every_call(opentok_emulator: Emulator) -> None:
    emu = opentok_emulator
    created = 0

    class Counting(aiohttp.TCPConnector):  # the pool itself counts: a borrowed session's
        async def _create_connection(self, *args: Any, **kwargs: Any) -> Any:  # traces are not ours
            nonlocal created
            created += 1
            return await super()._create_connection(*args, **kwargs)

    async with aiohttp.ClientSession(connector=Counting()) as borrowed:
        async with Client(emu.api_key, emu.api_secret, api_url=emu.url, session=borrowed) as c:
            assert c.http_session is borrowed
            session = await c.create_session()
            token = c.generate_token(session.session_id, Role.MODERATOR)
            archive_id = emu.add_archive(session.session_id, videos=[10_000])
            await c.get_archive_manifest(archive_id, token)
            await c.download_archive_url(archive_id, emu.archives[archive_id].videos[0].id, token)
            await c.delete_archive(archive_id, token)
        assert created == 1
        assert not borrowed.closed  # borrowed: never closed by us


async def test_owned_session_is_created_lazily_and_closed_idempotently(
    opentok_emulator: Emulator,
) -> None:
    emu = opentok_emulator
    client = Client(emu.api_key, emu.api_secret, api_url=emu.url, limit=7)
    http = client.http_session
    assert client.http_session is http
    assert isinstance(http.connector, aiohttp.TCPConnector) and http.connector.limit == 7
    await client.create_session()
    await client.close()
    await client.close()
    assert http.closed and client.closed
    with pytest.raises(RuntimeError, match="closed"):
        await client.create_session()
    # generate_token needs no I/O and still works on a closed client.
    assert client.generate_token(emu.create_session_id())


def _collect_others_garbage() -> None:
    """Collect what earlier tests left for the GC: their objects are not this test's subject."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


async def test_unclosed_client_warns_like_aiohttp(opentok_emulator: Emulator) -> None:
    emu = opentok_emulator
    _collect_others_garbage()
    client = Client(emu.api_key, emu.api_secret, api_url=emu.url)
    session = client.http_session  # keep the pool itself alive: only the Client is dropped
    with pytest.warns(ResourceWarning, match="unclosed <aioopentok.Client"):
        del client
        gc.collect()
    await session.close()


async def test_a_closed_or_unused_client_does_not_warn(opentok_emulator: Emulator) -> None:
    emu = opentok_emulator
    _collect_others_garbage()
    unused = Client(emu.api_key, emu.api_secret, api_url=emu.url)
    closed = Client(emu.api_key, emu.api_secret, api_url=emu.url)
    await closed.create_session()
    await closed.close()
    del unused, closed
    gc.collect()  # filterwarnings=error: a ResourceWarning here fails the test


def test_repr_and_errors_never_show_the_secret() -> None:
    secret = "s3cr3t-value-0123456789"
    client = Client(12345, secret, api_url="http://127.0.0.1:9/hl")
    assert secret not in repr(client) and "12345" in repr(client)
    with pytest.raises(InvalidArgumentError) as info:
        Client(12345, secret, api_url="ftp://example/")
    assert secret not in str(info.value)


@pytest.mark.parametrize("suffix", ["/hl", "/hl/", ""])
async def test_api_url_is_any_base_paths_are_appended(
    opentok_emulator: Emulator, suffix: str
) -> None:
    emu = opentok_emulator
    base = emu.url.removesuffix("/hl") + suffix
    async with Client(emu.api_key, emu.api_secret, api_url=base, user_agent="myapp/2.1") as c:
        await c.create_session()
    request = emu.requests[-1]
    assert request.path == ("/hl/session/create" if suffix else "/session/create")
    assert request.headers["User-Agent"].endswith(" myapp/2.1")


@pytest.fixture
async def forward_proxy() -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A minimal HTTP forward proxy on loopback that records what it relays."""
    seen: list[web.Request] = []

    async def relay(request: web.Request) -> web.Response:
        seen.append(request)
        async with (
            aiohttp.ClientSession() as upstream,
            upstream.request(
                request.method,
                str(request.url),
                headers={
                    k: v
                    for k, v in request.headers.items()
                    if k.lower() not in ("host", "proxy-authorization", "proxy-connection")
                },
                data=await request.read(),
            ) as reply,
        ):
            return web.Response(
                status=reply.status, body=await reply.read(), content_type=reply.content_type
            )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", relay)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_requests_go_through_an_http_proxy(
    opentok_emulator: Emulator, forward_proxy: tuple[str, list[web.Request]]
) -> None:
    emu = opentok_emulator
    proxy_url, seen = forward_proxy
    async with Client(emu.api_key, emu.api_secret, api_url=emu.url, proxy=proxy_url) as c:
        session = await c.create_session()
    assert session.session_id in emu.sessions
    assert len(seen) == 1
    assert str(seen[0].url) == emu.url + "/session/create"
    assert seen[0].headers["X-TB-PARTNER-AUTH"] == f"{emu.api_key}:{emu.api_secret}"


async def test_client_tokens_are_accepted_by_the_emulator(
    opentok_emulator: Emulator, client: Client
) -> None:
    session = await client.create_session()
    token = client.generate_token(session.session_id, "subscriber", connection_data="x=1")
    async with (
        aiohttp.ClientSession() as plain,
        plain.post(
            opentok_emulator.url + "/token/validate", headers={"X-TB-TOKEN-AUTH": token}
        ) as response,
    ):
        body = await response.text()
    assert "<role>subscriber</role>" in body and "<subscribe" in body and "invalid" not in body
    assert decode_token(token).connection_data == "x=1"


def test_credentials_are_redacted_from_reprs_of_headers_and_urls() -> None:
    client = Client(12345, "s3cr3t-0123", api_url="https://user:pw@proxy.example/hl")
    assert "pw" not in repr(client) and "s3cr3t" not in repr(client)
    request = aioopentok._requests.manifest_request("a1", "T1==abc")
    assert "T1==abc" not in repr(request) and request.headers["X-TB-TOKEN-AUTH"] == "T1==abc"
    assert "s3cr3t" not in repr({"X-TB-PARTNER-AUTH": client._partner_auth})
