"""The emulator's own token verifier against protocol.md's known-answer vectors."""

from __future__ import annotations

import base64

import pytest
from emulator_helpers import KEY, SECRET, build_token

from aioopentok.emulator import TokenError, verify_token
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
