"""The emulator's own token verifier and session-ID codec (never shared with the client).

Strategy: pure functions of their inputs; "now" is a parameter. The verifier mirrors what the
service checked (../shared/protocol.md, "Tokens"): the HMAC-SHA1 is recomputed over the data
bytes exactly as received and compared to the lowercase hex signature, so a client that
re-encodes, reorders after signing, or writes uppercase hex is caught. Fields are read by
name in any order and the nonce is opaque text, as the service read them, so the Ruby, PHP and
Java SDKs' tokens (decimal and negative nonces) pass. This module is written independently of
``aioopentok._tokens`` on purpose: a shared bug would hide itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs

__all__ = [
    "ROLES",
    "TokenError",
    "TokenInfo",
    "make_session_id",
    "session_api_key",
    "verify_token",
]

ROLES = ("subscriber", "publisher", "moderator")
_DEFAULT_LIFETIME = 24 * 3600  # tokens without expire_time last 24 h after create_time
_REQUIRED = ("session_id", "create_time", "role", "nonce")


class TokenError(ValueError):
    """A token the service would refuse; ``expired_at`` is set when it merely expired."""

    def __init__(self, reason: str, *, expired_at: int | None = None) -> None:
        """Keep the reason (shown in replies) and the expiry time if that was the problem."""
        super().__init__(reason)
        self.reason = reason
        self.expired_at = expired_at


@dataclass(frozen=True)
class TokenInfo:
    """The fields of a token that verified."""

    session_id: str
    role: str
    create_time: int
    nonce: str
    expire_time: int | None
    connection_data: str


_URLSAFE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def make_session_id(api_key: str, location: str, date: str, rand: str) -> str:
    """Build a ``2_`` session ID: URL-safe base64, no padding, of the ``~`` fields."""
    raw = f"1~{api_key}~{location}~{date}~{rand}~".encode()
    return "2_" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def session_api_key(session_id: str) -> str | None:
    """Return the API key embedded in a session ID, or None if it does not decode."""
    if len(session_id) < 3 or session_id[:2] not in ("1_", "2_"):
        return None
    body = session_id[2:]
    # Only the unpadded URL-safe alphabet: the decoder would skip anything else silently.
    if body.strip(_URLSAFE_ALPHABET):
        return None
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        fields = raw.decode("utf-8").split("~")
    except (binascii.Error, ValueError):
        return None
    return fields[1] if len(fields) >= 3 else None


def _single(fields: dict[str, list[str]], name: str) -> str:
    """Return the one value of ``name``; a repeated field is as bad as a missing one."""
    values = fields.get(name)
    if not values or len(values) != 1:
        raise TokenError(f"Token has no single {name}")
    return values[0]


def _seconds(text: str) -> int:
    """Parse Unix seconds: ASCII digits only (``int`` would take "+1", " 1", "1_0", "\u0661")."""
    if not (text.isascii() and text.isdigit()):
        raise TokenError("Token times are not integers")
    return int(text)


def verify_token(token: str, api_key: str, api_secret: str, *, now: float) -> TokenInfo:
    """Check ``token`` as the service did; raise TokenError with the reason if it fails."""
    if not token.startswith("T1=="):
        raise TokenError("Token does not start with T1==")
    try:
        decoded = base64.b64decode(token[4:], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TokenError("Token is not valid base64") from exc
    meta_raw, sep, data = decoded.partition(b":")
    if not sep:
        raise TokenError("Token has no data part")
    try:
        meta = parse_qs(meta_raw.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        fields = parse_qs(data.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise TokenError("Token is not form-encoded") from exc
    if _single(meta, "partner_id") != api_key:
        raise TokenError("Token was not generated for this API key")
    expected = hmac.new(api_secret.encode(), data, hashlib.sha1).hexdigest()
    if not hmac.compare_digest(_single(meta, "sig").encode(), expected.encode()):
        raise TokenError("Token signature does not match")
    values = {name: _single(fields, name) for name in _REQUIRED}
    role = values["role"]
    if role not in ROLES:
        raise TokenError(f"Invalid role {role}")
    if not values["nonce"]:  # any text, but some: an empty nonce is no nonce
        raise TokenError("Token has no nonce")
    create_time = _seconds(values["create_time"])
    expire_time = _seconds(_single(fields, "expire_time")) if "expire_time" in fields else None
    effective_expiry = expire_time if expire_time is not None else create_time + _DEFAULT_LIFETIME
    if effective_expiry <= now:
        raise TokenError(f"Token expired on {effective_expiry}", expired_at=effective_expiry)
    session_id = values["session_id"]
    if session_api_key(session_id) != api_key:
        raise TokenError("Token is for a session of another API key")
    connection = fields.get("connection_data")
    return TokenInfo(
        session_id=session_id,
        role=role,
        create_time=create_time,
        nonce=values["nonce"],
        expire_time=expire_time,
        connection_data=_single(fields, "connection_data") if connection else "",
    )
