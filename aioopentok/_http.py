"""The transport seam: one HTTP request in, status + headers + body chunks out.

Strategy: every HTTP exchange of the Client (API calls and storage GETs alike) is an
``HTTPRequest`` handed to a ``Transport``, which answers an ``HTTPResponse`` whose body is an
async iterator of chunks. Retries, URL refreshes, the reply-size cap, decompression and error
mapping all sit above this seam, so they behave the same whatever sends the bytes: the default
aiohttp transport (``_transport``), ``aioopentok.testing.MockTransport``, or a user's own.
This module is pure: it imports neither aiohttp nor asyncio.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlsplit

from multidict import CIMultiDict, CIMultiDictProxy

if TYPE_CHECKING:
    from aiohttp import ClientTimeout

__all__ = ["HTTPRequest", "HTTPResponse", "Transport", "iterate_bytes", "safe_url"]


@dataclass(frozen=True, slots=True)
class HTTPRequest:
    """One request as a transport sends it.

    Attributes:
        method: ``GET`` or ``POST``.
        url: the absolute URL (a signed storage URL carries its signature in the query).
        headers: exactly the headers to send; a transport adds no credentials, cookies or
            default headers of its own (``Host``, ``Content-Length`` and the like excepted).
        body: the request body (empty for storage GETs).
        timeout: the ``aiohttp.ClientTimeout`` for this request, or None for the transport's.
        stream: True for storage bodies (large, read in chunks); False for API replies.
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    timeout: ClientTimeout | None = None
    stream: bool = False

    def __post_init__(self) -> None:
        # Header names are case-insensitive (protocol.md): so are lookups in a handler.
        object.__setattr__(self, "headers", CIMultiDictProxy(CIMultiDict(self.headers)))

    def __repr__(self) -> str:
        # Error trackers record locals by repr: a signed URL's query is a credential.
        return f"<HTTPRequest {self.method} {safe_url(self.url)}>"


async def _no_body() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


class HTTPResponse:
    """A reply: status, case-insensitive headers, and the body as an async iterator of chunks.

    The body is read once. ``aclose()`` releases the connection (a transport may drop it if the
    body was not read to the end); callers always call it, and it is idempotent.
    """

    __slots__ = ("_closed", "_read", "_stream", "headers", "status")

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        stream: AsyncIterable[bytes] | None = None,
    ) -> None:
        self.status = status
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(headers or {}))
        self._stream: AsyncIterator[bytes] = _no_body() if stream is None else aiter(stream)
        self._closed = False
        self._read = False

    def __repr__(self) -> str:
        return f"<HTTPResponse {self.status}>"

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._read:
            raise RuntimeError(
                "this HTTPResponse's body was read already: build a fresh one per request"
            )
        self._read = True
        return self._stream

    async def aclose(self) -> None:
        """Release the body's connection; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


@runtime_checkable
class Transport(Protocol):
    """What sends our HTTP: one coroutine, one request, one response.

    ``send`` returns once the status and headers are in; the body follows through the
    response's async iterator. It raises ``aioopentok.RequestError`` (``ConnectError`` when no
    connection was made, ``RequestTimeoutError`` on a timeout) when no reply came; any status,
    4xx and 5xx included, is a response, never an exception.
    """

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send one request; return its response with the body still to read."""
        ...


async def iterate_bytes(data: bytes, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """Yield ``data`` in chunks (for transports that hold a whole body in memory)."""
    view = memoryview(data)
    for offset in range(0, len(data), chunk_size):
        yield bytes(view[offset : offset + chunk_size])


def safe_url(url: str) -> str:
    """Return a URL without credentials or query string (signed URLs carry signatures there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
