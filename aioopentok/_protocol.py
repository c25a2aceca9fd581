"""Sans-I/O protocol: build each request, check each reply, parse it into models.

Strategy: everything that knows the wire lives here as pure functions over bytes, so it is tested
with bytes in and values out (tests/samples holds the recorded bodies). The Client only sends a
``Request`` and hands back a ``Reply``. Facts relied on are in ../shared/protocol.md; the quirk
that shapes this module is that the service reports most errors as HTTP 200 with an ``<Errors>``
body, so every reply is checked for ``<Errors>`` before its status is trusted.
"""

from __future__ import annotations

import email.utils
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlencode, urlsplit
from xml.etree.ElementTree import Element

from ._errors import (
    APIError,
    AuthError,
    InvalidArgumentError,
    NotFoundError,
    OpenTokException,
    RateLimitedError,
    ResponseError,
    ServerError,
)
from ._models import Archive, P2PPreference, Session, StitchResult, TimelineEvent, VideoResource
from ._xml import error_fields, iter_named, local_name, looks_like_xml, parse_xml

__all__ = [
    "PARTNER_AUTH",
    "RETRYABLE_STATUSES",
    "TOKEN_AUTH",
    "Reply",
    "Request",
    "Secret",
    "check_id",
    "check_reply",
    "check_token",
    "clock_offset",
    "create_session_request",
    "delete_archive_request",
    "manifest_request",
    "parse_archive_url",
    "parse_create_dt",
    "parse_delete",
    "parse_manifest",
    "parse_session",
    "parse_stitch",
    "retry_after_seconds",
    "stitch_request",
    "video_url_request",
]

PARTNER_AUTH = "X-TB-PARTNER-AUTH"
TOKEN_AUTH = "X-TB-TOKEN-AUTH"
FORM = "application/x-www-form-urlencoded"  # other content types: the service ignored the fields
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})

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


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP reply: status, headers (case-insensitive mapping), the whole (capped) body.

    ``lost_replies`` counts earlier tries of the same request that may have reached the service
    but whose reply was lost (a reset, a dropped connection).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    lost_replies: int = 0


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
    fields: dict[str, str] = {"location": _check_location(location)}
    for key, value in (properties or {}).items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise InvalidArgumentError(f"properties must map str to str, got {key!r}: {value!r}")
        fields[key] = value
    if "p2p.preference" in fields:
        fields["p2p.preference"] = _p2p_value(fields["p2p.preference"])
    if p2p_preference is not None:
        value = _p2p_value(p2p_preference)
        if fields.setdefault("p2p.preference", value) != value:
            raise InvalidArgumentError("p2p_preference and properties['p2p.preference'] disagree")
    fields.setdefault("api_key", api_key)  # as in the seed's REST example
    return Request(
        "POST",
        "session/create",
        {PARTNER_AUTH: partner_auth, "Content-Type": FORM},
        urlencode(fields).encode(),
        idempotent=False,  # a retried create can make two sessions
    )


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


# --- replies ------------------------------------------------------------------------------------


def _error_for(
    status: int, code: str | None, message: str | None, body: bytes, retry_after: float | None
) -> OpenTokException:
    kind = code or str(status)
    exc: OpenTokException
    if kind in ("401", "403"):
        exc = AuthError(
            "credentials or token rejected", status=status, code=code, message=message, body=body
        )
    elif kind == "404":
        exc = NotFoundError(
            "not found (or the token is not a moderator's for this archive)",
            status=status,
            code=code,
            message=message,
            body=body,
        )
    elif kind == "429":
        exc = RateLimitedError("rate limited", status=status, code=code, message=message, body=body)
        exc.retry_after = retry_after
    elif kind.startswith("5"):
        exc = ServerError(
            "the service failed", status=status, code=code, message=message, body=body
        )
    else:
        exc = APIError(
            "the service refused the request", status=status, code=code, message=message, body=body
        )
    return exc


def check_reply(reply: Reply) -> Element | None:
    """Raise the mapped error for an error reply; return the parsed XML root, if any.

    ``<Errors>`` wins over the status (protocol.md, Errors). A non-XML body at an error status
    (staging's empty 403, nginx's HTML 404, a proxy's 502 page) is judged by its status.
    """
    status, body = reply.status, reply.body
    root = None
    if looks_like_xml(body):
        try:
            root = parse_xml(body, status=status)
        except ResponseError:
            if 200 <= status < 300:
                raise
        if root is not None:
            fields = error_fields(root)
            if fields is not None:
                raise _error_for(status, fields[0], fields[1], body, None)
    if not 200 <= status < 300:
        retry_after = retry_after_seconds(reply.headers.get("Retry-After"))
        raise _error_for(status, None, None, body, retry_after)
    return root


def _required_root(reply: Reply, what: str) -> Element:
    root = check_reply(reply)
    if root is None:
        raise ResponseError(f"{what} reply is not XML", status=reply.status, body=reply.body)
    return root


def _text(root: Element, name: str) -> str | None:
    element = next(iter_named(root, name), None)
    if element is None:
        return None
    return (element.text or "").strip()


_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
_ZONES = {
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "PST": -8,
    "PDT": -7,
    "MST": -7,
    "MDT": -6,
    "CST": -6,
    "CDT": -5,
    "EST": -5,
    "EDT": -4,
}


def parse_create_dt(text: str) -> datetime | str:
    """Parse either recorded ``create_dt`` format; return the raw text if neither fits.

    Production: ``2012-09-04 23:27:12.767869+00:00``; staging (Java): ``Thu Aug 16 09:49:56 PDT
    2012``. A stamp without a zone is taken as UTC, the service's clock.
    """
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parts = text.split()
        if len(parts) != 6 or parts[4].upper() not in _ZONES:
            return text
        _, month, day, clock, zone, year = parts
        try:
            hour, minute, second = (int(x) for x in clock.split(":"))
            parsed = datetime(
                int(year),
                _MONTHS[month.lower()],
                int(day),
                hour,
                minute,
                second,
                tzinfo=timezone(timedelta(hours=_ZONES[zone.upper()])),
            )
        except (KeyError, ValueError):
            return text
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_session(reply: Reply) -> Session:
    """Parse a ``session/create`` reply: ``session_id`` wherever it is, any root name or case."""
    root = _required_root(reply, "session/create")
    session_id = _text(root, "session_id")
    if not session_id:
        raise ResponseError(
            "session/create reply has no session_id", status=reply.status, body=reply.body
        )
    create_dt = _text(root, "create_dt")
    return Session(
        session_id=session_id,
        partner_id=_text(root, "partner_id") or None,
        create_dt=parse_create_dt(create_dt) if create_dt else None,
        session_status=_text(root, "session_status"),
    )


def _int_attr(element: Element, name: str, reply: Reply) -> int:
    value = (element.get(name) or "").strip()
    if not value.isdigit() or not value.isascii():
        raise ResponseError(
            f"manifest {local_name(element)} has no integer {name!r}",
            status=reply.status,
            body=reply.body,
        )
    return int(value)


def parse_manifest(reply: Reply) -> Archive:
    """Parse ``archive/getmanifest``: videos from ``<resources>``, events from ``<timeline>``."""
    root = _required_root(reply, "manifest")
    archive_id = root.get("archiveid")
    if local_name(root) != "manifest" or not archive_id:
        raise ResponseError(
            "reply is not an archive manifest", status=reply.status, body=reply.body
        )
    videos = []
    for resources in iter_named(root, "resources"):
        for video in resources:
            if local_name(video) == "video":
                video_id = video.get("id")
                if not video_id:
                    raise ResponseError(
                        "manifest video has no id", status=reply.status, body=reply.body
                    )
                videos.append(
                    VideoResource(
                        video_id, _int_attr(video, "length", reply), video.get("name") or ""
                    )
                )
    events = []
    for timeline in iter_named(root, "timeline"):
        for event in timeline:
            if local_name(event) == "event":
                events.append(
                    TimelineEvent(
                        event.get("type") or "",
                        event.get("id") or "",
                        _int_attr(event, "offset", reply),
                        event.get("data") or "",
                    )
                )
    return Archive(
        archive_id, root.get("title") or "", tuple(videos), tuple(events), root.get("version")
    )


def parse_archive_url(reply: Reply) -> str:
    """Parse ``archive/url``: the whole body is a signed absolute http(s) URL, not a redirect."""
    root = check_reply(reply)
    try:
        text = reply.body.decode("utf-8").strip()
        parts = urlsplit(text) if root is None else None
        # Reading .port raises ValueError for a port that is no number or out of range.
        host = parts.hostname if parts is not None and (parts.port or 0) >= 0 else None
    except ValueError:  # undecodable, "Invalid IPv6 URL", a bad port
        text, parts, host = "", None, None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not host
        or any(ch.isspace() or ord(ch) < 0x20 for ch in text)
    ):
        raise ResponseError(
            "archive/url reply is not an absolute http(s) URL", status=reply.status, body=reply.body
        )
    return text


def parse_delete(reply: Reply) -> None:
    """Check an ``archive/delete`` reply: any non-error reply is success (never recorded)."""
    check_reply(reply)


def parse_stitch(reply: Reply) -> StitchResult:
    """Parse a stitch reply: 201 + ``Location`` is ready, 202 is still processing."""
    check_reply(reply)
    if reply.status == 202:
        return StitchResult(ready=False)
    location = reply.headers.get("Location")
    if not location:
        raise ResponseError(
            "stitch reply has no Location header", status=reply.status, body=reply.body
        )
    return StitchResult(ready=True, url=location)


# --- header facts used by the retry and clock logic --------------------------------------------


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return a ``Retry-After`` header's delay in seconds (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true, but no float
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def clock_offset(date_header: str | None, local_now: float) -> float | None:
    """Return server time minus local time from a reply's ``Date`` header, in seconds."""
    if not date_header:
        return None
    try:
        server = email.utils.parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        return None
    if server.tzinfo is None:
        server = server.replace(tzinfo=UTC)
    return server.timestamp() - local_now
