"""The default transport, on aiohttp: the one module that calls aiohttp's request API.

Strategy: ``AiohttpTransport.send`` turns an ``HTTPRequest`` into one aiohttp request and the
reply into an ``HTTPResponse``; whatever aiohttp or asyncio raise about the transport goes
through ``translate`` (``raise ... from exc``), with our auth headers blanked from anything that
rides along as the cause. Requests go through a ``ClientSession`` of ours even when the caller
lends one: ours runs on the lent session's connector (the same pool) but with none of its
defaults, so an app's ``raise_for_status=True``, default headers (its own ``Authorization``),
cookies or ``auth=`` never change a retry or reach the storage host; and automatic
decompression is off, so reply caps are ours to enforce (``_inflate``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from ._errors import (
    ConnectError,
    InvalidArgumentError,
    RequestError,
    RequestTimeoutError,
    ResponseError,
)
from ._http import HTTPRequest, HTTPResponse, Transport, safe_url
from ._requests import PARTNER_AUTH, TOKEN_AUTH
from ._version import __version__

__all__ = [
    "AiohttpTransport",
    "base_url",
    "pick_transport",
    "translate",
    "user_agent_header",
]

logger = logging.getLogger("aioopentok")
# aiohttp pauses reading a socket once 2x its read buffer is queued (default 64 KiB). For a
# gigabyte body that meant a pause/resume (two epoll syscalls) every few reads; 4 MiB measured
# 1.6 s instead of 2.0 s of client CPU per GiB (benchmarks/README.md) and bounds memory at 8 MiB.
STORAGE_READ_BUFSIZE = 4 * 1024 * 1024
_AUTH_HEADERS = (PARTNER_AUTH, TOKEN_AUTH)


def base_url(api_url: object) -> str:
    """Return the API base URL ending in ``/``, so request paths are appended to it."""
    parts = urlsplit(api_url) if isinstance(api_url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgumentError(f"api_url must be an absolute http(s) URL, not {api_url!r}")
    return str(api_url).rstrip("/") + "/"


def user_agent_header(suffix: str | None) -> str:
    """Return our ``User-Agent``, with the caller's suffix (e.g. ``myapp/2.1``) appended."""
    agent = (
        f"aioopentok/{__version__} aiohttp/{aiohttp.__version__} "
        f"Python/{sys.version_info[0]}.{sys.version_info[1]}"
    )
    if not suffix:
        return agent
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in suffix):
        raise InvalidArgumentError("user_agent must not contain control characters")
    return f"{agent} {suffix}"


def _redact_request_info(exc: aiohttp.ClientResponseError) -> None:
    """Blank what ``exc.request_info`` keeps of our secrets: auth headers, signed queries."""
    info = exc.request_info
    if not any(name in info.headers for name in _AUTH_HEADERS) and not (
        info.url.query_string or info.real_url.query_string
    ):
        return
    headers = CIMultiDict(info.headers)
    for name in _AUTH_HEADERS:
        if name in headers:
            headers[name] = "<redacted>"
    exc.request_info = aiohttp.RequestInfo(  # a signed URL's signature is in its query
        info.url.with_query(None),
        info.method,
        CIMultiDictProxy(headers),
        info.real_url.with_query(None),
    )
    exc.args = (exc.request_info, *exc.args[1:])


def translate(exc: BaseException, where: str) -> RequestError | ResponseError:
    """Return our exception for an aiohttp/asyncio transport exception (``raise ... from exc``)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        _redact_request_info(exc)  # it becomes our error's __cause__: no secret may ride along
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError and aiohttp's timeout errors
        return RequestTimeoutError(f"{where}: timed out")
    if isinstance(exc, aiohttp.ClientResponseError):
        return ResponseError(f"{where}: malformed HTTP reply ({exc.message})", status=exc.status)
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, proxy, TLS: nothing sent
        return ConnectError(f"{where}: {type(exc).__name__}: {exc}")
    if isinstance(exc, ValueError):  # InvalidURL, an IDNA host: the text is the URL, query too
        return ResponseError(f"{where}: {type(exc).__name__}: the URL cannot be requested")
    return RequestError(f"{where}: {type(exc).__name__}: {exc}")


class _Body:
    """An aiohttp reply body as an async iterator; ``aclose`` frees the connection.

    A class, not an async generator: a generator never started would never run its
    ``finally``, and the connection of a reply whose body nobody read would leak.
    """

    def __init__(self, response: aiohttp.ClientResponse, where: str) -> None:
        self._response = response
        self._where = where
        self._done = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        content = self._response.content
        while True:
            try:
                chunk, end_of_http_chunk = await content.readchunk()
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._done = True
                self._response.close()
                raise translate(exc, self._where) from exc
            if chunk:
                return chunk
            if not end_of_http_chunk:  # (b"", True) only marks an HTTP chunk's end
                self._done = True
                self._response.release()  # read to the end: the connection goes back
                raise StopAsyncIteration

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            self._response.close()  # body unread: the connection cannot be reused


class AiohttpTransport:
    """The default ``Transport``: one aiohttp connection pool, ours or borrowed.

    Args:
        session: an ``aiohttp.ClientSession`` to borrow: its connector (pool) is shared, its
            defaults are not, and it is never closed by us.
        limit, limit_per_host: the pool's limits when we make our own.
        proxy, proxy_headers, trust_env: as in aiohttp.
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        limit: int = 100,
        limit_per_host: int = 0,
        proxy: str | None = None,
        proxy_headers: Mapping[str, str] | None = None,
        trust_env: bool = False,
    ) -> None:
        if limit < 0 or limit_per_host < 0:
            raise InvalidArgumentError("connection limits must be >= 0 (0 means no limit)")
        self._borrowed = session
        self._limits = (limit, limit_per_host)
        self._proxy = proxy
        self._proxy_headers = dict(proxy_headers) if proxy_headers else None
        self._trust_env = trust_env
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @property
    def session(self) -> aiohttp.ClientSession:
        """The ``ClientSession`` that owns the pool: the borrowed one, or ours."""
        if self._borrowed is not None:
            return self._borrowed
        return self._own_session()

    def _own_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this aioopentok transport is closed")
        if self._session is None:
            if self._borrowed is not None:
                if self._borrowed.closed:
                    raise RuntimeError("the aiohttp.ClientSession lent to aioopentok is closed")
                connector = self._borrowed.connector
                owner = False
            else:
                limit, per_host = self._limits
                connector = aiohttp.TCPConnector(limit=limit, limit_per_host=per_host)
                owner = True
            self._session = aiohttp.ClientSession(
                connector=connector,
                connector_owner=owner,
                cookie_jar=aiohttp.DummyCookieJar(),  # no cookies in, none out
                auto_decompress=False,  # our cap bounds the inflating (_inflate)
                trust_env=self._trust_env,
            )
            # aiohttp (3.9.4+) resends a GET once, at once, after a reset; our RetryPolicy owns
            # retries, so that every retry is counted and backed off, and ``retry=0`` means one
            # try.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        return self._session

    @property
    def connector(self) -> aiohttp.BaseConnector | None:
        """The connection pool every request goes through."""
        return self._own_session().connector

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send one request; the body is read through the returned response."""
        where = f"{request.method} {safe_url(request.url)}"
        session = self._own_session()
        try:
            response = await session.request(
                request.method,
                request.url,
                data=request.body or None,
                headers=dict(request.headers),
                timeout=request.timeout or session.timeout,
                proxy=self._proxy,
                proxy_headers=self._proxy_headers,
                allow_redirects=False,  # our auth headers must never follow a redirect
                raise_for_status=False,
                read_bufsize=STORAGE_READ_BUFSIZE if request.stream else None,
            )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise translate(exc, where) from None if isinstance(exc, ValueError) else exc
        if request.stream:  # API calls get their one debug line from _sending, with the time
            logger.debug("%s -> %s", where, response.status)
        return HTTPResponse(response.status, response.headers, _Body(response, where))

    async def aclose(self) -> None:
        """Close our session; a borrowed session's pool stays open. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is None:
            return
        if self._borrowed is not None:
            session.detach()  # the pool is the lender's
        else:
            await session.close()

    def detach_borrowed(self) -> None:
        """Drop our session on a borrowed pool without I/O (for a Client that was not closed)."""
        if self._borrowed is not None and self._session is not None:
            self._session.detach()

    @property
    def owns_pool(self) -> bool:
        """Whether the pool is ours to close (not borrowed) and still open."""
        return self._borrowed is None and self._session is not None and not self._session.closed


def pick_transport(
    transport: Transport | None,
    session: aiohttp.ClientSession | None,
    limit: int,
    limit_per_host: int,
    proxy: str | None,
    proxy_headers: Mapping[str, str] | None,
    trust_env: bool,
) -> tuple[Transport, AiohttpTransport | None]:
    """Return the Client's transport: the caller's, or ours on aiohttp (also returned)."""
    if transport is None:
        ours = AiohttpTransport(
            session=session,
            limit=limit,
            limit_per_host=limit_per_host,
            proxy=proxy,
            proxy_headers=proxy_headers,
            trust_env=trust_env,
        )
        return ours, ours
    if session is not None or proxy is not None or proxy_headers or trust_env:
        raise InvalidArgumentError(
            "transport= sends the requests itself: pass it without session= or proxy options"
        )
    if not isinstance(transport, Transport):
        raise InvalidArgumentError(
            f"transport must have an async send(request) method, not {transport!r}"
        )
    return transport, None
