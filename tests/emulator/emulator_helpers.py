"""Helpers for the emulator's tests: fixed credentials and a hand-made token builder.

Tokens are built here by hand (not with the client's code) so these tests pin the emulator
to the protocol, not to the client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import urlencode

KEY = "12345"
SECRET = "0123456789abcdef0123456789abcdef01234567"
MakeToken = Callable[..., str]


def build_token(
    session_id: str,
    *,
    role: str = "moderator",
    key: str = KEY,
    secret: str = SECRET,
    create_time: int | None = None,
    nonce: int = 42,
    expire_time: int | None = None,
    connection_data: str | None = None,
) -> str:
    """Build a T1 token as protocol.md describes."""
    fields: list[tuple[str, str]] = [
        ("session_id", session_id),
        ("create_time", str(int(time.time()) if create_time is None else create_time)),
        ("role", role),
        ("nonce", str(nonce)),
    ]
    if expire_time is not None:
        fields.append(("expire_time", str(expire_time)))
    if connection_data is not None:
        fields.append(("connection_data", connection_data))
    data = urlencode(fields)
    sig = hmac.new(secret.encode(), data.encode(), hashlib.sha1).hexdigest()
    raw = f"partner_id={key}&sig={sig}:{data}".encode()
    return "T1==" + base64.b64encode(raw).decode()
