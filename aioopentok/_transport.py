"""Transport glue: the one place aiohttp's exceptions become ours, and bounded body reads.

Strategy: the Client awaits HTTP through aiohttp; whatever aiohttp or asyncio raise about the
transport goes through ``translate`` (with ``raise ... from exc``), and our auth headers are
blanked from anything that rides along as the cause. Storage bodies are lent to ``_transfer``
as a ``StorageResponse`` whose reads translate errors too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from . import _protocol as proto
from ._errors import RequestError, RequestTimeoutError, ResponseError

__all__ = ["StorageResponse", "read_capped", "safe_url", "translate"]

_AUTH_HEADERS = (proto.PARTNER_AUTH, proto.TOKEN_AUTH)


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
    return RequestError(f"{where}: {type(exc).__name__}: {exc}")


class StorageResponse:
    """A storage reply lent to ``_download``: status, headers, and a body read in chunks."""

    def __init__(self, response: aiohttp.ClientResponse, where: str) -> None:
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self._response = response
        self._where = where

    async def iter_chunks(self, size: int) -> AsyncIterator[bytes]:
        """Yield the body in chunks of at most ``size`` bytes; transport errors become ours."""
        content = self._response.content
        while True:
            try:
                chunk = await content.read(size)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise translate(exc, self._where) from exc
            if not chunk:
                return
            yield chunk

    async def read_capped(self, cap: int = 64 * 1024) -> bytes:
        """Read at most ``cap`` bytes of the body (for error replies)."""
        try:
            return await self._response.content.read(cap)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise translate(exc, self._where) from exc


async def read_capped(response: aiohttp.ClientResponse, cap: int, where: str) -> bytes:
    """Read a whole reply body, refusing (promptly, in bounded memory) more than ``cap`` bytes."""
    if response.content_length is not None and response.content_length > cap:
        raise ResponseError(
            f"{where}: reply of {response.content_length} bytes is over the {cap}-byte cap",
            status=response.status,
        )
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
