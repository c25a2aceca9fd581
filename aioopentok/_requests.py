"""Sans-I/O requests: validate input and build each API request; replies are in ``_replies``.

Strategy: everything that knows the wire is a pure function, tested with values in and bytes out
(``_replies`` is the other half: bytes in, models or exceptions out). The Client only sends a
``Request`` and hands back a ``Reply``. Facts relied on are in ../shared/protocol.md. Input is
checked here, at the edge, so nothing unsafe reaches a URL path, a header or a form body.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from ._errors import InvalidArgumentError
from ._models import P2PPreference

__all__ = [
    "PARTNER_AUTH",
    "TOKEN_AUTH",
    "Request",
    "Secret",
    "check_id",
    "check_token",
    "create_session_request",
    "delete_archive_request",
    "manifest_request",
    "stitch_request",
    "video_url_request",
]

PARTNER_AUTH = "X-TB-PARTNER-AUTH"
TOKEN_AUTH = "X-TB-TOKEN-AUTH"
FORM = "application/x-www-form-urlencoded"  # other content types: the service ignored the fields

# IDs go into URL path segments: letters, digits and ._~- only, never "." or ".." or a "/".
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,254}")
# Tokens go into a header: visible ASCII only, so no CR/LF can split the request.
_TOKEN_RE = re.compile(r"[\x21-\x7e]{1,8192}")


class Secret(str):
    """A credential (partner auth, a token) that is itself on the wire but never in a repr.

    Error trackers record local variables by their repr (request headers among them); this keeps
    the secret out of those reports while aiohttp still writes the real value.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<redacted>'"


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, relative to the API base URL. ``idempotent`` decides retries."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    idempotent: bool = True


# --- input checks (at the edge, before any I/O) -------------------------------------------------


def check_id(value: object, name: str) -> str:
    """Return an archive/video ID that is safe as a URL path segment, or raise."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise InvalidArgumentError(
            f"{name} must be 1-255 letters, digits, '.', '_', '~' or '-' (an OpenTok ID such as "
            f"a UUID), not {value!r}"
        )
    return value


def check_token(value: object) -> str:
    """Return a token that is safe as a header value, or raise (without echoing it)."""
    if not isinstance(value, str) or not _TOKEN_RE.fullmatch(value):
        raise InvalidArgumentError(
            "token must be a non-empty string of visible ASCII characters (a 'T1==' token "
            "with the moderator role)"
        )
    return Secret(value)


def _check_location(location: object) -> str:
    if location is None or location == "":
        return ""
    if not isinstance(location, str):
        raise InvalidArgumentError(f"location must be an IP address string, not {location!r}")
    try:
        return str(ipaddress.ip_address(location))
    except ValueError:
        raise InvalidArgumentError(
            f"location must be an IP address such as '192.0.43.10', not {location!r}"
        ) from None


def _p2p_value(value: object) -> str:
    if isinstance(value, bool):
        return "enabled" if value else "disabled"
    if isinstance(value, str) and value in {p.value for p in P2PPreference}:
        return str(value)
    raise InvalidArgumentError(
        f"p2p_preference must be 'enabled', 'disabled' (or P2PPreference, or a bool), not {value!r}"
    )


# --- requests -----------------------------------------------------------------------------------


def create_session_request(
    partner_auth: str,
    location: str | None = None,
    p2p_preference: P2PPreference | str | bool | None = None,
    properties: Mapping[str, str] | None = None,
    *,
    api_key: str,
) -> Request:
    """Build ``POST session/create`` (form fields location, p2p.preference, api_key, extras)."""
    headers = {PARTNER_AUTH: partner_auth, "Content-Type": FORM}
    if not properties:  # the common case, without urlencode: every value is form-safe
        body = f"location={quote(_check_location(location), safe='')}"
        if p2p_preference is not None:
            body += f"&p2p.preference={_p2p_value(p2p_preference)}"
        body += f"&api_key={api_key}"  # as in the seed's REST example (api_key is alphanumeric)
        return Request("POST", "session/create", headers, body.encode(), idempotent=False)
    fields: dict[str, str] = {"location": _check_location(location)}
    for key, value in (properties or {}).items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise InvalidArgumentError(f"properties must map str to str, got {key!r}: {value!r}")
        if key in ("location", "api_key"):  # set and checked by create_session itself
            raise InvalidArgumentError(f"pass {key!r} as its own argument, not in properties")
        fields[key] = value
    if "p2p.preference" in fields:
        fields["p2p.preference"] = _p2p_value(fields["p2p.preference"])
    if p2p_preference is not None:
        value = _p2p_value(p2p_preference)
        if fields.setdefault("p2p.preference", value) != value:
            raise InvalidArgumentError("p2p_preference and properties['p2p.preference'] disagree")
    fields.setdefault("api_key", api_key)  # as in the seed's REST example
    # Not idempotent: a retried create can make two sessions.
    return Request("POST", "session/create", headers, urlencode(fields).encode(), idempotent=False)


def manifest_request(archive_id: str, token: str) -> Request:
    """Build ``GET archive/getmanifest/<archive_id>`` with token auth."""
    archive_id = check_id(archive_id, "archive_id")
    return Request("GET", f"archive/getmanifest/{archive_id}", {TOKEN_AUTH: check_token(token)})


def video_url_request(archive_id: str, video_id: str, token: str) -> Request:
    """Build ``GET archive/url/<archive_id>/<video_id>`` with token auth."""
    path = f"archive/url/{check_id(archive_id, 'archive_id')}/{check_id(video_id, 'video_id')}"
    return Request("GET", path, {TOKEN_AUTH: check_token(token)})


def delete_archive_request(archive_id: str, token: str) -> Request:
    """Build ``POST archive/delete/<archive_id>`` (empty body; a GET is an nginx 404)."""
    archive_id = check_id(archive_id, "archive_id")
    # Deleting twice ends in the same state, so a retry is safe; see parse_delete for the 404.
    return Request("POST", f"archive/delete/{archive_id}", {TOKEN_AUTH: check_token(token)})


def stitch_request(partner_auth: str, archive_id: str) -> Request:
    """Build ``POST archive/<archive_id>/stitch`` with partner auth and an empty body."""
    archive_id = check_id(archive_id, "archive_id")
    return Request("POST", f"archive/{archive_id}/stitch", {PARTNER_AUTH: partner_auth})
