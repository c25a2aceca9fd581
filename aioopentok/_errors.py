"""The exception tree: one place, named for what the caller can do about each error.

::

    OpenTokException                      base of everything we raise (the seed's name)
    ├── InvalidArgumentError (ValueError) a caller mistake, raised before any I/O: fix the call
    ├── InvalidTokenError (ValueError)    decode_token/verify_token: malformed or forged token
    │   └── TokenExpiredError             the token was genuine but is past its expire_time
    ├── APIError                          the service answered, and said no
    │   ├── AuthError                     credentials or token rejected (code 403, HTTP 401/403)
    │   ├── NotFoundError                 unknown archive/video, or a non-moderator token (404)
    │   ├── RateLimitedError              HTTP 429 after the last retry: slow down
    │   └── ServerError                   5xx: the service is down; retry later
    ├── ResponseError                     a reply the protocol does not allow (not XML, no
    │                                     session_id, a URL body that is no URL, too large)
    ├── RequestError (OSError)            transport failure: reset, lost reply, DNS, proxy
    │   ├── ConnectError                  no connection was made: the request was not sent
    │   └── RequestTimeoutError (TimeoutError)
    └── DownloadError                     a video could not be fetched, verified or written
        └── DiskError (OSError)           the local disk refused (full, read-only, not writable)

Misuse of the client object itself (a call on a closed ``Client``) is a ``RuntimeError``, outside
this tree, as in httpx. No exception carries the API secret: messages and attributes hold only the
status, the service's code and message, and a short excerpt of the reply body.
"""

from __future__ import annotations

import errno
from pathlib import Path

__all__ = [
    "APIError",
    "AuthError",
    "ConnectError",
    "DiskError",
    "DownloadError",
    "InvalidArgumentError",
    "InvalidTokenError",
    "NotFoundError",
    "OpenTokException",
    "RateLimitedError",
    "RequestError",
    "RequestTimeoutError",
    "ResponseError",
    "ServerError",
    "TokenExpiredError",
    "disk_error",
]

_EXCERPT_CHARS = 200


def excerpt(body: bytes | str | None) -> str | None:
    """Return a short printable excerpt of a reply body, for error messages."""
    if body is None:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "..."


class OpenTokException(Exception):
    """Base class of every error this library raises about the service or its input.

    Attributes:
        status: the HTTP status of the reply, when there was one.
        code: the service's error code from an ``<Errors>`` body (``"403"``, ``"404"``...).
        message: the service's own message, when it gave one.
        body_excerpt: the first ~200 characters of the reply body, whitespace folded.
    """

    def __init__(
        self,
        description: str,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        body: bytes | str | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.status = status
        self.code = code
        self.message = message
        self.body_excerpt = excerpt(body)

    def __str__(self) -> str:
        parts = [self.description]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code is not None:
            parts.append(f"code {self.code}")
        if self.message:
            parts.append(repr(self.message))
        return parts[0] if len(parts) == 1 else f"{parts[0]} ({', '.join(parts[1:])})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keep exceptions picklable (multiprocessing, pytest-xdist) despite keyword-only args.
        return (_rebuild, (type(self), self.description, self.__dict__.copy()))


def _rebuild(
    cls: type[OpenTokException], description: str, state: dict[str, object]
) -> OpenTokException:
    exc = cls.__new__(cls)
    Exception.__init__(exc, description)
    exc.__dict__.update(state)
    return exc


class InvalidArgumentError(OpenTokException, ValueError):
    """A caller mistake, detected before any I/O; the message says what to fix."""


class InvalidTokenError(OpenTokException, ValueError):
    """A token that is malformed, signed with another secret, or for another API key."""


class TokenExpiredError(InvalidTokenError):
    """A genuine token whose ``expire_time`` has passed."""


class APIError(OpenTokException):
    """The service answered and refused the request.

    ``retry_after`` is the service's ``Retry-After`` in seconds, when it sent one (429, 503).
    """

    retry_after: float | None = None


class AuthError(APIError):
    """The API key/secret or the token was rejected: check the credentials and the role."""


class NotFoundError(APIError):
    """No such archive or video for this key, or the token is not a moderator's."""


class RateLimitedError(APIError):
    """HTTP 429 after the last retry. ``retry_after`` holds the service's hint, if any."""


class ServerError(APIError):
    """The service failed (HTTP 5xx). Safe to retry later for idempotent calls."""


class ResponseError(OpenTokException):
    """A reply the protocol does not allow: the service (or a proxy in between) misbehaved."""


class RequestError(OpenTokException, OSError):
    """The request did not get a reply: connection refused or reset, DNS, proxy, TLS."""


class ConnectError(RequestError):
    """No connection could be made (refused, DNS, proxy, TLS): the request was never sent."""


class RequestTimeoutError(RequestError, TimeoutError):
    """The request timed out (connect, read, or total, per ``aiohttp.ClientTimeout``)."""


class DownloadError(OpenTokException):
    """A video could not be downloaded and verified.

    After a transport or disk failure the ``.part`` file is kept, and the next call resumes it;
    when its bytes proved wrong (not FLV, a size other than announced) it is deleted.
    """


class DiskError(DownloadError, OSError):
    """The destination refused the write: disk full, read-only, or not writable."""


def disk_error(exc: OSError, path: Path | str, doing: str) -> DiskError:
    """Return a ``DiskError`` for a refused file operation (full, read-only, not writable)."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = f"disk full ({reason})"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = f"not writable ({reason})"
    err = DiskError(f"cannot {doing} {path}: {reason}")
    err.errno = exc.errno
    err.strerror = exc.strerror
    err.filename = str(path)
    return err
