"""Sans-I/O replies: check each reply for errors, and parse it into models.

Strategy: pure functions over bytes, tested with the recorded bodies in tests/samples. The quirk
that shapes this module (../shared/protocol.md, Errors) is that the service reports most errors
as HTTP 200 with an ``<Errors>`` body, so every reply is checked for ``<Errors>`` before its
status is trusted. Models are built here from validated values; no XML element leaks out.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

from ._errors import (
    APIError,
    AuthError,
    NotFoundError,
    RateLimitedError,
    ResponseError,
    ServerError,
)
from ._models import Archive, Session, StitchResult, TimelineEvent, VideoResource
from ._xml import (
    error_fields,
    first_by_name,
    iter_named,
    local_name,
    looks_like_xml,
    parse_xml,
)

__all__ = [
    "RETRYABLE_STATUSES",
    "Reply",
    "check_reply",
    "clock_offset",
    "parse_archive_url",
    "parse_create_dt",
    "parse_delete",
    "parse_manifest",
    "parse_session",
    "parse_stitch",
    "retry_after_of",
    "retry_after_seconds",
]

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


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


_ERRORS: dict[str, tuple[type[APIError], str]] = {
    "401": (AuthError, "credentials or token rejected"),
    "403": (AuthError, "credentials or token rejected"),
    "404": (NotFoundError, "not found (or the token is not a moderator's for this archive)"),
    "429": (RateLimitedError, "rate limited"),
}


def _error_for(
    status: int, code: str | None, message: str | None, body: bytes, retry_after: float | None
) -> APIError:
    kind = code or str(status)
    cls, description = _ERRORS.get(kind) or (
        (ServerError, "the service failed")
        if kind.startswith("5")
        else (APIError, "the service refused the request")
    )
    exc = cls(description, status=status, code=code, message=message, body=body)
    exc.retry_after = retry_after
    return exc


def _checked(reply: Reply) -> tuple[Element | None, dict[str, Element]]:
    """``check_reply``, also returning ``first_by_name`` of the document (one walk for both)."""
    status, body = reply.status, reply.body
    root = None
    index: dict[str, Element] = {}
    if looks_like_xml(body):
        try:
            root = parse_xml(body, status=status)
        except ResponseError:
            if 200 <= status < 300:
                raise
        if root is not None:
            index = first_by_name(root)
            fields = error_fields(root, index)
            if fields is not None:
                raise _error_for(status, fields[0], fields[1], body, None)
    if not 200 <= status < 300:
        raise _error_for(status, None, None, body, retry_after_of(reply.headers))
    return root, index


def check_reply(reply: Reply) -> Element | None:
    """Raise the mapped error for an error reply; return the parsed XML root, if any.

    ``<Errors>`` wins over the status (protocol.md, Errors). A non-XML body at an error status
    (staging's empty 403, nginx's HTML 404, a proxy's 502 page) is judged by its status.
    """
    return _checked(reply)[0]


def _required_root(reply: Reply, what: str) -> tuple[Element, dict[str, Element]]:
    root, index = _checked(reply)
    if root is None:
        raise ResponseError(f"{what} reply is not XML", status=reply.status, body=reply.body)
    return root, index


def _text(index: dict[str, Element], name: str) -> str | None:
    element = index.get(name)
    return None if element is None else (element.text or "").strip()


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
    _, index = _required_root(reply, "session/create")
    session_id = _text(index, "session_id")
    if not session_id:
        raise ResponseError(
            "session/create reply has no session_id", status=reply.status, body=reply.body
        )
    create_dt = _text(index, "create_dt")
    return Session(
        session_id=session_id,
        partner_id=_text(index, "partner_id") or None,
        create_dt=parse_create_dt(create_dt) if create_dt else None,
        session_status=_text(index, "session_status"),
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
    root, _ = _required_root(reply, "manifest")
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
        # The excerpt stops before any query: a signed URL's query is a credential.
        raise ResponseError(
            "archive/url reply is not an absolute http(s) URL",
            status=reply.status,
            body=reply.body.partition(b"?")[0],
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


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return a ``Retry-After`` header's delay in seconds (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true, but no float
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_after_of(headers: Mapping[str, str]) -> float | None:
    """Return a reply's ``Retry-After`` in seconds.

    An HTTP-date value is measured from the same reply's ``Date``, the service's clock, so a
    skewed local clock neither stretches nor cancels the pause.
    """
    return retry_after_seconds(headers.get("Retry-After"), now=_http_date(headers.get("Date")))


def clock_offset(date_header: str | None, local_now: float) -> float | None:
    """Return server time minus local time from a reply's ``Date`` header, in seconds."""
    server = _http_date(date_header)
    return None if server is None else server.timestamp() - local_now
