"""The Client: the one place that awaits HTTP (``_transport`` maps aiohttp's errors to ours).

Strategy: every public coroutine is "build a Request (``_protocol``), ``_send`` it, parse the
Reply (``_protocol``)". ``_send`` owns the request path: the shared connection pool, timeouts,
retries of idempotent calls, the bounded read of replies, clock-skew learning and the debug log.
Downloads (``_download``) reach storage through ``_open_storage``, which lends them the same pool.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

import aiohttp

from . import _download
from . import _protocol as proto
from ._clock import ClockSkew
from ._errors import (
    ConnectError,
    InvalidArgumentError,
    NotFoundError,
    RequestError,
    RequestTimeoutError,
)
from ._models import Archive, P2PPreference, Role, Session, StitchResult
from ._retry import NO_RETRY, RetryPolicy
from ._tokens import TokenSigner
from ._transport import (
    StorageResponse,
    base_url,
    open_storage,
    read_capped,
    safe_url,
    translate,
    user_agent_header,
)
from ._xml import MAX_XML_BYTES

__all__ = [
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "PRODUCTION_URL",
    "STAGING_URL",
    "Client",
    "StorageResponse",
]

PRODUCTION_URL = "https://api.opentok.com/hl"
STAGING_URL = "https://staging.tokbox.com/hl"
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10)  # as the original Python SDK
# Downloads of gigabytes have no total cap, only a connect and a per-read limit.
DEFAULT_DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)

logger = logging.getLogger("aioopentok")


class Client:
    """An asyncio client of the OpenTok server API sharing one connection pool across calls.

    Args:
        api_key: the partner API key (int or str).
        api_secret: the partner secret; never shown in a repr, an error or a log line.
        api_url: the base URL every path is appended to: ``PRODUCTION_URL``, ``STAGING_URL``,
            an emulator's or a proxy's.
        session: an ``aiohttp.ClientSession`` to borrow; it is never closed by us. Without one
            the Client makes its own session and ``TCPConnector`` on first use.
        timeout: API calls' ``aiohttp.ClientTimeout`` (default: 10 s total).
        download_timeout: storage reads' timeout (default: no total, 10 s connect, 60 s read).
        retry: a ``RetryPolicy``, or an int number of retries (default 3; 0 disables). Only
            idempotent calls retry (connection errors, 429/502/503/504); an API call's timeout is
            not retried: its time budget is spent, and a retry would multiply it. Downloads
            resume after a stalled read instead (see ``download_video``).
        retry_create_session: retry ``create_session`` too. Off by default: when a reply is lost,
            a retried create can make a second session. A connection that was never made
            (``ConnectError``) is retried for every call: nothing was sent.
        limit, limit_per_host: the connector's connection limits (ignored with ``session``).
        proxy, proxy_headers, trust_env: as in aiohttp. ``proxy_headers`` (e.g. a
            ``Proxy-Authorization``) go on the CONNECT of https targets such as the production
            URL (aiohttp 3.14 deprecates ``BasicAuth``); ``trust_env`` reads HTTP(S)_PROXY.
        user_agent: a suffix appended to the ``User-Agent`` header.
        sleep: the coroutine used to wait between retries (tests inject a fake).
    """

    def __init__(
        self,
        api_key: int | str,
        api_secret: str,
        *,
        api_url: str = PRODUCTION_URL,
        session: aiohttp.ClientSession | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        download_timeout: aiohttp.ClientTimeout | None = None,
        retry: RetryPolicy | int | None = None,
        retry_create_session: bool = False,
        limit: int = 100,
        limit_per_host: int = 0,
        proxy: str | None = None,
        proxy_headers: Mapping[str, str] | None = None,
        trust_env: bool = False,
        user_agent: str | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._closed = False  # first, so __del__ works whatever fails below
        self._session: aiohttp.ClientSession | None = session
        self._owns_session = session is None
        self._signer = TokenSigner(api_key, api_secret)
        self._partner_auth = proto.Secret(f"{self._signer.api_key}:{api_secret}")
        self.api_url = base_url(api_url)
        self.timeout = timeout or DEFAULT_TIMEOUT
        self.download_timeout = download_timeout or DEFAULT_DOWNLOAD_TIMEOUT
        if retry is None or isinstance(retry, int):
            retry = RetryPolicy(retries=3 if retry is None else retry)
        self.retry = retry
        self._retry_create = retry_create_session
        if limit < 0 or limit_per_host < 0:
            raise InvalidArgumentError("connection limits must be >= 0 (0 means no limit)")
        self._limit = (limit, limit_per_host)
        self._proxy = proxy
        self._proxy_headers = dict(proxy_headers) if proxy_headers else None
        self._trust_env = trust_env
        self.user_agent = user_agent_header(user_agent)
        self._sleep = sleep
        self._jitter = random.random
        self._clock = ClockSkew()

    # --- lifecycle --------------------------------------------------------------------------

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        url = safe_url(self.api_url)
        return f"<aioopentok.Client api_key={self.api_key!r} api_url={url!r} {state}>"

    @property
    def api_key(self) -> str:
        """The API key as sent on the wire."""
        return self._signer.api_key

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    @property
    def http_session(self) -> aiohttp.ClientSession:
        """The ``aiohttp.ClientSession`` every call uses (created on first use if not borrowed)."""
        if self._closed:
            raise RuntimeError("this aioopentok.Client is closed; make a new one")
        if self._session is None:
            limit, per_host = self._limit
            connector = aiohttp.TCPConnector(limit=limit, limit_per_host=per_host)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=self._trust_env)
            # aiohttp (3.9.4+) resends a GET once, at once, after a reset; our RetryPolicy owns
            # retries, so that every retry is counted and backed off, and ``retry=0`` means one
            # try. A borrowed session keeps its owner's setting.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        return self._session

    async def close(self) -> None:
        """Close the connection pool we own (a borrowed session stays open). Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        session = getattr(self, "_session", None)
        if session is not None and self._owns_session and not session.closed:
            _warn(
                f"unclosed {self!r}: use 'async with' or 'await client.close()'",
                ResourceWarning,
                source=self,
            )

    @property
    def clock_offset(self) -> float:
        """Server clock minus local clock in seconds, learned from replies' ``Date`` headers."""
        return self._clock.offset

    # --- transport --------------------------------------------------------------------------

    async def _send(
        self,
        request: proto.Request,
        timeout: aiohttp.ClientTimeout | None,
        *,
        force_retry: bool = False,
    ) -> proto.Reply:
        """Send a request, retrying idempotent ones as the policy allows; return the last reply."""
        policy = self.retry if request.idempotent or force_retry else NO_RETRY
        attempt = lost = 0
        delay: float | None
        while True:
            try:
                reply = await self._send_once(request, timeout or self.timeout)
            except RequestTimeoutError:
                raise  # the caller's time budget is spent; retrying would multiply it
            except RequestError as exc:
                sent = not isinstance(exc, ConnectError)
                # Nothing was sent without a connection: even a POST is safe to try again.
                if attempt >= (policy if sent else self.retry).retries:
                    raise
                if sent:  # and its reply lost: the service may have acted on it
                    lost += 1
                delay = self.retry.delay(attempt, None, self._jitter()) or 0.0
                reason = str(exc)
            else:
                delay = None
                if reply.status in policy.statuses and attempt < policy.retries:
                    retry_after = proto.retry_after_of(reply.headers)
                    delay = policy.delay(attempt, retry_after, self._jitter())
                if delay is None:  # final: no retry left, or a pause longer than we wait
                    if lost:
                        return proto.Reply(reply.status, reply.headers, reply.body, lost)
                    return reply
                reason = f"HTTP {reply.status}"
            attempt += 1
            logger.info(
                "retry %d of %s %s in %.2f s after %s",
                attempt,
                request.method,
                request.path,
                delay,
                reason,
            )
            await self._sleep(delay)

    async def _send_once(
        self, request: proto.Request, timeout: aiohttp.ClientTimeout
    ) -> proto.Reply:
        url = self.api_url + request.path
        headers = {**request.headers, "User-Agent": self.user_agent}
        started = time.perf_counter()
        status: int | str = "error"
        try:
            async with self.http_session.request(
                request.method,
                url,
                data=request.body or None,
                headers=headers,
                timeout=timeout,
                proxy=self._proxy,
                proxy_headers=self._proxy_headers,
                allow_redirects=False,  # our auth headers must never follow a redirect
            ) as response:
                status = response.status
                body = await read_capped(
                    response, MAX_XML_BYTES, f"{request.method} {request.path}"
                )
                self._clock.observe(response.headers.get("Date"), time.time())
                return proto.Reply(status, response.headers, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise translate(exc, f"{request.method} {safe_url(url)}") from exc
        finally:
            if logger.isEnabledFor(logging.DEBUG):
                elapsed = (time.perf_counter() - started) * 1000
                logger.debug(
                    "%s %s -> %s in %.1f ms", request.method, request.path, status, elapsed
                )

    def _open_storage(
        self,
        url: str,
        *,
        start: int = 0,
        end: int | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> AbstractAsyncContextManager[StorageResponse]:
        """GET a signed storage URL through the shared pool, without OpenTok auth."""
        return open_storage(
            self.http_session,
            url,
            start=start,
            end=end,
            timeout=timeout or self.download_timeout,
            user_agent=self.user_agent,
            proxy=self._proxy,
            proxy_headers=self._proxy_headers,
        )

    # --- the API ----------------------------------------------------------------------------

    async def create_session(
        self,
        location: str | None = None,
        *,
        p2p_preference: P2PPreference | str | bool | None = None,
        properties: Mapping[str, str] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> Session:
        """Create a session.

        Args:
            location: an IP address hinting where the participants are (may be None).
            p2p_preference: ``"enabled"`` or ``"disabled"`` (the service's default).
            properties: extra form fields (the seed's session properties).
            timeout: this call's timeout.

        Raises:
            InvalidArgumentError: a bad location or property, before any I/O.
            AuthError: bad credentials. RequestError, ServerError, ResponseError: see the README.
        """
        request = proto.create_session_request(
            self._partner_auth, location, p2p_preference, properties, api_key=self.api_key
        )
        reply = await self._send(request, timeout, force_retry=self._retry_create)
        return proto.parse_session(reply)

    def generate_token(
        self,
        session_id: str,
        role: Role | str = Role.PUBLISHER,
        expire_time: float | datetime | timedelta | None = None,
        connection_data: str | None = None,
    ) -> str:
        """Return a token for ``session_id``; pure and synchronous (see ``generate_token``).

        Times are the service's: the creation time is the local clock corrected by
        ``clock_offset``, and an absolute ``expire_time`` (taken from the local clock) is
        shifted by the same offset, so "an hour from now" stays an hour at the service. A
        ``timedelta`` is a lifetime from the creation time.
        """
        return self._signer.generate(
            session_id, role, expire_time, connection_data, clock_offset=self._clock.offset
        )

    async def get_archive_manifest(
        self, archive_id: str, token: str, *, timeout: aiohttp.ClientTimeout | None = None
    ) -> Archive:
        """Return an archive's manifest. ``token`` must be a moderator token of its session.

        Raises:
            NotFoundError: no such archive, or the token is not a moderator's.
        """
        request = proto.manifest_request(archive_id, token)
        return proto.parse_manifest(await self._send(request, timeout))

    async def download_archive_url(
        self,
        archive_id: str,
        video_id: str,
        token: str,
        *,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> str:
        """Return the signed storage URL of one video (it expires, typically in an hour)."""
        request = proto.video_url_request(archive_id, video_id, token)
        return proto.parse_archive_url(await self._send(request, timeout))

    async def delete_archive(
        self, archive_id: str, token: str, *, timeout: aiohttp.ClientTimeout | None = None
    ) -> None:
        """Delete an archive, so that it no longer exists.

        A 404 on a retry after an earlier try was sent and its reply lost (a reset, a dropped
        connection) counts as success: that try most likely deleted it, and the archive is gone
        either way. A 404 on the first try, or after tries that never connected
        (``ConnectError``), raises ``NotFoundError``.
        """
        reply = await self._send(proto.delete_archive_request(archive_id, token), timeout)
        try:
            proto.parse_delete(reply)
        except NotFoundError:
            if not reply.lost_replies:
                raise
            logger.info("delete of %s: 404 after a lost reply, taken as deleted", archive_id)

    async def stitch_archive(
        self, archive_id: str, *, timeout: aiohttp.ClientTimeout | None = None
    ) -> StitchResult:
        """Ask for one MP4 of up to four streams: ready with its URL, or still processing."""
        request = proto.stitch_request(self._partner_auth, archive_id)
        return proto.parse_stitch(await self._send(request, timeout))

    # Downloads live in ``_download``; as methods they take this client as their first argument.
    download_video = _download.download_video
    download_archive = _download.download_archive
