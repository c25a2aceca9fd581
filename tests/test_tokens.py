"""Token known-answer vectors (protocol.md A, B and C), other SDKs' tokens, validation. No I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote_plus

import pytest

import aioopentok
from aioopentok import (
    InvalidArgumentError,
    InvalidTokenError,
    Role,
    TokenExpiredError,
    decode_token,
    generate_token,
    verify_token,
)

KEY = 12345
SECRET = "0123456789abcdef0123456789abcdef01234567"
SID = "1_MX4xMjM0NX4xMjcuMC4wLjF-VHVlIFNlcCAwNCAxNDo1MzowMiBQRFQgMjAxMn4wLjUyMTE4MTN-"
CREATE = 1346801245
TOKEN_A = (
    "T1==cGFydG5lcl9pZD0xMjM0NSZzaWc9YWJhYWU4MmRmZjdiYTVkYWZhNDhhMmE5MzZiNzZlOTYyN2VkNDdiNzpzZXN"
    "zaW9uX2lkPTFfTVg0eE1qTTBOWDR4TWpjdU1DNHdMakYtVkhWbElGTmxjQ0F3TkNBeE5EbzFNem93TWlCUVJGUWdNak"
    "F4TW40d0xqVXlNVEU0TVROLSZjcmVhdGVfdGltZT0xMzQ2ODAxMjQ1JnJvbGU9cHVibGlzaGVyJm5vbmNlPTEyMzQ1Ng=="
)


def forge(data: str, *, key: str = str(KEY), secret: str = SECRET, meta: str = "") -> str:
    """Build a token by hand from a data string (the reference construction of protocol.md)."""
    sig = hmac.new(secret.encode(), data.encode(), hashlib.sha1).hexdigest()
    raw = f"partner_id={key}{meta}&sig={sig}:{data}"
    return "T1==" + base64.b64encode(raw.encode()).decode()


def session_id_for(key: str, location: str = "127.0.0.1") -> str:
    raw = f"1~{key}~{location}~Tue Sep 04 14:53:02 PDT 2012~0.5~".encode()
    return "1_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_vector_a_reproduces_byte_for_byte() -> None:
    assert generate_token(KEY, SECRET, SID, create_time=CREATE, nonce=123456) == TOKEN_A
    assert (
        generate_token(str(KEY), SECRET, SID, Role.PUBLISHER, create_time=CREATE, nonce=123456)
        == TOKEN_A
    )


def test_vector_b_reproduces_data_and_signature() -> None:
    token = generate_token(
        KEY,
        SECRET,
        SID,
        "moderator",
        1346887645,
        "username=Bob Smith,level=4",
        create_time=CREATE,
        nonce=42,
    )
    decoded = decode_token(token)
    assert decoded.data == (
        f"session_id={SID}&create_time=1346801245&role=moderator&nonce=42"
        "&expire_time=1346887645&connection_data=username%3DBob+Smith%2Clevel%3D4"
    )
    assert decoded.signature == "ddd9b3fb37b6623827496913403763a243359e26"
    assert decoded.connection_data == "username=Bob Smith,level=4"
    assert decoded.role is Role.MODERATOR and decoded.expire_time == 1346887645
    assert verify_token(token, KEY, SECRET, now=CREATE + 10) == decoded


def test_decode_vector_a_gives_every_field() -> None:
    data = decode_token(TOKEN_A)
    assert (data.partner_id, data.session_id, data.create_time, data.role, data.nonce) == (
        "12345",
        SID,
        CREATE,
        Role.PUBLISHER,
        "123456",
    )
    assert data.expire_time is None and data.connection_data is None and data.extra == {}
    assert data.signature == "abaae82dff7ba5dafa48a2a936b76e9627ed47b7"


def test_verify_uses_the_24_hour_default_lifetime_without_expire_time() -> None:
    assert verify_token(TOKEN_A, KEY, SECRET, now=CREATE + 86399).nonce == "123456"
    with pytest.raises(TokenExpiredError):
        verify_token(TOKEN_A, KEY, SECRET, now=CREATE + 86400)


def test_verify_accepts_any_field_order_and_extra_meta_keys() -> None:
    data = (
        f"nonce=7&role=subscriber&session_id={SID}&create_time={CREATE}&expire_time={CREATE + 60}"
    )
    token = forge(data, meta="&sdk_version=tbpy-v0.91.2011-07-21")
    decoded = verify_token(token, KEY, SECRET, now=CREATE)
    assert decoded.role is Role.SUBSCRIBER and decoded.nonce == "7"
    assert decoded.extra == {"sdk_version": "tbpy-v0.91.2011-07-21"}


# Vector C (protocol.md): a token the production service issued, made by the Ruby SDK. Its
# secret is not public, so it is decoded only. Note `role` first and the decimal nonce.
TOKEN_C = (
    "T1==cGFydG5lcl9pZD00NTk3ODImc2lnPWVjNjA1YTZhNzI5MDk5MzU5NTI1YWM2ZTczNDY1ZTQ3MzEwMWFkY2Q6cm9s"
    "ZT1tb2RlcmF0b3Imc2Vzc2lvbl9pZD0xX01YNDBOVGszT0RKLU1USTNMakF1TUM0eGZsUjFaU0JUWlhBZ01EUWdNVFE2"
    "TlRNNk1ESWdVRVJVSURJd01USi1NQzQxTWpFeE9ERXpmZyZjcmVhdGVfdGltZT0xMzQ2ODAxMjQ1Jm5vbmNlPTAuMjUw"
    "MTIwMTEyNzkzODkwMjQ="
)
SID_C = "1_MX40NTk3ODJ-MTI3LjAuMC4xflR1ZSBTZXAgMDQgMTQ6NTM6MDIgUERUIDIwMTJ-MC41MjExODEzfg"


def test_decode_vector_c_a_production_ruby_token() -> None:
    data = decode_token(TOKEN_C)
    assert (data.partner_id, data.signature) == (
        "459782",
        "ec605a6a729099359525ac6e73465e473101adcd",
    )
    assert (data.role, data.session_id, data.create_time, data.nonce) == (
        Role.MODERATOR,
        SID_C,
        1346801245,
        "0.25012011279389024",
    )
    assert data.expire_time is None and data.connection_data is None and data.extra == {}
    assert data.data == (
        f"role=moderator&session_id={SID_C}&create_time=1346801245&nonce=0.25012011279389024"
    )


def test_verify_vector_c_with_a_guessed_secret_is_a_signature_mismatch() -> None:
    with pytest.raises(InvalidTokenError, match="signature does not match") as info:
        verify_token(TOKEN_C, 459782, SECRET, now=1346801246)
    assert SECRET not in str(info.value)


# The data strings other SDKs of the time signed (protocol.md, Tokens): the nonce is opaque
# text and the field order is theirs. Signed here by the test secret.
SDK_TOKENS = {
    # Ruby `rand`, its fields in alphabetical order.
    "ruby": forge(f"create_time={CREATE}&nonce=0.6372539268731882&role=publisher&session_id={SID}"),
    "ruby-with-expiry-and-data": forge(
        f"connection_data=name%3DAl+B%2Cx%3D1&create_time={CREATE}&expire_time={CREATE + 3600}"
        f"&nonce=0.6372539268731882&role=moderator&session_id={SID}"
    ),
    # PHP `microtime(true) . mt_rand()`, with the SDK's sdk_version meta key.
    "php": forge(
        f"session_id={SID}&create_time={CREATE}&role=publisher&nonce=1346801245.29591705987126",
        meta="&sdk_version=tbphp-v0.91.2011-07-05",
    ),
    # Java `Random.nextInt()`: negative half the time.
    "java": forge(f"session_id={SID}&create_time={CREATE}&nonce=-1979400640&role=subscriber"),
}
SDK_NONCES = {
    "ruby": "0.6372539268731882",
    "ruby-with-expiry-and-data": "0.6372539268731882",
    "php": "1346801245.29591705987126",
    "java": "-1979400640",
}


@pytest.mark.parametrize("sdk", SDK_TOKENS)
def test_tokens_of_other_sdks_verify_with_the_right_secret_only(sdk: str) -> None:
    token = SDK_TOKENS[sdk]
    decoded = verify_token(token, KEY, SECRET, now=CREATE + 1)
    assert decoded == decode_token(token)
    assert decoded.nonce == SDK_NONCES[sdk]  # exactly as signed: text, not a number
    assert decoded.session_id == SID and decoded.create_time == CREATE
    with pytest.raises(InvalidTokenError, match="signature does not match") as info:
        verify_token(token, KEY, "f" * 40, now=CREATE + 1)
    assert SECRET not in str(info.value) and "f" * 40 not in str(info.value)


def test_a_ruby_token_keeps_its_expiry_and_connection_data_in_any_order() -> None:
    decoded = verify_token(SDK_TOKENS["ruby-with-expiry-and-data"], KEY, SECRET, now=CREATE)
    assert decoded.role is Role.MODERATOR
    assert decoded.expire_time == CREATE + 3600
    assert decoded.connection_data == "name=Al B,x=1"
    with pytest.raises(TokenExpiredError):
        verify_token(SDK_TOKENS["ruby-with-expiry-and-data"], KEY, SECRET, now=CREATE + 3600)


_BASE = f"session_id={SID}&create_time={CREATE}&role=publisher"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (forge(_BASE), "no nonce"),
        (forge(_BASE + "&nonce="), "no nonce"),
        (forge(_BASE + "&nonce=1&nonce=2"), "repeats a field"),
        (forge(_BASE + "&nonce=0.5&role=moderator"), "repeats a field"),
        (forge(_BASE + "&nonce=1", meta="&sig=" + "0" * 40), "repeats"),
        (forge(_BASE + "&nonce=1", meta="&partner_id=54321"), "repeats"),
        (forge(f"session_id={SID}&create_time=1346801245.5&role=publisher&nonce=1"), "integer"),
        (forge(f"session_id={SID}&create_time=+1346801245&role=publisher&nonce=1"), "integer"),
        (forge(f"session_id={SID}&create_time=&role=publisher&nonce=1"), "integer"),
        (forge(f"session_id={SID}&role=publisher&nonce=1"), "create_time"),
        (forge(f"session_id={SID}&create_time=1%D9%A3&role=publisher&nonce=1"), "integer"),
        (forge(_BASE + "&nonce=1&expire_time=soon"), "integer"),
    ],
    ids=[
        "no-nonce",
        "empty-nonce",
        "nonce-twice",
        "role-twice",
        "sig-twice",
        "partner-id-twice",
        "decimal-create-time",
        "signed-create-time",
        "empty-create-time",
        "no-create-time",
        "arabic-indic-digit",
        "word-expire-time",
    ],
)
def test_signed_tokens_with_bad_fields_are_invalid_not_a_crash(token: str, message: str) -> None:
    for check in (decode_token, lambda t: verify_token(t, KEY, SECRET, now=CREATE)):
        with pytest.raises(InvalidTokenError, match=message) as info:
            check(token)
        # The nonce is opaque: no error may claim it has to be a number.
        assert "nonce" not in str(info.value) or "integer" not in str(info.value)
        assert SECRET not in str(info.value)


def test_verify_rejects_uppercase_hex_signature() -> None:
    data = decode_token(TOKEN_A).data
    sig = hmac.new(SECRET.encode(), data.encode(), hashlib.sha1).hexdigest().upper()
    token = "T1==" + base64.b64encode(f"partner_id=12345&sig={sig}:{data}".encode()).decode()
    with pytest.raises(InvalidTokenError, match="lowercase"):
        verify_token(token, KEY, SECRET, now=CREATE)


def test_verify_rejects_wrong_secret_other_key_and_tampering() -> None:
    with pytest.raises(InvalidTokenError, match="signature does not match"):
        verify_token(TOKEN_A, KEY, "f" * 40, now=CREATE)
    with pytest.raises(InvalidTokenError, match="API key"):
        verify_token(TOKEN_A, 54321, SECRET, now=CREATE)
    tampered = decode_token(TOKEN_A).data.replace("publisher", "moderator")
    sig = decode_token(TOKEN_A).signature
    raw = f"partner_id=12345&sig={sig}:{tampered}"
    with pytest.raises(InvalidTokenError, match="signature"):
        verify_token("T1==" + base64.b64encode(raw.encode()).decode(), KEY, SECRET, now=CREATE)


def test_verify_rejects_a_session_of_another_key_even_if_signed() -> None:
    other = session_id_for("99999")
    token = forge(f"session_id={other}&create_time={CREATE}&role=publisher&nonce=1")
    with pytest.raises(InvalidTokenError, match="another API key"):
        verify_token(token, KEY, SECRET, now=CREATE)


def test_verify_rejects_expired_token() -> None:
    token = generate_token(KEY, SECRET, SID, expire_time=CREATE + 60, create_time=CREATE)
    assert verify_token(token, KEY, SECRET, now=CREATE + 59)
    with pytest.raises(TokenExpiredError) as info:
        verify_token(token, KEY, SECRET, now=CREATE + 60)
    assert isinstance(info.value, InvalidTokenError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "T2==abc",
        "T1==!!!!",
        "T1==" + base64.b64encode(b"no colon here").decode(),
        "T1==" + base64.b64encode(b"partner_id=1:session_id=x").decode(),
        "T1==" + base64.b64encode(b"partner_id=1&sig=ab:role=publisher&nonce=1").decode(),
        "T1=="
        + base64.b64encode(
            f"partner_id=1&sig=ab:session_id={SID}&create_time=1&role=king&nonce=1".encode()
        ).decode(),
        "T1=="
        + base64.b64encode(
            f"partner_id=1&sig=ab:session_id={SID}&create_time=x&role=publisher&nonce=1".encode()
        ).decode(),
        "T1==" + base64.b64encode(b"\xff\xfe:\xff").decode(),
    ],
)
def test_decode_rejects_malformed_tokens(token: str) -> None:
    with pytest.raises(InvalidTokenError):
        decode_token(token)


def test_expire_time_accepts_numbers_and_datetimes() -> None:
    when = datetime.fromtimestamp(CREATE + 3600, UTC)
    expected = decode_token(
        generate_token(KEY, SECRET, SID, expire_time=CREATE + 3600, create_time=CREATE)
    ).expire_time
    for value in (
        CREATE + 3600,
        CREATE + 3600.9,
        when,
        when.replace(tzinfo=None),
        when.astimezone(timezone(timedelta(hours=5))),
    ):
        token = generate_token(KEY, SECRET, SID, expire_time=value, create_time=CREATE)
        assert decode_token(token).expire_time == expected == CREATE + 3600


def test_seven_day_limit_is_inclusive_and_the_past_is_rejected() -> None:
    week = 7 * 24 * 3600
    assert generate_token(KEY, SECRET, SID, expire_time=CREATE + week, create_time=CREATE)
    with pytest.raises(InvalidArgumentError, match="seven days"):
        generate_token(KEY, SECRET, SID, expire_time=CREATE + week + 1, create_time=CREATE)
    with pytest.raises(InvalidArgumentError, match="not in the future"):
        generate_token(KEY, SECRET, SID, expire_time=CREATE, create_time=CREATE)


def test_default_create_time_is_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("aioopentok._tokens.time.time", lambda: 2_000_000_000.7)
    data = decode_token(generate_token(KEY, SECRET, SID))
    assert data.create_time == 2_000_000_000
    # We still make an integer 0..999999 (protocol.md), written in plain decimal digits.
    assert data.nonce.isdigit() and data.nonce == str(int(data.nonce))
    assert 0 <= int(data.nonce) <= 999_999


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"session_id": ""}, "Null or empty session ID"),
        ({"session_id": session_id_for("54321")}, "An invalid session ID was passed"),
        ({"session_id": "2_!!notbase64"}, "An invalid session ID was passed"),
        ({"session_id": "x" * 256}, "longer than 255"),
        ({"session_id": SID + "\n"}, "An invalid session ID was passed"),
        ({"session_id": SID[:20] + "';<>" + SID[20:]}, "An invalid session ID was passed"),
        ({"session_id": SID + "=="}, "An invalid session ID was passed"),
        ({"role": "admin"}, "role must be one of"),
        ({"role": None}, "role must be one of"),
        ({"expire_time": "tomorrow"}, "expire_time must be Unix seconds"),
        ({"expire_time": True}, "expire_time must be Unix seconds"),
        ({"expire_time": float("nan")}, "finite"),
        ({"connection_data": "x" * 1001}, "limit is 1000"),
        ({"connection_data": 5}, "connection_data must be a str"),
        ({"nonce": 1_000_000}, "nonce"),
    ],
)
def test_bad_arguments_raise_invalid_argument_error(
    kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"session_id": SID, "create_time": CREATE, **kwargs}
    with pytest.raises(InvalidArgumentError, match=message) as info:
        generate_token(KEY, SECRET, **args)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, aioopentok.OpenTokException)
    assert SECRET not in str(info.value)


def test_connection_data_of_exactly_1000_characters_is_accepted() -> None:
    data = "\u00e9" * 1000
    token = generate_token(KEY, SECRET, SID, connection_data=data, create_time=CREATE)
    assert decode_token(token).connection_data == data


def test_role_accepts_enum_and_string_values() -> None:
    for role in Role:
        for value in (role, role.value):
            token = generate_token(KEY, SECRET, SID, value, create_time=CREATE, nonce=1)
            assert decode_token(token).role is role


def test_data_is_form_encoded_as_the_stdlib_would() -> None:
    text = "a b=c,d&e:f/g+h\u00fc"
    token = generate_token(KEY, SECRET, SID, connection_data=text, create_time=CREATE, nonce=1)
    assert decode_token(token).data.endswith("&connection_data=" + quote_plus(text))


@pytest.mark.parametrize("secret", ["", "x\r\nX-Evil: 1", "with space", "caf\u00e9", None])
def test_bad_secrets_are_rejected_before_any_use(secret: object) -> None:
    with pytest.raises(InvalidArgumentError, match="api_secret") as info:
        generate_token(KEY, secret, SID)  # type: ignore[arg-type]
    assert not secret or str(secret) not in str(info.value)
    with pytest.raises(InvalidArgumentError, match="api_secret"):
        aioopentok.Client(KEY, secret)  # type: ignore[arg-type]


def test_bad_api_keys_are_rejected_before_signing() -> None:
    with pytest.raises(InvalidArgumentError, match="api_key"):
        generate_token("12 45", SECRET, SID)


def test_form_quote_matches_quote_plus_for_every_ascii_character_and_beyond() -> None:
    from aioopentok._tokens import form_quote

    for code in range(128):
        assert form_quote(chr(code)) == quote_plus(chr(code)), code
    samples = ["username=Bob Smith,level=4", "a+b&c=d/e?f#g%h", "caf\u00e9 \u65e5\u672c", ""]
    for text in samples:
        assert form_quote(text) == quote_plus(text)
