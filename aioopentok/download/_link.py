"""What a download reaches the outside through: the Client's link, and the video's signed URL.

Strategy: ``StorageLink`` is the narrow interface the Client hands a download (a ``Protocol``
declared here, so this package never imports the Client); ``SignedUrl`` keeps one video's
signed URL and refreshes it in a single flight: however many parts see a 403 together, one
``archive/url`` call is made and every part goes on with the new URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from .._errors import DownloadError
from .._http import HTTPResponse, safe_url
from .._retry import RetryPolicy
from .._storage import Verdict

if TYPE_CHECKING:
    from aiohttp import ClientTimeout

__all__ = ["MAX_URL_REFRESHES", "SignedUrl", "StorageLink"]

MAX_URL_REFRESHES = 3  # fresh signed URLs in a row without progress before giving up
logger = logging.getLogger("aioopentok")


class StorageLink(Protocol):
    """What a download needs from the Client, and nothing more."""

    retry: RetryPolicy
    slots: asyncio.Semaphore  # storage connections open at once, Client-wide

    async def open(
        self, url: str, headers: Mapping[str, str], timeout: ClientTimeout | None
    ) -> HTTPResponse:
        """GET a signed storage URL with exactly these headers (plus User-Agent)."""
        ...

    async def sign(self, archive_id: str, video_id: str, token: str) -> str:
        """Return a fresh signed storage URL (the ``archive/url`` call)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait between retries (tests inject a clock that does not)."""
        ...

    def jitter(self) -> float:
        """Return a uniform [0, 1) draw for back-off jitter."""
        ...


class SignedUrl:
    """The video's signed URL; refreshed once for every part that saw it refused."""

    def __init__(self, sign: Callable[[], Awaitable[str]], video_id: str) -> None:
        self._sign = sign
        self._video_id = video_id
        self.value = ""
        self.generation = 0
        self._refreshes = 0
        self._pending: asyncio.Future[None] | None = None

    async def fetch(self) -> None:
        self.value = await self._sign()
        self.generation += 1

    def progressed(self) -> None:
        self._refreshes = 0

    async def refresh(self, seen: int, verdict: Verdict) -> None:
        """Get a fresh URL unless one came since generation ``seen``; share one call."""
        if self.generation != seen:
            return
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._refresh(verdict))
        await asyncio.shield(self._pending)

    async def aclose(self) -> None:
        """Cancel a refresh still running (its parts are gone); retrieve its outcome."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending

    async def _refresh(self, verdict: Verdict) -> None:
        try:
            self._refreshes += 1
            if self._refreshes > MAX_URL_REFRESHES:
                raise DownloadError(
                    f"{self._video_id}: storage refused {self._refreshes} fresh signed URLs "
                    f"in a row for {safe_url(self.value)}",
                    status=verdict.status,
                    code=verdict.code,
                    message=verdict.message,
                )
            logger.info(
                "%s: signed URL refused (%s); asking for a fresh one",
                self._video_id,
                verdict.reason,
            )
            await self.fetch()
        finally:
            self._pending = None
