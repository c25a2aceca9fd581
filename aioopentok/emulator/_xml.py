"""Reply bodies, written byte for byte like the recorded service (../shared/protocol.md).

Strategy: string templates, not an XML library, because the recorded replies have exact
whitespace (indentation, trailing blank lines) that a serializer would not reproduce. Every
user-supplied value goes through ``_attr``/``_text``. Hostile variants for the ``hostile``
fault knob live here too, next to the valid bodies they distort.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator

from ._state import ArchiveInfo, SessionInfo
from ._tokens import TokenInfo

__all__ = [
    "NGINX_404",
    "PERMISSIONS",
    "errors_not_authorized",
    "errors_not_found",
    "hostile_body",
    "invalid_token",
    "manifest",
    "s3_error",
    "session_created",
    "session_details",
    "session_extended",
    "token_details",
]

NGINX_404 = (
    "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    "<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)

#: Permissions per role, as ``token/validate`` lists them.
PERMISSIONS = {
    "subscriber": ("subscribe",),
    "publisher": ("subscribe", "publish", "signal"),
    "moderator": (
        "subscribe", "publish", "signal",
        "forceunpublish", "forcedisconnect", "record", "playback",
    ),
}  # fmt: skip


def _text(value: str) -> str:
    """Escape character data."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(value: str) -> str:
    """Escape a double-quoted attribute value (newlines too, so they survive parsing)."""
    return (
        _text(value)
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#9;")
    )


def _production_dt(info: SessionInfo) -> str:
    """Format ``create_dt`` like production: ``2012-09-04 23:27:12.767869+00:00``."""
    return info.create_dt.isoformat(sep=" ", timespec="microseconds")


def errors_not_authorized() -> str:
    """The production 'bad credentials' body (sent with HTTP 200)."""
    return (
        '<Errors><error code="403"><notAuthorized message="The API secret did not match, '
        'Invalid credentials passed"/></error></Errors>'
    )


def errors_not_found(item_id: str, what: str = "Archive") -> str:
    """The production 'no such archive' body (sent with HTTP 200)."""
    return (
        f'<Errors><error code="404"><itemNotFound message="{what} {_attr(item_id)} '
        'not found"/></error></Errors>'
    )


def session_created(info: SessionInfo, partner_id: str, *, staging: bool) -> str:
    """The ``session/create`` reply in the production or the staging shape."""
    sid, pid = _text(info.session_id), _text(partner_id)
    if staging:
        date = info.create_dt.strftime("%a %b %d %H:%M:%S UTC %Y")
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sessions><Session>'
            f"<session_id>{sid}</session_id><partner_id>{pid}</partner_id>"
            f"<create_dt>{date}</create_dt></Session></sessions>"
        )
    return (
        "<Sessions>\n  <Session>\n"
        f"    <session_id>{sid}</session_id>\n"
        f"    <partner_id>{pid}</partner_id>\n"
        f"    <create_dt>{info.create_dt.isoformat(sep=' ', timespec='microseconds')}</create_dt>\n"
        "    <session_status></session_status>\n"
        "    </Session>\n</Sessions>"
    )


def session_details(info: SessionInfo) -> str:
    """Our own shape for ``GET session/<id>`` (never recorded; protocol.md is silent).

    ``<Sessions><Session><session_id/><location/><p2p_preference/><create_dt/>``
    ``<properties><property name=".." value=".."/>...</properties></Session></Sessions>``:
    the create reply's root and id element, so a parser of that reply finds the id here too.
    """
    props = "".join(
        f'<property name="{_attr(k)}" value="{_attr(v)}"/>' for k, v in info.properties.items()
    )
    return (
        f"<Sessions><Session><session_id>{_text(info.session_id)}</session_id>"
        f"<location>{_text(info.location)}</location>"
        f"<p2p_preference>{_text(info.p2p_preference)}</p2p_preference>"
        f"<create_dt>{info.create_dt.isoformat(sep=' ', timespec='microseconds')}</create_dt>"
        f"<properties>{props}</properties></Session></Sessions>"
    )


#: Session properties (form fields of session/create) shown by ``session_extended``, and the
#: element each becomes; the deprecated multiplexer/echo fields the seed mentions.
_EXTENDED_PROPS = (
    ("multiplexer.numOutputStreams", "numOutputStreams"),
    ("multiplexer.switchType", "switchType"),
    ("multiplexer.switchTimeout", "switchTimeout"),
)


def session_extended(info: SessionInfo) -> str:
    """The ``POST session/<id>?extended=true`` reply (protocol.md, "Test-only endpoints").

    ``Session/session_id``, ``p2p/preference`` and, when set, ``numOutputStreams``,
    ``switchType``, ``switchTimeout``, ``echoSuppression/enabled`` (``True``/``False``).
    """
    parts = [
        f"<session_id>{_text(info.session_id)}</session_id>",
        f"<p2p><preference>{_text(info.p2p_preference)}</preference></p2p>",
    ]
    for field, element in _EXTENDED_PROPS:
        if field in info.properties:
            parts.append(f"<{element}>{_text(info.properties[field])}</{element}>")
    echo = info.properties.get("echoSuppression.enabled")
    if echo is not None:
        flag = "True" if echo.strip().lower() in ("true", "1", "enabled", "yes") else "False"
        parts.append(f"<echoSuppression><enabled>{flag}</enabled></echoSuppression>")
    return f"<Sessions><Session>{''.join(parts)}</Session></Sessions>"


def manifest(archive: ArchiveInfo) -> str:
    """The manifest reply, with the recorded indentation and trailing blank lines."""
    videos = "".join(
        f'    <video id="{_attr(v.id)}" length="{v.length_ms}" name="{_attr(v.name)}"/>\n'
        for v in archive.videos
    )
    events = "".join(
        f'    <event type="PLAY" id="{_attr(v.id)}" offset="{v.offset_ms}" data="" />\n'
        for v in archive.videos
    )
    return (
        f'<manifest version="0.1" archiveid="{_attr(archive.id)}" title="{_attr(archive.title)}">\n'
        f"    <resources>\n{videos}    </resources>\n"
        f"    <timeline>\n{events}    </timeline>\n"
        "</manifest>\n\n\n"
    )


def token_details(info: TokenInfo) -> str:
    """The ``token/validate`` reply for a good token."""
    perms = "".join(f"<{p}/>" for p in PERMISSIONS[info.role])
    expire = "" if info.expire_time is None else f"<expire_time>{info.expire_time}</expire_time>"
    return (
        f"<token><role>{info.role}</role><permissions>{perms}</permissions>"
        f"<session_id>{_text(info.session_id)}</session_id>{expire}"
        f"<connection_data>{_text(info.connection_data)}</connection_data></token>"
    )


def invalid_token(reason: str) -> str:
    """The ``token/validate`` reply for a bad token."""
    return f"<invalid>{_text(reason)}</invalid>"


def s3_error(code: str, message: str) -> str:
    """An S3-style storage error body."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{_text(code)}</Code><Message>{_text(message)}</Message></Error>"
    )


_OVERSIZED_TOTAL = 10 * 1024 * 1024
_PAD_LINE = b"<padding>" + b"x" * 1000 + b"</padding>\n"


def _oversized(body: bytes) -> Iterator[bytes]:
    """Stream ~10 MiB: the root element opened, padding elements, then the real content."""
    close = body.rindex(b"</")
    head, tail = body[:close], body[close:]
    yield head
    chunk = _PAD_LINE * 256
    for _ in range(_OVERSIZED_TOTAL // len(chunk)):
        yield chunk
    yield tail


def hostile_body(kind: str, body: str) -> tuple[Iterator[bytes], dict[str, str]]:
    """Return a hostile version of ``body`` (chunks) and extra headers, per ``Faults.hostile``."""
    raw = body.encode()
    headers: dict[str, str] = {}
    if kind == "entity_bomb":
        ents = '<!ENTITY lol0 "lol">' + "".join(
            f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
        )
        out = f'<?xml version="1.0"?>\n<!DOCTYPE lolz [{ents}]>\n'.encode()
        out += raw.replace(b"<session_id>", b"<session_id>&lol9;", 1).replace(
            b'title="', b'title="&lol9;', 1
        )
        return iter([out]), headers
    if kind == "external_entity":
        out = b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
        out += raw.replace(b"<session_id>", b"<session_id>&e;", 1).replace(
            b'title="', b'title="&e;', 1
        )
        return iter([out]), headers
    if kind == "oversized":
        return _oversized(raw), headers
    if kind == "truncated":
        return iter([raw[: len(raw) // 2]]), headers
    if kind == "bom":
        lead = b"" if raw.startswith(b"<?xml") else b"\n  \t"
        return iter([b"\xef\xbb\xbf" + lead + raw]), headers
    if kind == "gzip":
        headers["Content-Encoding"] = "gzip"
        return iter([gzip.compress(raw)]), headers
    raise ValueError(f"unknown hostile kind {kind!r}")
