"""Transport glue: the one place aiohttp's exceptions become ours, and bounded body reads.

Strategy: the Client awaits HTTP through aiohttp; whatever aiohttp or asyncio raise about the
transport goes through ``translate`` (with ``raise ... from exc``), and our auth headers are
blanked from anything that rides along as the cause. Storage bodies are lent to ``_transfer``
as a ``StorageResponse`` whose reads translate errors too.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from . import _protocol as proto
from ._errors import (
    ConnectError,
    InvalidArgumentError,
    RequestError,
    RequestTimeoutError,
    ResponseError,
)
from ._version import __version__

__all__ = [
    "StorageResponse",
    "base_url",
    "open_storage",
    "read_capped",
    "safe_url",
    "translate",
    "user_agent_header",
]

logger = logging.getLogger("aioopentok")
# aiohttp pauses reading a socket once 2x its read buffer is queued (default 64 KiB). For a
# gigabyte body that meant a pause/resume (two epoll syscalls) every few reads; 4 MiB measured
# 1.6 s instead of 2.0 s of client CPU per GiB (benchmarks/README.md) and bounds memory at 8 MiB.
STORAGE_READ_BUFSIZE = 4 * 1024 * 1024
_AUTH_HEADERS = (proto.PARTNER_AUTH, proto.TOKEN_AUTH)


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


def safe_url(url: str) -> str:
    """Return a URL without credentials or query string (signed URLs carry signatures there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _redact_request_info(exc: aiohttp.ClientResponseError) -> None:
    """Blank our auth headers (the partner secret, tokens) kept in ``exc.request_info``."""
    info = exc.request_info
    if not any(name in info.headers for name in _AUTH_HEADERS):
        return
    headers = CIMultiDict(info.headers)
    for name in _AUTH_HEADERS:
        if name in headers:
            headers[name] = "<redacted>"
    exc.request_info = aiohttp.RequestInfo(
        info.url, info.method, CIMultiDictProxy(headers), info.real_url
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
    return RequestError(f"{where}: {type(exc).__name__}: {exc}")


class StorageResponse:
    """A storage reply lent to ``_download``: status, headers, and a body read in chunks."""

    def __init__(self, response: aiohttp.ClientResponse, where: str) -> None:
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self._response = response
        self._where = where

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Yield the body as it arrives, without joining buffers; transport errors become ours."""
        content = self._response.content
        while True:
            try:
                chunk, end_of_http_chunk = await content.readchunk()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise translate(exc, self._where) from exc
            if chunk:
                yield chunk
            elif not end_of_http_chunk:  # (b"", True) only marks an HTTP chunk's end
                return

    async def read_capped(self, cap: int = 64 * 1024) -> bytes:
        """Read at most ``cap`` bytes of the body (for error replies)."""
        try:
            return await self._response.content.read(cap)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise translate(exc, self._where) from exc


async def read_capped(response: aiohttp.ClientResponse, cap: int, where: str) -> bytes:
    """Read a whole reply body, refusing (promptly, in bounded memory) more than ``cap`` bytes."""
    length = response.content_length
    if length is not None:
        if length > cap:
            raise ResponseError(
                f"{where}: reply of {length} bytes is over the {cap}-byte cap",
                status=response.status,
            )
        if "Content-Encoding" not in response.headers:  # framed and uncompressed: bounded
            return await response.read()
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.read(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise ResponseError(
                f"{where}: reply is over the {cap}-byte cap", status=response.status
            )
        chunks.append(chunk)
    return b"".join(chunks)


@asynccontextmanager
async def open_storage(
    http: aiohttp.ClientSession,
    url: str,
    *,
    start: int,
    end: int | None,
    timeout: aiohttp.ClientTimeout,
    user_agent: str,
    proxy: str | None,
    proxy_headers: Mapping[str, str] | None,
) -> AsyncIterator[StorageResponse]:
    """GET a signed storage URL from byte ``start`` (to ``end`` inclusive, if given).

    Always a GET: a signed storage URL is signed for one method (S3 refuses a HEAD on a URL
    signed for GET), and protocol.md fetches the FLV "with a plain GET". Only ``User-Agent``
    and ``Range`` go there, never an OpenTok auth header: the token must not travel to the
    storage host (protocol.md, Archives).
    """
    where = f"GET {safe_url(url)}"
    headers = {"User-Agent": user_agent}
    if start or end is not None:
        headers["Range"] = f"bytes={start}-{'' if end is None else end}"
    try:
        async with http.get(
            url,
            headers=headers,
            timeout=timeout,
            proxy=proxy,
            proxy_headers=proxy_headers,
            auto_decompress=False,  # FLV bytes as stored; Range offsets count stored bytes
            read_bufsize=STORAGE_READ_BUFSIZE,
        ) as response:
            logger.debug("%s -> %s", where, response.status)
            yield StorageResponse(response, where)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise translate(exc, where) from exc
