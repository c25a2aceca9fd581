"""The Client: API calls over one transport, and the narrow link downloads reach storage by.

Strategy: every public coroutine is "build a Request (``_requests``), send it, parse the
Reply (``_replies``)". ``_sending.Sender`` owns the request path (timeouts, retries of
idempotent calls, the bounded and bounded-inflating read of replies, clock skew, the debug
log); every byte goes through ``self.transport`` (``_http.Transport``; by default aiohttp, see
``_transport``), API calls and storage GETs alike. Downloads (``download/``) and exports
(``export/``) get a ``StorageLink`` (send a storage request, sign a fresh URL, sleep, the retry
policy, the Client-wide storage-connection budget) or the Client's public methods; they never
import this module.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import warnings
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

import aiohttp

from . import _replies as rep
from . import _requests as req
from . import download as dl
from . import export as ex
from ._errors import (
    NotFoundError,
)
from ._http import Transport, safe_url
from ._models import Archive, P2PPreference, Role, Session, StitchResult
from ._retry import RetryPolicy, as_policy
from ._sending import Sender, StorageLink
from ._tokens import TokenSigner
from ._transport import base_url, pick_transport, user_agent_header

__all__ = [
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "PRODUCTION_URL",
    "STAGING_URL",
    "Client",
]

PRODUCTION_URL = "https://api.opentok.com/hl"
STAGING_URL = "https://staging.tokbox.com/hl"
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10)  # as the original Python SDK
# Downloads of gigabytes have no total cap, only a connect and a per-read limit.
DEFAULT_DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
#: Storage connections open at once across all downloads of one Client.
DEFAULT_MAX_STORAGE_CONNECTIONS = 32

logger = logging.getLogger("aioopentok")


class Client:
    """An asyncio client of the OpenTok server API sharing one connection pool across calls.

    Args:
        api_key: the partner API key (int or str).
        api_secret: the partner secret; never shown in a repr, an error or a log line.
        api_url: the base URL paths are appended to (``PRODUCTION_URL``, an emulator's...).
        session: an ``aiohttp.ClientSession`` to borrow: its pool is shared, never closed by
            us; none of its defaults (``raise_for_status``, headers, cookies, ``auth``) apply.
        transport: what sends the HTTP (an ``aioopentok.Transport``, such as
            ``aioopentok.testing.MockTransport``); not with ``session`` or the pool options.
        timeout: API calls' ``aiohttp.ClientTimeout`` (default: 10 s total).
        download_timeout: storage reads' timeout (default: no total, 10 s connect, 60 s read).
        retry: a ``RetryPolicy``, or an int number of retries (default 3; 0 disables). Only
            idempotent calls retry (connection errors, 429/502/503/504), never after a timeout:
            its budget is spent. Downloads resume after a stalled read instead.
        retry_create_session: retry ``create_session`` too. Off by default: when a reply is lost,
            a retried create can make a second session. A connection that was never made
            (``ConnectError``) is retried for every call: nothing was sent.
        connections, part_size: downloads' defaults (8 ranged connections of 8 MiB parts).
        max_storage_connections: storage connections open at once, all downloads (32).
        limit, limit_per_host: the connector's connection limits (ignored with ``session``).
        proxy, proxy_headers, trust_env: as in aiohttp (``proxy_headers`` go on the CONNECT).
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
        transport: Transport | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        download_timeout: aiohttp.ClientTimeout | None = None,
        retry: RetryPolicy | int | None = None,
        retry_create_session: bool = False,
        connections: int = dl.DEFAULT_CONNECTIONS,
        part_size: int = dl.DEFAULT_PART_SIZE,
        max_storage_connections: int = DEFAULT_MAX_STORAGE_CONNECTIONS,
        limit: int = 100,
        limit_per_host: int = 0,
        proxy: str | None = None,
        proxy_headers: Mapping[str, str] | None = None,
        trust_env: bool = False,
        user_agent: str | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._closed = False  # first, so __del__ works whatever fails below
        self._parent: Client | None = None  # set on a with_retry view
        self._signer = TokenSigner(api_key, api_secret)
        self._partner_auth = req.Secret(f"{self._signer.api_key}:{api_secret}")
        self.api_url = base_url(api_url)
        self.transport, self._aiohttp = pick_transport(
            transport, session, limit, limit_per_host, proxy, proxy_headers, trust_env
        )
        self.retry = as_policy(retry)
        self._retry_create = retry_create_session
        self._download_defaults = dl.check_segmenting(connections, part_size)
        self.max_storage_connections = dl.check_budget(max_storage_connections)
        self._storage_slots = asyncio.Semaphore(max_storage_connections)
        self.timeout = timeout or DEFAULT_TIMEOUT
        self.download_timeout = download_timeout or DEFAULT_DOWNLOAD_TIMEOUT
        self.user_agent = user_agent_header(user_agent)
        self._sender = Sender(
            self.transport,
            self.api_url,
            timeout=self.timeout,
            download_timeout=self.download_timeout,
            retry=self.retry,
            user_agent=self.user_agent,
            sleep=sleep,
        )
        # download_archive_url is looked up at each call: a test may replace it.
        self._link = StorageLink(
            self._sender, self._storage_slots, lambda *ids: self.download_archive_url(*ids)
        )

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
        """The ``aiohttp.ClientSession`` whose pool every call uses (borrowed, or ours)."""
        self._check_open()
        if self._aiohttp is None:
            raise RuntimeError("this Client sends through a custom transport, not aiohttp")
        return self._aiohttp.session

    def _check_open(self) -> None:
        if self._closed or (self._parent is not None and self._parent._closed):
            raise RuntimeError("this aioopentok.Client is closed; make a new one")

    def with_retry(self, retry: RetryPolicy | int) -> Client:
        """Return a view of this client with another retry policy: same pool, clock, budget.

        Closing the view closes nothing; closing this client closes the view too.
        """
        view = copy.copy(self)
        view.retry = as_policy(retry)
        view._sender = self._sender.with_retry(view.retry)
        view._link = StorageLink(
            view._sender, self._storage_slots, lambda *ids: view.download_archive_url(*ids)
        )
        view._parent = self._parent or self  # a view of a view closes with the root
        return view

    async def close(self) -> None:
        """Close the connection pool we own (a borrowed session stays open). Idempotent."""
        self._closed = True
        if self._parent is not None:
            return  # a view: the pool is its parent's
        close = getattr(self.transport, "aclose", None)
        if close is not None:
            await close()

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
        transport = getattr(self, "_aiohttp", None)
        if transport is None or getattr(self, "_closed", True) or getattr(self, "_parent", None):
            return
        if transport.owns_pool:
            _warn(
                f"unclosed {self!r}: use 'async with' or 'await client.close()'",
                ResourceWarning,
                source=self,
            )
        else:
            transport.detach_borrowed()  # the pool is the lender's: nothing of ours to close

    @property
    def clock_offset(self) -> float:
        """Server clock minus local clock in seconds, learned from replies' ``Date`` headers."""
        return self._sender.clock.offset

    @property
    def _jitter(self) -> Callable[[], float]:
        return self._sender.jitter

    @_jitter.setter
    def _jitter(self, draw: Callable[[], float]) -> None:  # tests pin the jitter
        self._sender.jitter = draw

    async def _send(
        self,
        request: req.Request,
        timeout: aiohttp.ClientTimeout | None,
        *,
        force_retry: bool = False,
    ) -> rep.Reply:
        self._check_open()
        return await self._sender.send(request, timeout, force_retry=force_retry)

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
        request = req.create_session_request(
            self._partner_auth, location, p2p_preference, properties, api_key=self.api_key
        )
        reply = await self._send(request, timeout, force_retry=self._retry_create)
        return rep.parse_session(reply)

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
            session_id, role, expire_time, connection_data, clock_offset=self._sender.clock.offset
        )

    async def get_archive_manifest(
        self, archive_id: str, token: str, *, timeout: aiohttp.ClientTimeout | None = None
    ) -> Archive:
        """Return an archive's manifest. ``token`` must be a moderator token of its session.

        Raises:
            NotFoundError: no such archive, or the token is not a moderator's.
        """
        request = req.manifest_request(archive_id, token)
        return rep.parse_manifest(await self._send(request, timeout))

    async def download_archive_url(
        self,
        archive_id: str,
        video_id: str,
        token: str,
        *,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> str:
        """Return the signed storage URL of one video (it expires, typically in an hour)."""
        request = req.video_url_request(archive_id, video_id, token)
        return rep.parse_archive_url(await self._send(request, timeout))

    async def delete_archive(
        self, archive_id: str, token: str, *, timeout: aiohttp.ClientTimeout | None = None
    ) -> None:
        """Delete an archive, so that it no longer exists.

        A 404 on a retry after an earlier try was sent and its reply lost (a reset, a dropped
        connection) counts as success: that try most likely deleted it, and the archive is gone
        either way. A 404 on the first try, or after tries that never connected
        (``ConnectError``), raises ``NotFoundError``.
        """
        reply = await self._send(req.delete_archive_request(archive_id, token), timeout)
        try:
            rep.parse_delete(reply)
        except NotFoundError:
            if not reply.lost_replies:
                raise
            logger.info("delete of %s: 404 after a lost reply, taken as deleted", archive_id)

    async def stitch_archive(
        self, archive_id: str, *, timeout: aiohttp.ClientTimeout | None = None
    ) -> StitchResult:
        """Ask for one MP4 of up to four streams: ready with its URL, or still processing."""
        request = req.stitch_request(self._partner_auth, archive_id)
        return rep.parse_stitch(await self._send(request, timeout))

    # --- downloads (download/) ---------------------------------------------------------------

    async def download_video(
        self,
        archive_id: str,
        video_id: str,
        token: str,
        dest: str | Path,
        *,
        connections: int | None = None,
        part_size: int | None = None,
        chunk_size: int = dl.DEFAULT_CHUNK_SIZE,
        progress: dl.ProgressCallback | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        checksum: bool = True,
    ) -> dl.DownloadResult:
        """Stream one video to ``dest`` (a file path, or an existing directory: ``<video_id>.flv``).

        Bytes go to ``<final>.part``, renamed once complete, verified (size, FLV header) and
        fsynced. A video larger than ``part_size`` comes over up to ``connections`` ranged
        requests at once (within ``max_storage_connections``); ``.part.ranges`` keeps what is
        on disk, so a later call fetches only the rest. A final file of the right size is
        skipped. Failures raise; a ``.part`` stays only with bytes a resume can use.

        Args:
            connections: ranged connections for this video (default: the Client's, 8).
            part_size: bytes per range request (default: the Client's, 8 MiB).
            chunk_size: bytes per write (and the most read from the network per await).
            progress: ``progress(video_id, done, total)`` as bytes arrive.
            timeout: storage requests' ``aiohttp.ClientTimeout`` (default: the client's
                ``download_timeout``). API calls use the client's ``timeout``.
            checksum: compute the SHA-256 in file order (``DownloadResult.sha256``).

        Raises:
            InvalidArgumentError: a bad ID, token or option, before any I/O.
            DiskError: the disk is full or not writable (an ``OSError`` too).
            DownloadError: the file failed verification, or storage kept failing; its
                ``status``, ``code`` and ``message`` say what storage answered.
            APIError, RequestError: from the API call that signs the URL.
        """
        options = dl.check_options(
            self._download_defaults, connections, part_size, chunk_size, progress, timeout, checksum
        )
        return await dl.download_video(self._link, archive_id, video_id, token, dest, options)

    async def download_archive(
        self,
        archive_id: str,
        token: str,
        dest_dir: str | Path,
        *,
        concurrency: int = 4,
        connections: int | None = None,
        part_size: int | None = None,
        chunk_size: int = dl.DEFAULT_CHUNK_SIZE,
        progress: dl.ProgressCallback | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        checksum: bool = True,
    ) -> list[dl.DownloadResult]:
        """Download every video of an archive into ``dest_dir`` (created if missing).

        The manifest first; then the videos, at most ``concurrency`` at once, through the one
        pool. A second run skips finished files (by size) and resumes the others. Options are
        as for ``download_video``.

        Returns:
            One ``DownloadResult`` per distinct video ID, in manifest order. A video's failure
            does not raise: it is in that result's ``error``; an ID unsafe as a file name fails
            with ``InvalidArgumentError`` and nothing is written.

        Raises:
            InvalidArgumentError: a bad ID, token or option, before any I/O.
            APIError, RequestError, ResponseError: the manifest could not be fetched.
            DiskError: ``dest_dir`` cannot be created.
        """
        options = dl.check_options(
            self._download_defaults, connections, part_size, chunk_size, progress, timeout, checksum
        )
        return await dl.download_archive(
            self._link, self.get_archive_manifest, archive_id, token, dest_dir, concurrency, options
        )

    # --- bulk export (export/: it sees this client only through its ``ExportClient``) -----

    async def export(
        self,
        items: Iterable[tuple[str, str]] | AsyncIterable[tuple[str, str]],
        dest: str | Path,
        *,
        concurrency: int = 16,
        shard: str | tuple[int, int] | None = None,
        delete_after_verify: bool = False,
        progress: Callable[[ex.ExportProgress], None] | None = None,
    ) -> ex.ExportResult:
        """Export every archive of ``items`` into ``dest``: journaled, resumable, shardable.

        ``items`` are ``(archive_id, session_id)`` pairs (any iterable or async iterable, read
        lazily); each archive lands as ``dest/ARCHIVE_ID/VIDEO_ID.flv`` plus ``manifest.json``,
        the job's state in ``dest/.aioopentok/`` (SQLite). See README, "Export a whole account".
        ``concurrency`` bounds the job's requests in flight; ``shard`` is ``"K/N"`` or ``(K, N)``.

        Raises:
            InvalidArgumentError: a bad argument, before any I/O.
            AuthError: the credentials were refused; the job stopped at once.
            DiskError: the disk is full or not writable; the job stopped, the journal is whole.
        """
        # A 429 goes to the job-wide pace at once (it slows every task), not retried per call.
        no_429 = dataclasses.replace(self.retry, statuses=self.retry.statuses - {429})
        return await ex.run(
            self.with_retry(no_429),
            items,
            dest,
            concurrency=concurrency,
            shard=shard,
            delete_after_verify=delete_after_verify,
            progress=progress,
        )
