"""Tokens: build, decode and verify ``T1==`` tokens. Pure and synchronous: no I/O, no loop.

Strategy: the format is in protocol.md, Tokens. ``generate`` sits on every page view of a user's
app, so the hot path is a handful of string operations around one HMAC: the keyed HMAC state is
built once per secret and copied per token, and the session-ID check (a base64 decode) is cached.
"now" (``create_time``) and the nonce are injectable so known-answer vectors reproduce exactly.
Reading is liberal where the service was: any field order, and the nonce as opaque text, so
tokens from the Ruby, PHP and Java SDKs (decimal, negative nonces) decode and verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import random
import re
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import parse_qsl, quote_plus

from ._errors import InvalidArgumentError, InvalidTokenError, TokenExpiredError
from ._models import Role, TokenData

__all__ = [
    "DEFAULT_LIFETIME",
    "MAX_CONNECTION_DATA",
    "MAX_LIFETIME",
    "TokenSigner",
    "api_key_of_session",
    "decode_token",
    "form_quote",
    "generate_token",
    "verify_token",
]

TOKEN_PREFIX = "T1=="
DEFAULT_LIFETIME = 24 * 3600  # the service's default when no expire_time is sent
MAX_LIFETIME = 7 * 24 * 3600  # the seed's limit wins over later SDKs' 30 days (protocol.md)
MAX_CONNECTION_DATA = 1000  # characters; exactly 1000 is accepted
MAX_SESSION_ID = 255  # the seed: "A session ID string can be up to 255 characters long"

_ROLES: dict[str, str] = {role.value: role.value for role in Role}
_SIG_RE = re.compile(r"[0-9a-f]{40}")  # lowercase only: uppercase hex was rejected
_SESSION_ID_RE = re.compile(r"[12]_[A-Za-z0-9_-]+")  # unpadded URL-safe base64 (protocol.md)
_SECRET_RE = re.compile(r"[\x21-\x7e]+")  # it goes into a header: visible ASCII only


def api_key_of_session(session_id: str) -> str | None:
    """Return the API key embedded in a session ID, or None if it does not decode.

    A session ID is ``1_``/``2_`` + unpadded URL-safe base64 of ``1~<api_key>~<location>~...``.
    """
    if not _SESSION_ID_RE.fullmatch(session_id):  # the decoder would skip foreign characters
        return None
    body = session_id[2:]
    try:
        decoded = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return None
    fields = decoded.decode("utf-8", "replace").split("~")
    return fields[1] if len(fields) > 2 else None


@lru_cache(maxsize=4096)
def _encoded_session_id(session_id: str, api_key: str) -> str:
    """Check a session ID belongs to ``api_key``; return it form-encoded for the data string."""
    if len(session_id) > MAX_SESSION_ID:
        raise InvalidArgumentError(
            f"An invalid session ID was passed: longer than {MAX_SESSION_ID} characters"
        )
    embedded = api_key_of_session(session_id)
    if embedded is None:
        raise InvalidArgumentError(
            "An invalid session ID was passed: it does not decode as an OpenTok session ID"
        )
    if embedded != api_key:
        raise InvalidArgumentError(
            f"An invalid session ID was passed: it belongs to API key {embedded!r}, not {api_key!r}"
        )
    return quote_plus(session_id)


# quote_plus(safe="") for ASCII text as one str.translate: the same bytes, ~5x faster. Letters,
# digits and "_.-~" stay, a space becomes "+", any other character "%XX" (uppercase hex).
_FORM_TABLE = {
    code: "+" if code == 0x20 else f"%{code:02X}"
    for code in range(128)
    if not (chr(code).isalnum() or chr(code) in "_.-~")
}


def form_quote(text: str) -> str:
    """Return ``text`` form-encoded exactly as ``urllib.parse.quote_plus(text, safe="")``."""
    return text.translate(_FORM_TABLE) if text.isascii() else quote_plus(text)


def _unix_seconds(value: object, name: str) -> int:
    if type(value) is int:  # the common case first: this sits on every page view
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | datetime):
        raise InvalidArgumentError(
            f"{name} must be Unix seconds (int or float) or a datetime, not {type(value).__name__}"
        )
    if isinstance(value, datetime):
        if value.tzinfo is None:  # naive means UTC (documented)
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp())
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgumentError(f"{name} must be a finite number, not {value!r}")
    return int(value)


def _role_value(role: object) -> str:
    value: str | None = None
    if isinstance(role, str):  # Role is a StrEnum, so its members hash as their values
        value = _ROLES.get(role)
    if value is None:
        raise InvalidArgumentError(
            f"role must be one of {', '.join(_ROLES)} (or aioopentok.Role), not {role!r}"
        )
    return value


class TokenSigner:
    """Signs tokens for one API key and secret. Holds the keyed HMAC; never shows the secret."""

    __slots__ = ("_mac", "api_key")

    def __init__(self, api_key: int | str, api_secret: str) -> None:
        self.api_key = check_api_key(api_key)
        if not isinstance(api_secret, str) or not _SECRET_RE.fullmatch(api_secret):
            raise InvalidArgumentError(
                "api_secret must be a non-empty string of visible ASCII characters"
            )
        self._mac = hmac.new(api_secret.encode(), digestmod=hashlib.sha1)

    def __repr__(self) -> str:
        return f"TokenSigner(api_key={self.api_key!r})"

    def signature(self, data: str) -> str:
        """Return the lowercase hex HMAC-SHA1 of ``data`` under the secret."""
        mac = self._mac.copy()
        mac.update(data.encode())
        return mac.hexdigest()

    def generate(
        self,
        session_id: str,
        role: Role | str = Role.PUBLISHER,
        expire_time: float | datetime | timedelta | None = None,
        connection_data: str | None = None,
        *,
        create_time: int | None = None,
        nonce: int | None = None,
        clock_offset: float = 0.0,
    ) -> str:
        """Return a token; see :func:`generate_token`. ``clock_offset`` corrects a skewed clock."""
        if not isinstance(session_id, str) or not session_id:
            raise InvalidArgumentError("Null or empty session ID are not valid")
        encoded_sid = _encoded_session_id(session_id, self.api_key)
        role_value = _role_value(role)
        # The service judges both times by its own clock: shift our clock, and an absolute
        # expire_time the caller took from it, by the same whole seconds (Date's resolution).
        shift = round(clock_offset)
        if create_time is None:
            now = int(time.time()) + shift
        else:
            now = _unix_seconds(create_time, "create_time")
        if nonce is None:
            nonce = int(random.random() * 1_000_000)
        elif isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 <= nonce <= 999_999:
            raise InvalidArgumentError(f"nonce must be an int from 0 to 999999, not {nonce!r}")
        data = f"session_id={encoded_sid}&create_time={now}&role={role_value}&nonce={nonce}"
        if expire_time is not None:
            if isinstance(expire_time, timedelta):
                expires = now + int(expire_time.total_seconds())
            else:
                expires = _unix_seconds(expire_time, "expire_time") + shift
            if expires <= now:
                raise InvalidArgumentError(
                    f"expire_time {expires} is not in the future (now is {now})"
                )
            if expires - now > MAX_LIFETIME:
                raise InvalidArgumentError(
                    f"expire_time {expires} is more than seven days after now ({now}); "
                    "the service allows at most seven days"
                )
            data += f"&expire_time={expires}"
        if connection_data is not None:
            if not isinstance(connection_data, str):
                raise InvalidArgumentError(
                    f"connection_data must be a str, not {type(connection_data).__name__}"
                )
            if len(connection_data) > MAX_CONNECTION_DATA:
                raise InvalidArgumentError(
                    f"connection_data is {len(connection_data)} characters; "
                    f"the limit is {MAX_CONNECTION_DATA}"
                )
            try:
                data += "&connection_data=" + form_quote(connection_data)
            except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form
                raise InvalidArgumentError("connection_data must be valid Unicode text") from None
        mac = self._mac.copy()
        mac.update(data.encode())
        raw = f"partner_id={self.api_key}&sig={mac.hexdigest()}:{data}"
        return TOKEN_PREFIX + base64.b64encode(raw.encode()).decode("ascii")


def check_api_key(api_key: object) -> str:
    """Return the API key as the string that goes on the wire; reject what cannot be one."""
    if isinstance(api_key, bool) or not isinstance(api_key, int | str):
        raise InvalidArgumentError(f"api_key must be an int or str, not {type(api_key).__name__}")
    text = str(api_key)
    if not text or not text.isascii() or not text.isalnum():
        raise InvalidArgumentError(f"api_key must be letters and digits, not {text!r}")
    return text


@lru_cache(maxsize=64)
def _signer(api_key: str, api_secret: str) -> TokenSigner:
    return TokenSigner(api_key, api_secret)


def generate_token(
    api_key: int | str,
    api_secret: str,
    session_id: str,
    role: Role | str = Role.PUBLISHER,
    expire_time: float | datetime | timedelta | None = None,
    connection_data: str | None = None,
    *,
    create_time: int | None = None,
    nonce: int | None = None,
) -> str:
    """Return a token that lets a client connect to ``session_id``.

    Args:
        api_key, api_secret: the partner credentials.
        session_id: a session ID of this API key.
        role: ``Role`` or its value; publisher by default.
        expire_time: Unix seconds or a datetime (naive means UTC), or a ``timedelta`` lifetime;
            in the future and at most seven days after ``create_time``. None: the service's
            default of 24 hours.
        connection_data: up to 1000 characters handed to the other clients.
        create_time: the token's "now", Unix seconds (default: the local clock).
        nonce: 0..999999 (default: random).

    Raises:
        InvalidArgumentError: any argument the service would refuse.
    """
    return _signer(check_api_key(api_key), api_secret).generate(
        session_id, role, expire_time, connection_data, create_time=create_time, nonce=nonce
    )


def _int_field(fields: dict[str, str], name: str) -> int:
    value = fields.get(name)
    # ASCII digits only: int() would also take "+1", " 1", "1_0" and non-ASCII digits.
    if value is None or not value.isdigit() or not value.isascii():
        raise InvalidTokenError(f"token field {name} is missing or not an integer")
    return int(value)


def _form_fields(text: str, part: str) -> dict[str, str]:
    """Parse form-encoded ``text``; a repeated key is ambiguous, so the token is invalid."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InvalidTokenError("token fields are not form-encoded") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InvalidTokenError(f"token {part} repeats a field")
    return fields


def decode_token(token: str) -> TokenData:
    """Return every field of a token. Needs no secret and checks no signature.

    Raises:
        InvalidTokenError: the token is not a well-formed ``T1==`` token.
    """
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
        raise InvalidTokenError("a token is a string starting with 'T1=='")
    try:
        text = base64.b64decode(token[len(TOKEN_PREFIX) :], validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidTokenError("token is not valid base64 of UTF-8 text") from None
    meta_text, sep, data = text.partition(":")
    if not sep:
        raise InvalidTokenError("token has no ':' between its signature and its data")
    meta = _form_fields(meta_text, "meta")
    fields = _form_fields(data, "data")  # by name: any field order (protocol.md)
    partner_id = meta.pop("partner_id", None)
    signature = meta.pop("sig", None)
    if not partner_id or signature is None:
        raise InvalidTokenError("token has no partner_id or sig")
    session_id = fields.pop("session_id", None)
    if not session_id:
        raise InvalidTokenError("token has no session_id")
    role_text = fields.pop("role", "")
    if role_text not in _ROLES:
        raise InvalidTokenError(f"token role {role_text!r} is not a known role")
    create_time = _int_field(fields, "create_time")
    expire_time = _int_field(fields, "expire_time") if "expire_time" in fields else None
    # Opaque text (protocol.md): Ruby 0.637..., PHP 1346801245.2959..., Java -1979400640.
    nonce = fields.pop("nonce", "")
    if not nonce:
        raise InvalidTokenError("token has no nonce (or an empty one)")
    for known in ("create_time", "expire_time"):
        fields.pop(known, None)
    connection_data = fields.pop("connection_data", None)
    meta.update(fields)  # unknown keys: kept, not fatal (old SDKs added sdk_version=...)
    return TokenData(
        partner_id=partner_id,
        signature=signature,
        session_id=session_id,
        create_time=create_time,
        role=Role(role_text),
        nonce=nonce,
        expire_time=expire_time,
        connection_data=connection_data,
        extra=meta,
        data=data,
    )


def verify_token(
    token: str, api_key: int | str, api_secret: str, *, now: float | None = None
) -> TokenData:
    """Return the token's fields if ``api_secret`` signed it for ``api_key`` and it is current.

    Raises:
        InvalidTokenError: malformed, another API key, or a signature that does not match.
        TokenExpiredError: genuine, but expired at ``now`` (default: the local clock).
    """
    key = check_api_key(api_key)
    decoded = decode_token(token)
    if decoded.partner_id != key:
        raise InvalidTokenError(f"token is for API key {decoded.partner_id!r}, not {key!r}")
    if api_key_of_session(decoded.session_id) != key:
        raise InvalidTokenError("token's session ID belongs to another API key")
    if not _SIG_RE.fullmatch(decoded.signature):
        raise InvalidTokenError("token signature is not 40 lowercase hex digits")
    expected = _signer(key, api_secret).signature(decoded.data)
    if not hmac.compare_digest(expected, decoded.signature):
        raise InvalidTokenError("token signature does not match (another secret, or altered)")
    expires = decoded.expire_time
    if expires is None:
        expires = decoded.create_time + DEFAULT_LIFETIME
    if (time.time() if now is None else now) >= expires:
        raise TokenExpiredError(f"token expired at {expires}")
    return decoded
