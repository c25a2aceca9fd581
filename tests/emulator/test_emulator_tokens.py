"""The emulator's own token verifier: protocol.md's vectors, and every SDK's token shape."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import aiohttp
import pytest
from emulator_helpers import KEY, SECRET, build_token

from aioopentok import AuthError, Client
from aioopentok.emulator import Emulator, TokenError, verify_token
from aioopentok.emulator._tokens import make_session_id, session_api_key

SID = "1_MX4xMjM0NX4xMjcuMC4wLjF-VHVlIFNlcCAwNCAxNDo1MzowMiBQRFQgMjAxMn4wLjUyMTE4MTN-"
CREATE = 1346801245
TOKEN_A = (
    "T1==cGFydG5lcl9pZD0xMjM0NSZzaWc9YWJhYWU4MmRmZjdiYTVkYWZhNDhhMmE5MzZiNzZlOTYyN2VkNDdiNzpzZX"
    "NzaW9uX2lkPTFfTVg0eE1qTTBOWDR4TWpjdU1DNHdMakYtVkhWbElGTmxjQ0F3TkNBeE5EbzFNem93TWlCUVJGUWdNak"
    "F4TW40d0xqVXlNVEU0TVROLSZjcmVhdGVfdGltZT0xMzQ2ODAxMjQ1JnJvbGU9cHVibGlzaGVyJm5vbmNlPTEyMzQ1Ng=="
)


def _token_b() -> str:
    data = (
        f"session_id={SID}&create_time={CREATE}&role=moderator&nonce=42&expire_time=1346887645"
        "&connection_data=username%3DBob+Smith%2Clevel%3D4"
    )
    raw = f"partner_id={KEY}&sig=ddd9b3fb37b6623827496913403763a243359e26:{data}"
    return "T1==" + base64.b64encode(raw.encode()).decode()


def test_session_id_example_encodes_like_protocol_md() -> None:
    sid = make_session_id("12345", "127.0.0.1", "Tue Sep 04 14:53:02 PDT 2012", "0.5211813")
    assert sid == "2_" + SID[2:]
    assert session_api_key(SID) == "12345"
    assert session_api_key("3_abc") is None
    assert session_api_key("2_!!!") is None


def test_vector_a_verifies_with_default_24h_lifetime() -> None:
    info = verify_token(TOKEN_A, KEY, SECRET, now=CREATE + 10)
    assert (info.session_id, info.role, info.nonce) == (SID, "publisher", "123456")
    assert info.expire_time is None and info.connection_data == ""
    with pytest.raises(TokenError, match=f"expired on {CREATE + 86400}"):
        verify_token(TOKEN_A, KEY, SECRET, now=CREATE + 86400)


def test_vector_b_verifies_with_connection_data() -> None:
    info = verify_token(_token_b(), KEY, SECRET, now=CREATE)
    assert info.role == "moderator"
    assert info.expire_time == 1346887645
    assert info.connection_data == "username=Bob Smith,level=4"
    with pytest.raises(TokenError) as exc:
        verify_token(_token_b(), KEY, SECRET, now=1346887645)
    assert exc.value.expired_at == 1346887645


def test_field_order_free_and_meta_keys_tolerated() -> None:
    data = f"role=moderator&nonce=1&session_id={SID}&create_time={CREATE}"
    import hashlib
    import hmac

    sig = hmac.new(SECRET.encode(), data.encode(), hashlib.sha1).hexdigest()
    raw = f"partner_id={KEY}&sdk_version=tbpy-v0.91&sig={sig}:{data}"
    token = "T1==" + base64.b64encode(raw.encode()).decode()
    assert verify_token(token, KEY, SECRET, now=CREATE).role == "moderator"


def _mutate(token: str, old: bytes, new: bytes) -> str:
    raw = base64.b64decode(token[4:]).replace(old, new)
    return "T1==" + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("T2==" + TOKEN_A[4:], "T1=="),
        ("T1==@@@", "base64"),
        ("T1==" + base64.b64encode(b"no colon").decode(), "no data"),
        (_mutate(TOKEN_A, b"abaae82d", b"ABAAE82D"), "signature"),
        (_mutate(TOKEN_A, b"nonce=123456", b"nonce=123457"), "signature"),
        (_mutate(TOKEN_A, b"partner_id=12345", b"partner_id=54321"), "API key"),
        (build_token(SID, role="admin", create_time=CREATE), "role"),
        (build_token(SID, create_time=CREATE, expire_time=CREATE), "expired"),
        (build_token(SID, secret="x" * 40, create_time=CREATE), "signature"),
        (
            build_token(make_session_id("999", "", "d", "0.1"), create_time=CREATE),
            "another API key",
        ),
    ],
)
def test_bad_tokens_are_rejected(token: str, reason: str) -> None:
    with pytest.raises(TokenError, match=reason):
        verify_token(token, KEY, SECRET, now=CREATE + 1)


def test_uppercase_signature_is_rejected_even_when_hex_matches() -> None:
    upper = _mutate(
        TOKEN_A,
        b"abaae82dff7ba5dafa48a2a936b76e9627ed47b7",
        b"ABAAE82DFF7BA5DAFA48A2A936B76E9627ED47B7",
    )
    with pytest.raises(TokenError, match="signature"):
        verify_token(upper, KEY, SECRET, now=CREATE + 1)


def test_session_ids_outside_the_urlsafe_alphabet_embed_no_key() -> None:
    from aioopentok.emulator._tokens import make_session_id, session_api_key

    sid = make_session_id("12345", "127.0.0.1", "Tue Sep 04 14:53:02 PDT 2012", "0.5")
    assert session_api_key(sid) == "12345"
    for bad in (sid + "\n", sid[:10] + "';<>" + sid[10:], sid + "==", sid.replace("_", "/", 2)):
        assert session_api_key(bad) is None


# --- tokens of the other SDKs of the time (protocol.md, Tokens; issue 11) ----------------------


def _signed(data: str, *, meta: str = "", key: str = KEY, secret: str = SECRET) -> str:
    """A token over ``data`` exactly as given (another SDK's field order and nonce)."""
    sig = hmac.new(secret.encode(), data.encode(), hashlib.sha1).hexdigest()
    raw = f"partner_id={key}{meta}&sig={sig}:{data}"
    return "T1==" + base64.b64encode(raw.encode()).decode()


def _sdk_data(sdk: str, sid: str, create: int) -> tuple[str, str]:
    """Return (data, meta) shaped like the token ``sdk`` made: a moderator of ``sid``."""
    if sdk == "ruby":  # `rand`, fields in alphabetical order
        data = f"create_time={create}&nonce=0.6372539268731882&role=moderator&session_id={sid}"
        return data, ""
    if sdk == "ruby-production":  # vector C's order: role first
        data = f"role=moderator&session_id={sid}&create_time={create}&nonce=0.25012011279389024"
        return data, ""
    if sdk == "php":  # `microtime(true) . mt_rand()`, with sdk_version
        nonce = "1346801245.29591705987126"
        data = f"session_id={sid}&create_time={create}&role=moderator&nonce={nonce}"
        return data, "&sdk_version=tbphp-v0.91.2011-07-05"
    assert sdk == "java"  # `Random.nextInt()`: negative
    return f"session_id={sid}&create_time={create}&nonce=-1979400640&role=moderator", ""


# protocol.md, token/validate: a moderator's permissions, in the emulator's order.
_MODERATOR = (
    "<subscribe/><publish/><signal/><forceunpublish/><forcedisconnect/><record/><playback/>"
)
SDKS = ["ruby", "ruby-production", "php", "java"]
SDK_NONCES = {
    "ruby": "0.6372539268731882",
    "ruby-production": "0.25012011279389024",
    "php": "1346801245.29591705987126",
    "java": "-1979400640",
}


@pytest.mark.parametrize("sdk", SDKS)
def test_tokens_of_every_sdk_verify_with_the_right_secret_only(sdk: str) -> None:
    data, meta = _sdk_data(sdk, SID, CREATE)
    info = verify_token(_signed(data, meta=meta), KEY, SECRET, now=CREATE + 1)
    assert (info.session_id, info.role, info.create_time) == (SID, "moderator", CREATE)
    assert info.nonce == SDK_NONCES[sdk]
    with pytest.raises(TokenError, match="signature does not match"):
        verify_token(_signed(data, meta=meta, secret="f" * 40), KEY, SECRET, now=CREATE + 1)


_BASE = f"session_id={SID}&create_time={CREATE}&role=moderator"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_BASE, "no single nonce"),
        (_BASE + "&nonce=", "no nonce"),
        (_BASE + "&nonce=1&nonce=2", "no single nonce"),
        (f"session_id={SID}&create_time=+{CREATE}&role=moderator&nonce=1", "not integers"),
        (f"session_id={SID}&create_time=%20{CREATE}&role=moderator&nonce=1", "not integers"),
        (f"session_id={SID}&create_time=1_346_801_245&role=moderator&nonce=1", "not integers"),
        (f"session_id={SID}&create_time={CREATE}.5&role=moderator&nonce=1", "not integers"),
        (_BASE + f"&nonce=1&expire_time=+{CREATE + 60}", "not integers"),
    ],
    ids=[
        "no-nonce",
        "empty-nonce",
        "nonce-twice",
        "signed-create-time",
        "spaced-create-time",
        "underscored-create-time",
        "decimal-create-time",
        "signed-expire-time",
    ],
)
def test_signed_tokens_with_bad_fields_are_refused(data: str, reason: str) -> None:
    with pytest.raises(TokenError, match=reason):
        verify_token(_signed(data), KEY, SECRET, now=CREATE + 1)


async def test_token_validate_over_the_wire_accepts_every_sdk(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.clock = lambda: CREATE + 1.0
    sid = emu.create_session_id()
    for sdk in SDKS:
        data, meta = _sdk_data(sdk, sid, CREATE)
        for secret, expected in (
            (SECRET, f"<role>moderator</role><permissions>{_MODERATOR}</permissions>"),
            ("f" * 40, "<invalid>Token signature does not match</invalid>"),
        ):
            token = _signed(data, meta=meta, secret=secret)
            async with http.post(
                f"{emu.url}/token/validate", headers={"X-TB-TOKEN-AUTH": token}
            ) as r:
                assert r.status == 200
                assert expected in await r.text(), sdk


async def test_token_validate_over_the_wire_refuses_empty_nonce_and_signed_time(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.clock = lambda: CREATE + 1.0
    sid = emu.create_session_id()
    for data in (
        f"session_id={sid}&create_time={CREATE}&role=moderator&nonce=",
        f"session_id={sid}&create_time=+{CREATE}&role=moderator&nonce=1",
    ):
        headers = {"X-TB-TOKEN-AUTH": _signed(data)}
        async with http.post(f"{emu.url}/token/validate", headers=headers) as r:
            assert (await r.text()).startswith("<invalid>Token "), data


@pytest.mark.parametrize("sdk", SDKS)
async def test_client_reads_a_manifest_with_another_sdks_token(
    opentok_emulator: Emulator, client: Client, sdk: str
) -> None:
    emu = opentok_emulator  # the emulator `client` talks to (tests/conftest.py)
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [100_000, 200_000])
    # Today's time: a 2012 emulator clock would make the client warn about clock skew.
    data, meta = _sdk_data(sdk, sid, int(time.time()))
    token = _signed(data, meta=meta, key=emu.api_key, secret=emu.api_secret)
    archive = await client.get_archive_manifest(aid, token)
    assert archive.archive_id == aid
    assert [v.id for v in archive.resources] == [v.id for v in emu.archives[aid].videos]
    forged = _signed(data, meta=meta, key=emu.api_key, secret="f" * 40)
    with pytest.raises(AuthError):
        await client.get_archive_manifest(aid, forged)
