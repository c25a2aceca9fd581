"""Sans-I/O: what one storage reply means for a download. Status, headers, body in; a verdict out.

Strategy: storage is S3 (protocol.md, Archives: the signed URL is an S3 URL). S3 reports errors
as a small XML document, ``<Error><Code>AccessDenied</Code><Message>Request has expired</Message>
...</Error>``, and this module reads it (bounded, through ``_xml``'s defused parser; HTML or
empty bodies are tolerated) so every failure keeps storage's own reason. ``judge`` decides, and
the download loops only act on its verdict:

- ``STREAM``: the reply carries the bytes asked for (``whole`` when a 200 ignored the Range);
- ``REFRESH``: the signed URL was refused (401/403: expired): ask the API for a fresh one;
- ``RETRY``: transient (5xx, 429, ``SlowDown``, S3's 400 ``RequestTimeout``): back off, resume;
- ``RESTART``: the file changed on storage (size or ETag), or a 206 of another range;
- ``COMPLETE``: a 416 proving the bytes we hold are all there is;
- ``FAIL``: permanent (``NoSuchKey``, other 4xx): give up with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from ._errors import ResponseError
from ._replies import retry_after_of
from ._xml import first_by_name, local_name, looks_like_xml, parse_xml

__all__ = [
    "ERROR_BODY_CAP",
    "Action",
    "Asked",
    "Verdict",
    "content_range",
    "judge",
    "parse_s3_error",
    "plain_md5_etag",
]

#: Bytes of an error body read for its reason: S3's are a few hundred bytes.
ERROR_BODY_CAP = 64 * 1024
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_RETRY_CODES = frozenset(
    {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling"}
)
_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RE = re.compile(r"bytes \*/(\d+)")
_MD5_RE = re.compile(r'"?([0-9a-fA-F]{32})"?')


class Action(Enum):
    """What the download does next."""

    STREAM = "stream"
    REFRESH = "refresh"
    RETRY = "retry"
    RESTART = "restart"
    COMPLETE = "complete"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Asked:
    """The request a reply answers, and what earlier replies told about the file.

    ``end`` is inclusive (None: to the end of the file); ``total`` and ``etag`` are what
    storage said before (None: not known yet).
    """

    start: int = 0
    end: int | None = None
    total: int | None = None
    etag: str | None = None

    @property
    def ranged(self) -> bool:
        """Whether the request carries a ``Range`` header."""
        return self.start > 0 or self.end is not None

    def range_header(self) -> dict[str, str]:
        """Return the ``Range`` header for this request (none for the whole file)."""
        if not self.ranged:
            return {}
        return {"Range": f"bytes={self.start}-{'' if self.end is None else self.end}"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The meaning of one reply.

    Attributes:
        action: what to do (see the module docstring).
        reason: why, for logs and errors; never a URL's query string.
        total: the file's size, when the reply told it.
        etag: the reply's ``ETag``, when it has one.
        whole: a 200 to a ranged request: the body is the whole file, from byte 0.
        retry_after: storage's ``Retry-After`` in seconds, if any.
        status, code, message: HTTP status, S3's error code and message, for errors.
    """

    action: Action
    reason: str = ""
    total: int | None = None
    etag: str | None = None
    whole: bool = False
    retry_after: float | None = None
    status: int | None = None
    code: str | None = None
    message: str | None = None


def parse_s3_error(body: bytes) -> tuple[str | None, str | None]:
    """Return S3's ``(Code, Message)`` from an error body; ``(None, None)`` if it has none.

    Tolerant by design: storage behind a CDN or a proxy answers HTML or nothing at all, and a
    reply we cannot read must not hide the status it came with.
    """
    if not body or len(body) > ERROR_BODY_CAP or not looks_like_xml(body):
        return None, None
    try:
        root = parse_xml(body)
    except ResponseError:
        return None, None
    if local_name(root) != "error":
        return None, None
    index = first_by_name(root)
    code = index.get("code")
    message = index.get("message")
    return (
        (code.text or "").strip() or None if code is not None else None,
        (message.text or "").strip() or None if message is not None else None,
    )


def content_range(headers: Mapping[str, str]) -> tuple[int, int, int | None] | None:
    """Return ``(first, last, total)`` of a 206's ``Content-Range`` (total None for ``*``)."""
    match = _CONTENT_RANGE_RE.fullmatch(headers.get("Content-Range", "").strip())
    if match is None or int(match.group(2)) < int(match.group(1)):
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), int(match.group(2)), total


def plain_md5_etag(etag: str | None) -> str | None:
    """Return the lowercase MD5 an ETag is, or None (multipart ETags ``"...-N"`` are not)."""
    if etag is None:
        return None
    match = _MD5_RE.fullmatch(etag.strip().removeprefix("W/"))
    return match.group(1).lower() if match else None


def _changed(asked: Asked, total: int | None, etag: str | None) -> str | None:
    if asked.total is not None and total is not None and total != asked.total:
        return f"the file changed size on storage ({asked.total} -> {total} bytes)"
    if asked.etag is not None and etag is not None and etag != asked.etag:
        return "the file changed on storage (another ETag)"
    return None


def _judge_success(status: int, headers: Mapping[str, str], asked: Asked) -> Verdict:
    etag = headers.get("ETag")
    if status == 206:
        parsed = content_range(headers)
        if parsed is None:
            return Verdict(Action.RESTART, "storage sent a 206 without a usable Content-Range")
        first, last, total = parsed
        if first != asked.start:
            return Verdict(Action.RESTART, f"storage sent bytes from {first}, not {asked.start}")
        wanted_last = asked.end
        if total is not None and (wanted_last is None or wanted_last >= total):
            wanted_last = total - 1
        if wanted_last is not None and last != wanted_last:
            return Verdict(Action.RESTART, f"storage sent bytes to {last}, not {wanted_last}")
        changed = _changed(asked, total, etag)
        if changed:
            return Verdict(Action.RESTART, changed, total=total, etag=etag)
        return Verdict(Action.STREAM, total=total, etag=etag, status=status)
    length = headers.get("Content-Length", "")
    total = int(length) if length.isdigit() else None
    changed = _changed(asked, total, etag)
    if changed:
        return Verdict(Action.RESTART, changed, total=total, etag=etag)
    return Verdict(Action.STREAM, total=total, etag=etag, whole=asked.ranged, status=status)


def judge(status: int, headers: Mapping[str, str], body: bytes, asked: Asked) -> Verdict:
    """Return what a storage reply to ``asked`` means.

    ``body`` is the (capped) body for replies other than 200/206; for those it is unused.
    """
    if status in (200, 206):
        return _judge_success(status, headers, asked)
    code, message = parse_s3_error(body)
    detail = {"status": status, "code": code, "message": message}
    said = f"storage answered HTTP {status}" + (f" {code}" if code else "")
    if status == 416 and asked.start > 0:
        match = _UNSATISFIED_RE.fullmatch(headers.get("Content-Range", "").strip())
        size = int(match.group(1)) if match else None
        if size is not None and asked.total is not None and size != asked.total:
            return Verdict(Action.RESTART, f"the file changed size on storage ({asked.total} -> "
                           f"{size} bytes)")  # fmt: skip
        if size == asked.start:
            return Verdict(Action.COMPLETE, total=asked.start)
        return Verdict(Action.RESTART, f"storage cannot serve bytes from {asked.start} (416)")
    if status in (401, 403):
        return Verdict(Action.REFRESH, said, **detail)  # type: ignore[arg-type]
    if status in _RETRY_STATUSES or status >= 500 or code in _RETRY_CODES:
        return Verdict(
            Action.RETRY,
            said,
            retry_after=retry_after_of(headers),
            **detail,  # type: ignore[arg-type]
        )
    return Verdict(Action.FAIL, said, **detail)  # type: ignore[arg-type]
