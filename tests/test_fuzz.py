"""Issue 6, fuzzing (hypothesis): token round trips, and parsers that raise only our errors.

Tokens made by ``aioopentok`` are checked by our own ``decode_token``/``verify_token`` and by
the emulator's independently written verifier. The reply parsers are fed random bytes and
mutations of the recorded samples (tests/samples) and of the emulator's bodies; whatever they
are fed, the only exceptions allowed out are ``OpenTokException`` subclasses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from aioopentok import (
    Client,
    InvalidArgumentError,
    InvalidTokenError,
    OpenTokException,
    Role,
    TokenExpiredError,
    decode_token,
    generate_token,
    verify_token,
)
from aioopentok import _replies as rep
from aioopentok.emulator._tokens import make_session_id
from aioopentok.emulator._tokens import verify_token as emulator_verify

KEY = "46000001"
SECRET = "fuzz-secret-0123456789abcdef0123456789"
SESSION = make_session_id(KEY, "127.0.0.1", "Tue Sep 04 14:53:02 PDT 2012", "0.5211813")
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NOW = 1_700_000_000
roles = st.sampled_from([*Role, *(r.value for r in Role)])
create_times = st.integers(min_value=0, max_value=4_000_000_000)
# "Any Unicode": every code point, surrogates included (they cannot be encoded, so refused).
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=1000)
encodable_text = st.text(max_size=1000)


@FUZZ
@given(
    role=roles,
    create_time=create_times,
    lifetime=st.none() | st.integers(min_value=1, max_value=7 * 24 * 3600),
    nonce=st.integers(min_value=0, max_value=999_999),
    data=st.none() | encodable_text,
)
def test_generate_decode_verify_round_trip(
    role: Role | str, create_time: int, lifetime: int | None, nonce: int, data: str | None
) -> None:
    expire = None if lifetime is None else create_time + lifetime
    token = generate_token(
        KEY, SECRET, SESSION, role, expire, data, create_time=create_time, nonce=nonce
    )
    assert token.startswith("T1==") and token.isascii() and token.isprintable()
    decoded = decode_token(token)
    assert decoded.partner_id == KEY
    assert decoded.session_id == SESSION
    assert decoded.role == Role(role)
    assert decoded.create_time == create_time
    assert decoded.expire_time == expire
    assert decoded.nonce == str(nonce)
    assert decoded.connection_data == data
    # Verified while current by ours and by the emulator's own verifier...
    verified = verify_token(token, KEY, SECRET, now=create_time)
    assert verified == decoded
    info = emulator_verify(token, KEY, SECRET, now=create_time)
    assert (info.role, info.create_time, info.expire_time) == (
        Role(role).value,
        create_time,
        expire,
    )
    assert info.connection_data == (data or "")
    # ...expired at its end, and forged under another secret.
    end = expire if expire is not None else create_time + 24 * 3600
    with pytest.raises(TokenExpiredError):
        verify_token(token, KEY, SECRET, now=end)
    with pytest.raises(InvalidTokenError):
        verify_token(token, KEY, SECRET + "x", now=create_time)


@FUZZ
@given(data=any_text)
@example(data="\ud800")
@example(data="x" * 1000)
@example(data="\x00\r\n&=%+:")
def test_any_unicode_connection_data_round_trips_or_is_refused(data: str) -> None:
    try:
        token = generate_token(KEY, SECRET, SESSION, connection_data=data, create_time=NOW)
    except InvalidArgumentError:
        assert any(0xD800 <= ord(ch) <= 0xDFFF for ch in data)  # only the unencodable
        return
    assert verify_token(token, KEY, SECRET, now=NOW).connection_data == data


@settings(max_examples=30, deadline=None)
@given(data=st.text(min_size=1001, max_size=1100))
def test_connection_data_over_1000_characters_is_refused(data: str) -> None:
    with pytest.raises(InvalidArgumentError):
        generate_token(KEY, SECRET, SESSION, connection_data=data)


@FUZZ
@given(
    role=st.one_of(st.text(max_size=20), st.integers(), st.none()),
    expire=st.one_of(st.floats(allow_nan=True), st.integers(min_value=-(2**70), max_value=2**70)),
    session_id=st.text(max_size=300),
)
def test_bad_arguments_raise_invalid_argument_only(
    role: object, expire: object, session_id: str
) -> None:
    client = Client(KEY, SECRET)
    for call in (
        lambda: client.generate_token(SESSION, role),  # type: ignore[arg-type]
        lambda: client.generate_token(SESSION, expire_time=expire),  # type: ignore[arg-type]
        lambda: client.generate_token(session_id),
    ):
        with contextlib.suppress(InvalidArgumentError):
            call()


@FUZZ
@given(token=st.text(max_size=300) | st.binary(max_size=300).map(lambda b: "T1==" + b.hex()))
def test_decode_token_of_garbage_raises_invalid_token_only(token: str) -> None:
    with contextlib.suppress(InvalidTokenError):
        decode_token(token)


_GOOD = generate_token(KEY, SECRET, SESSION, "moderator", NOW + 60, "a=b", create_time=NOW, nonce=7)


@FUZZ
@given(position=st.integers(min_value=4, max_value=len(_GOOD) - 1), char=st.characters())
def test_a_mutated_token_never_verifies(position: int, char: str) -> None:
    mutated = _GOOD[:position] + char + _GOOD[position + 1 :]
    if mutated == _GOOD:
        return
    try:
        decoded = verify_token(mutated, KEY, SECRET, now=NOW)
    except InvalidTokenError:
        return
    # Base64 has slack in its last character's low bits: the decoded token must be unchanged.
    assert decoded == decode_token(_GOOD)


# --- reply parsers -------------------------------------------------------------------------------

SAMPLES_DIR = Path(__file__).parent / "samples"
SAMPLES = [
    *sorted(p.read_bytes() for p in SAMPLES_DIR.glob("*") if p.suffix in (".xml", ".txt", ".html")),
    b"<Errors><error code='429'><x message='slow'/></error></Errors>",
    b"<deleted/>",
    b"http://127.0.0.1:9/storage/x.flv?Signature=abc",
]

PARSERS: list[Callable[[rep.Reply], object]] = [
    rep.check_reply,
    rep.parse_session,
    rep.parse_manifest,
    rep.parse_archive_url,
    rep.parse_delete,
    rep.parse_stitch,
]
statuses = st.sampled_from([200, 201, 202, 204, 301, 400, 401, 403, 404, 429, 500, 503, 599])
headers = st.dictionaries(
    st.sampled_from(["Location", "Retry-After", "Content-Type", "Date"]),
    st.text(max_size=40),
    max_size=3,
)


def _feed_all(body: bytes, status: int, extra: dict[str, str]) -> None:
    reply = rep.Reply(status, CIMultiDict(extra), body)
    for parse in PARSERS:
        with contextlib.suppress(OpenTokException):
            parse(reply)


@st.composite
def mutated_samples(draw: st.DrawFn) -> bytes:
    body = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        at = draw(st.integers(min_value=0, max_value=max(len(body) - 1, 0)))
        if op == "flip" and body:
            body[at] = draw(st.integers(min_value=0, max_value=255))
        elif op == "insert":
            snippet = draw(
                st.sampled_from(
                    [
                        b"<",
                        b">",
                        b"&",
                        b"&amp;",
                        b"&#0;",
                        b"]]>",
                        b"<!DOCTYPE x>",
                        b"\xef\xbb\xbf",
                        b"<?xml version='1.0'?>",
                        b"\x00",
                        b"\xff\xfe",
                        b"<a b='1' b='2'/>",
                        b"<!ENTITY e 'x'>",
                        b"&e;",
                        b"xmlns:p='u'",
                        b"<p:x/>",
                        b"'",
                        b'"',
                    ]
                )
            )
            body[at:at] = snippet
        elif op == "delete":
            del body[at : at + draw(st.integers(min_value=1, max_value=20))]
        elif op == "truncate":
            del body[at:]
        elif op == "splice":
            other = draw(st.sampled_from(SAMPLES))
            body[at:at] = other[: draw(st.integers(min_value=0, max_value=len(other)))]
    return bytes(body)


@FUZZ
@given(body=st.binary(max_size=2000), status=statuses, extra=headers)
def test_parsers_on_random_bytes_raise_only_our_errors(
    body: bytes, status: int, extra: dict[str, str]
) -> None:
    _feed_all(body, status, extra)


@settings(max_examples=400, deadline=None)
@given(body=mutated_samples(), status=statuses, extra=headers)
# Found by this test, kept as regressions: an unknown XML encoding (LookupError), and URLs that
# urlsplit refuses or whose port is out of range (ValueError).
@example(body=b'<?xml version="1.0" encoding="ATF-8"?><sessions/>', status=200, extra={})
@example(body=b"http://]]>127.0.0.1:9/storage/x.flv?Signature=abc", status=200, extra={})
@example(body=b"http://127.0.0.1:99999/storage/x.flv", status=200, extra={})
@example(body=b"http://127.0.0.1:x/storage/x.flv", status=200, extra={})
def test_parsers_on_mutated_replies_raise_only_our_errors(
    body: bytes, status: int, extra: dict[str, str]
) -> None:
    _feed_all(body, status, extra)


xml_names = st.sampled_from(
    [
        "sessions",
        "Session",
        "session_id",
        "manifest",
        "resources",
        "video",
        "timeline",
        "event",
        "Errors",
        "error",
        "create_dt",
        "partner_id",
        "x:video",
        "deleted",
    ]
)
attr_values = st.text(max_size=30)


@st.composite
def xml_trees(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(xml_names).replace(":", "")
    attrs = draw(
        st.dictionaries(
            st.sampled_from(["id", "length", "offset", "archiveid", "code", "message", "type"]),
            attr_values,
            max_size=3,
        )
    )
    rendered = "".join(
        f' {k}="{v.replace("&", "&amp;").replace("<", "&lt;").replace(chr(34), "&quot;")}"'
        for k, v in attrs.items()
        if all(ch.isprintable() for ch in v)
    )
    children = "" if depth >= 3 else "".join(draw(st.lists(xml_trees(depth + 1), max_size=3)))
    text = draw(st.sampled_from(["", "1_abc", "  ", "2012-09-04 23:27:12+00:00", "-1", "x"]))
    return f"<{name}{rendered}>{text}{children}</{name}>"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=xml_trees(), status=statuses, extra=headers)
def test_parsers_on_random_well_formed_xml_raise_only_our_errors(
    tree: str, status: int, extra: dict[str, str]
) -> None:
    _feed_all(tree.encode(), status, extra)


@FUZZ
@given(value=st.text(max_size=60) | st.none())
@example(value="\u00b2")  # "²".isdigit() is true: found by this test
def test_header_helpers_never_raise(value: str | None) -> None:
    rep.retry_after_seconds(value)
    rep.clock_offset(value, 0.0)
