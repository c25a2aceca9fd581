"""The request path of API calls: retries, the bounded read of replies, the clock, the log.

Strategy: ``Sender.send`` is the one loop every API call goes through: it sends a ``Request``
(``_requests``) through the transport (``_http.Transport``), reads the reply under the size
cap, inflating gzip/deflate under it too (``_inflate``), retries what the policy allows with
jittered back-off and an injectable sleep, learns the clock skew from ``Date`` and logs
without secrets. ``open_storage`` is the storage GET, with only the headers we set.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping

import aiohttp

from . import _replies as rep
from . import _requests as req
from ._clock import ClockSkew
from ._errors import ConnectError, RequestError, RequestTimeoutError
from ._http import HTTPRequest, HTTPResponse, Transport
from ._inflate import ACCEPT_ENCODING, BoundedBody
from ._retry import NO_RETRY, RetryPolicy
from ._xml import MAX_XML_BYTES

__all__ = ["Sender", "StorageLink"]

logger = logging.getLogger("aioopentok")
# A proxy's "bad gateway" / "gateway timeout": the request may have reached the service and
# its reply been lost on the way back, as after a reset (delete_archive reads this).
_GATEWAY_LOST = frozenset({502, 504})


class Sender:
    """Sends API requests and storage GETs through one transport, as the Client configured."""

    def __init__(
        self,
        transport: Transport,
        api_url: str,
        *,
        timeout: aiohttp.ClientTimeout,
        download_timeout: aiohttp.ClientTimeout,
        retry: RetryPolicy,
        user_agent: str,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.transport = transport
        self.api_url = api_url
        self.timeout = timeout
        self.download_timeout = download_timeout
        self.retry = retry
        self.user_agent = user_agent
        self.sleep = sleep
        self.jitter: Callable[[], float] = random.random
        self.clock = ClockSkew()

    def with_retry(self, retry: RetryPolicy) -> Sender:
        """Return a sender like this one (same transport, clock, sleep) with another policy."""
        other = copy.copy(self)
        other.retry = retry
        return other

    async def send(
        self,
        request: req.Request,
        timeout: aiohttp.ClientTimeout | None,
        *,
        force_retry: bool = False,
    ) -> rep.Reply:
        """Send a request, retrying idempotent ones as the policy allows; return the last reply."""
        policy = self.retry if request.idempotent or force_retry else NO_RETRY
        attempt = lost = 0
        delay: float | None
        while True:
            try:
                reply = await self.send_once(request, timeout or self.timeout)
            except RequestTimeoutError:
                raise  # the caller's time budget is spent; retrying would multiply it
            except RequestError as exc:
                sent = not isinstance(exc, ConnectError)
                # Nothing was sent without a connection: even a POST is safe to try again.
                if attempt >= (policy if sent else self.retry).retries:
                    raise
                if sent:  # and its reply lost: the service may have acted on it
                    lost += 1
                delay = self.retry.delay(attempt, None, self.jitter()) or 0.0
                reason = str(exc)
            else:
                delay = None
                if reply.status in policy.statuses and attempt < policy.retries:
                    retry_after = rep.retry_after_of(reply.headers)
                    delay = policy.delay(attempt, retry_after, self.jitter())
                if delay is None:  # final: no retry left, or a pause longer than we wait
                    if lost:
                        return rep.Reply(reply.status, reply.headers, reply.body, lost)
                    return reply
                reason = f"HTTP {reply.status}"
                if reply.status in _GATEWAY_LOST:  # a gateway's: the service may have acted
                    lost += 1
            attempt += 1
            logger.info(
                "retry %d of %s %s in %.2f s after %s",
                attempt,
                request.method,
                request.path,
                delay,
                reason,
            )
            await self.sleep(delay)

    async def send_once(self, request: req.Request, timeout: aiohttp.ClientTimeout) -> rep.Reply:
        headers = {
            **request.headers,
            "User-Agent": self.user_agent,
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        where = f"{request.method} {request.path}"
        started = time.perf_counter()
        status: int | str = "error"
        try:
            response = await self.transport.send(
                HTTPRequest(
                    request.method, self.api_url + request.path, headers, request.body, timeout
                )
            )
            try:
                status = response.status
                body = BoundedBody(
                    response.headers.get("Content-Encoding"), MAX_XML_BYTES, where, status
                )
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and "Content-Encoding" not in response.headers:
                    body.check_length(int(length))  # refuse at once, before reading any of it
                async for chunk in response:
                    body.feed(chunk)
                data = body.finish()
            finally:
                await response.aclose()
            self.clock.observe(response.headers.get("Date"), time.time())
            return rep.Reply(status, response.headers, data)
        finally:
            if logger.isEnabledFor(logging.DEBUG):
                elapsed = (time.perf_counter() - started) * 1000
                logger.debug("%s -> %s in %.1f ms", where, status, elapsed)

    async def open_storage(
        self, url: str, headers: Mapping[str, str], timeout: aiohttp.ClientTimeout | None
    ) -> HTTPResponse:
        """GET a signed storage URL through the transport: only our headers, no OpenTok auth.

        Always a GET: a signed storage URL is signed for one method (S3 refuses a HEAD on a URL
        signed for GET), and protocol.md fetches the FLV "with a plain GET" and no OpenTok auth
        header: the token must not travel to the storage host (protocol.md, Archives).
        """
        sent = {
            **headers,
            "User-Agent": self.user_agent,
            "Accept-Encoding": "identity",  # FLV bytes as stored; Range offsets count them
        }
        return await self.transport.send(
            HTTPRequest("GET", url, sent, timeout=timeout or self.download_timeout, stream=True)
        )


class StorageLink:
    """What a download may do through the Client: nothing more (see ``download.StorageLink``)."""

    def __init__(
        self,
        sender: Sender,
        slots: asyncio.Semaphore,
        sign: Callable[[str, str, str], Awaitable[str]],
    ) -> None:
        self.retry = sender.retry
        self.slots = slots
        self._sender = sender
        self._sign = sign

    async def sign(self, archive_id: str, video_id: str, token: str) -> str:
        return await self._sign(archive_id, video_id, token)

    async def open(
        self, url: str, headers: Mapping[str, str], timeout: aiohttp.ClientTimeout | None
    ) -> HTTPResponse:
        return await self._sender.open_storage(url, headers, timeout)

    async def sleep(self, seconds: float) -> None:
        await self._sender.sleep(seconds)

    def jitter(self) -> float:
        return self._sender.jitter()
