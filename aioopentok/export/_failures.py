"""What a failure means for an export job: abort, stop, slow down, retry, or fail the archive.

Strategy: one pure table from the exception tree (``_errors``) to a ``Verdict``, checked in
order, so the job loop never branches on exception classes itself. Bad credentials abort the
whole job (every archive would fail the same way; marking them all failed would only hide the
cause). A local disk error stops it (``ENOSPC``: nothing more can be written; the journal stays
as it was). 429 and S3's ``SlowDown`` slow the whole job (``_pace``). Resets, timeouts and 5xx
are retried. Not-found and refused IDs fail that archive only. ``describe`` turns an error into
the text kept in the journal and the report: status, service or S3 code and message, never a
signed URL's query string or a token.
"""

from __future__ import annotations

import enum
import re

from .._errors import (
    APIError,
    AuthError,
    DiskError,
    DownloadError,
    InvalidArgumentError,
    NotFoundError,
    OpenTokException,
    RateLimitedError,
    RequestError,
    ResponseError,
    ServerError,
)

__all__ = ["Verdict", "classify", "describe", "retry_after_of"]

_STORAGE_SLOW_CODES = frozenset({"SlowDown", "RequestLimitExceeded", "TooManyRequests"})
_STORAGE_GONE_CODES = frozenset({"NoSuchKey", "NoSuchBucket"})
_HTTP_IN_TEXT = re.compile(r"\bHTTP (\d{3})\b")
_QUERY = re.compile(r"(https?://[^\s?'\"]*)\?[^\s'\"]*")
_TOKEN = re.compile(r"T1==[A-Za-z0-9+/=]+")


class Verdict(enum.Enum):
    """What the job does after a failure."""

    ABORT = "abort"  # the job cannot succeed (bad credentials): stop now, mark nothing failed
    STOP = "stop"  # the local disk refused (full, read-only): stop now, journal consistent
    SLOW_DOWN = "slow down"  # the service asks for less: pause the job, lower the concurrency
    RETRY = "retry"  # transient: try again after back-off, then record the failure
    FAIL = "fail"  # permanent for this archive: record it, go on with the others


def _storage_status(exc: OpenTokException) -> int | None:
    """Return the storage's HTTP status of a ``DownloadError``, from its attribute or text."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    match = _HTTP_IN_TEXT.search(str(exc))  # "gave up after 4 tries ...: storage answered HTTP 503"
    return int(match[1]) if match else None


def classify(exc: BaseException) -> Verdict:
    """Return what the job should do about ``exc``."""
    if isinstance(exc, AuthError):
        return Verdict.ABORT
    if isinstance(exc, DiskError):
        return Verdict.STOP
    if isinstance(exc, RateLimitedError):
        return Verdict.SLOW_DOWN
    if isinstance(exc, NotFoundError | InvalidArgumentError):
        return Verdict.FAIL
    if isinstance(exc, ServerError | RequestError | ResponseError):
        return Verdict.RETRY
    if isinstance(exc, DownloadError):
        code = getattr(exc, "code", None)
        status = _storage_status(exc)
        if code in _STORAGE_SLOW_CODES or status == 429 or "SlowDown" in str(exc):
            return Verdict.SLOW_DOWN
        if code in _STORAGE_GONE_CODES or status in (404, 410):
            return Verdict.FAIL
        return Verdict.RETRY  # 5xx, 403 after fresh URLs, a body that failed verification
    if isinstance(exc, APIError):
        return Verdict.FAIL  # another <Errors> code: the service said no to this archive
    if isinstance(exc, OSError) and not isinstance(exc, OpenTokException):
        return Verdict.STOP  # our own writes (manifest.json, directories)
    return Verdict.FAIL


def retry_after_of(exc: BaseException) -> float | None:
    """Return the ``Retry-After`` an error carries, if any."""
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None


def describe(exc: BaseException) -> str:
    """Return a one-line reason for the journal: class, status, code, message; no secrets."""
    text = f"{type(exc).__name__}: {exc}"
    code = getattr(exc, "code", None)
    if isinstance(exc, DownloadError) and code and str(code) not in text:
        text += f" [{code}]"
    text = _QUERY.sub(r"\1?...", text)
    text = _TOKEN.sub("T1==***", text)
    return " ".join(text.split())
