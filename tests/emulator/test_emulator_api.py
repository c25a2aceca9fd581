"""The API routes of the emulator, driven with plain aiohttp (not our Client)."""

from __future__ import annotations

import base64
import re

import aiohttp
import pytest
from emulator_helpers import KEY, SECRET, MakeToken

from aioopentok.emulator import Emulator

AUTH = {"X-TB-PARTNER-AUTH": f"{KEY}:{SECRET}"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
NOT_AUTHORIZED = (
    '<Errors><error code="403"><notAuthorized message="The API secret did not match, '
    'Invalid credentials passed"/></error></Errors>'
)


def _decode_sid(sid: str) -> list[str]:
    body = sid[2:]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().split("~")


@pytest.mark.parametrize("prefix", ["/hl", ""])
async def test_create_session_production_shape(
    emu: Emulator, http: aiohttp.ClientSession, prefix: str
) -> None:
    base = emu.url.removesuffix("/hl") + prefix
    headers = {"x-tb-partner-auth": f"{KEY}:{SECRET}", **FORM}  # any casing
    async with http.post(
        f"{base}/session/create", data="location=10.0.0.1&p2p.preference=enabled", headers=headers
    ) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/xml; charset=utf-8"
        text = await r.text()
    m = re.fullmatch(
        r"<Sessions>\n  <Session>\n    <session_id>(2_[\w-]+)</session_id>\n"
        r"    <partner_id>12345</partner_id>\n"
        r"    <create_dt>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00</create_dt>\n"
        r"    <session_status></session_status>\n    </Session>\n</Sessions>",
        text,
    )
    assert m is not None, text
    sid = m.group(1)
    assert "=" not in sid
    fields = _decode_sid(sid)
    assert fields[:3] == ["1", KEY, "10.0.0.1"] and fields[-1] == ""
    info = emu.sessions[sid]
    assert info.location == "10.0.0.1"
    assert info.p2p_preference == "enabled"
    assert info.properties == {"p2p.preference": "enabled"}


async def test_create_session_ignores_fields_unless_form_encoded(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{emu.url}/session/create",
        data=b"location=10.0.0.1&p2p.preference=enabled",
        headers={**AUTH, "Content-Type": "text/plain"},
    ) as r:
        text = await r.text()
    sid = re.search(r"<session_id>(.*)</session_id>", text).group(1)  # type: ignore[union-attr]
    assert emu.sessions[sid].location == ""
    assert emu.sessions[sid].p2p_preference == "disabled"


@pytest.mark.parametrize("auth", [None, f"{KEY}:wrong", f"999:{SECRET}", SECRET])
async def test_create_session_bad_credentials_is_200_errors(
    emu: Emulator, http: aiohttp.ClientSession, auth: str | None
) -> None:
    headers = {} if auth is None else {"X-TB-PARTNER-AUTH": auth}
    async with http.post(f"{emu.url}/session/create", headers=headers) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/xml")
        assert await r.text() == NOT_AUTHORIZED
    assert emu.sessions == {}


async def test_staging_mode(http: aiohttp.ClientSession) -> None:
    async with Emulator(KEY, SECRET, staging=True) as emu:
        async with http.post(f"{emu.url}/session/create") as r:  # no auth needed
            assert r.status == 200
            text = await r.text()
        assert text.startswith('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sessions>')
        assert re.search(
            r"<create_dt>\w{3} \w{3} \d\d \d\d:\d\d:\d\d UTC \d{4}</create_dt>"
            r"</Session></sessions>$",
            text,
        )
        async with http.post(
            f"{emu.url}/session/create", headers={"X-TB-PARTNER-AUTH": f"{KEY}:nope"}
        ) as r:
            assert r.status == 403
            assert await r.read() == b""
        async with http.post(f"{emu.url}/session/create", headers=AUTH) as r:
            assert r.status == 200


async def test_get_session_extended(emu: Emulator, http: aiohttp.ClientSession) -> None:
    sid = emu.create_session_id("1.2.3.4", {"p2p.preference": "enabled", "x": "<&>"})
    async with http.get(f"{emu.url}/session/{sid}?extended=true", headers=AUTH) as r:
        text = await r.text()
    assert f"<session_id>{sid}</session_id>" in text
    assert "<location>1.2.3.4</location>" in text
    assert "<p2p_preference>enabled</p2p_preference>" in text
    assert '<property name="x" value="&lt;&amp;&gt;"/>' in text
    async with http.get(f"{emu.url}/session/2_nope", headers=AUTH) as r:
        assert "itemNotFound" in await r.text()
    async with http.get(f"{emu.url}/session/{sid}") as r:
        assert await r.text() == NOT_AUTHORIZED


async def test_manifest_exact_shape_and_escaping(
    emu: Emulator, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [("v-1", 100_000, 'Bob "&" <Al>'), ("v-2", 200_000)], title="t&<\"'")
    archive = emu.archives[aid]
    l1, l2 = (v.length_ms for v in archive.videos)
    async with http.get(
        f"{emu.url}/archive/getmanifest/{aid}", headers={"x-tb-token-auth": make_token(sid)}
    ) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/xml; charset=utf-8"
        text = await r.text()
    assert text == (
        f'<manifest version="0.1" archiveid="{aid}" title="t&amp;&lt;&quot;\'">\n'
        "    <resources>\n"
        f'    <video id="v-1" length="{l1}" name="Bob &quot;&amp;&quot; &lt;Al&gt;"/>\n'
        f'    <video id="v-2" length="{l2}" name=""/>\n'
        "    </resources>\n"
        "    <timeline>\n"
        '    <event type="PLAY" id="v-1" offset="1255" data="" />\n'
        '    <event type="PLAY" id="v-2" offset="1263" data="" />\n'
        "    </timeline>\n"
        "</manifest>\n\n\n"
    )
    assert l1 > 0 and l2 > l1


async def test_archive_calls_refuse_bad_tokens(
    emu: Emulator, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    sid = emu.create_session_id()
    other = emu.create_session_id()
    aid = emu.add_archive(sid, [100_000])
    vid = emu.archives[aid].videos[0].id
    not_found = f'<itemNotFound message="Archive {aid} not found"/>'
    cases = {
        make_token(sid, role="publisher"): not_found,
        make_token(other): not_found,
        make_token(sid, secret="f" * 40): "notAuthorized",
        make_token(sid, create_time=1346801245): "notAuthorized",  # expired
        "garbage": "notAuthorized",
    }
    for path in (f"archive/getmanifest/{aid}", f"archive/url/{aid}/{vid}"):
        for token, expected in cases.items():
            async with http.get(f"{emu.url}/{path}", headers={"X-TB-TOKEN-AUTH": token}) as r:
                assert r.status == 200
                assert expected in await r.text()
        async with http.get(f"{emu.url}/{path}") as r:
            assert "notAuthorized" in await r.text()
    async with http.get(
        f"{emu.url}/archive/getmanifest/{aid}x", headers={"X-TB-TOKEN-AUTH": make_token(sid)}
    ) as r:
        assert f"Archive {aid}x not found" in await r.text()


async def test_url_then_delete(
    emu: Emulator, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [100_000])
    vid = emu.archives[aid].videos[0].id
    tok = {"X-TB-TOKEN-AUTH": make_token(sid)}
    async with http.get(f"{emu.url}/archive/url/{aid}/{vid}", headers=tok) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        url = await r.text()
    assert re.fullmatch(
        rf"http://127\.0\.0\.1:\d+/storage/{KEY}/{aid}/{vid}\.flv\?Expires=\d+&Serial=\d+&Signature=[0-9a-f]{{64}}",
        url,
    )
    async with http.get(url) as r:
        assert r.status == 200
        assert await r.read() == emu.video_bytes(aid, vid)
    async with http.get(f"{emu.url}/archive/url/{aid}/nope", headers=tok) as r:
        assert "itemNotFound" in await r.text()
    async with http.get(f"{emu.url}/archive/delete/{aid}", headers=tok) as r:
        assert r.status == 404
        assert "<center>nginx</center>" in await r.text()
    async with http.post(f"{emu.url}/archive/delete/{aid}", headers=tok) as r:
        assert r.status == 200
        assert "Errors" not in await r.text()
    assert emu.archives[aid].deleted
    for path in (f"archive/getmanifest/{aid}", f"archive/url/{aid}/{vid}"):
        async with http.get(f"{emu.url}/{path}", headers=tok) as r:
            assert "itemNotFound" in await r.text()
    async with http.post(f"{emu.url}/archive/delete/{aid}", headers=tok) as r:
        assert "itemNotFound" in await r.text()
    async with http.get(url) as r:
        assert r.status == 404


async def test_stitch_202_then_201(emu: Emulator, http: aiohttp.ClientSession) -> None:
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [100_000, 50_000])
    emu.faults.stitch_pending = 2
    async with http.post(f"{emu.url}/archive/{aid}/stitch") as r:
        assert r.status == 403
    async with http.post(f"{emu.url}/archive/nope/stitch", headers=AUTH) as r:
        assert r.status == 404
    for _ in range(2):
        async with http.post(f"{emu.url}/archive/{aid}/stitch", headers=AUTH) as r:
            assert r.status == 202
    async with http.post(f"{emu.url}/archive/{aid}/stitch", headers=AUTH) as r:
        assert r.status == 201
        location = r.headers["Location"]
    async with http.get(location) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "video/mp4"
        assert len(await r.read()) == 150_000


async def test_token_validate(
    emu: Emulator, http: aiohttp.ClientSession, make_token: MakeToken
) -> None:
    sid = emu.create_session_id()
    tok = make_token(sid, role="subscriber", connection_data="name=<Al>", expire_time=2**40)
    async with http.post(f"{emu.url}/token/validate", headers={"X-TB-TOKEN-AUTH": tok}) as r:
        text = await r.text()
    assert text == (
        "<token><role>subscriber</role><permissions><subscribe/></permissions>"
        f"<session_id>{sid}</session_id><expire_time>{2**40}</expire_time>"
        "<connection_data>name=&lt;Al&gt;</connection_data></token>"
    )
    tok = make_token(sid, create_time=1346801245)
    async with http.post(f"{emu.url}/token/validate", headers={"X-TB-TOKEN-AUTH": tok}) as r:
        assert await r.text() == f"<invalid>Token expired on {1346801245 + 86400}</invalid>"
    emu.clock = lambda: 1346801246.0  # "now" is injectable: the 2012 token is fresh again
    async with http.post(f"{emu.url}/token/validate", headers={"X-TB-TOKEN-AUTH": tok}) as r:
        text = await r.text()
    assert "<forcedisconnect/>" in text and "<role>moderator</role>" in text


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/hl/nope"), ("DELETE", "/hl/session/create"), ("GET", "/"), ("PUT", "/storage/x")],
)
async def test_unrouted_is_nginx_404(
    emu: Emulator, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    async with http.request(method, emu.url.removesuffix("/hl") + path) as r:
        assert r.status == 404
        assert r.content_type == "text/html"
        assert "<title>404 Not Found</title>" in await r.text()


async def test_requests_are_recorded(emu: Emulator, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{emu.url}/session/create?a=1", data=b"location=x", headers=FORM):
        pass
    rec = emu.requests[-1]
    assert (rec.method, rec.path, rec.query, rec.body) == (
        "POST",
        "/hl/session/create",
        "a=1",
        b"location=x",
    )
    assert rec.headers["content-type"] == FORM["Content-Type"]
    emu.clear_requests()
    assert emu.requests == []


def test_defaults_and_repr_hide_secret() -> None:
    e = Emulator()
    assert e.api_key.isdigit()
    assert re.fullmatch(r"[0-9a-f]{40}", e.api_secret)
    assert e.api_secret not in repr(e)
    with pytest.raises(ValueError, match="at least"):
        e.add_archive(e.create_session_id(), [10])
    with pytest.raises(ValueError, match="this API key"):
        e.add_archive("2_MX45OTl-eH4-", [1000])


def test_seed_archives() -> None:
    e = Emulator(seed_archives=3, video_size=5000)
    assert len(e.seeded_archive_ids) == 3
    for aid in e.seeded_archive_ids:
        arch = e.archives[aid]
        assert arch.session_id == e.seeded_session_id
        assert [v.size for v in arch.videos] == [5000, 5000]
