"""One video's transfer: storage requests from where the ``.part`` is, until it verifies.

Strategy: ``VideoDownload`` asks the API for the signed URL, then loops over storage requests
(``Client._open_storage``, which never sends OpenTok auth) from the byte the ``.part`` file has
reached: a dropped connection, a short body, a 5xx resume with ``Range: bytes=N-`` after
back-off; a 403 (URL expired) fetches a fresh URL; a 200 to a Range request, or a 206 for
another range, starts over. Failures in a row without new bytes are bounded
(``client.retry.retries``; fresh URLs: ``_MAX_URL_REFRESHES``); any progress resets the counts.
The network loop gathers ~``chunk_size`` bytes, hands them to the ``PartFile`` writer thread
(write + SHA-256, see ``_files``) and reads the next chunk while that one is written: at most
two chunks in memory, at most one chunk of file I/O per await. The final name appears only
through ``PartFile.finish`` (size, FLV signature, fsync, ``os.replace``); failures and
cancellation leave the ``.part`` for the next call to resume.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from ._errors import DownloadError, OpenTokException, RequestError
from ._files import FLV_HEADER_SIZE, PartFile, disk_error, flv_prefix_ok, part_path
from ._replies import retry_after_of

if TYPE_CHECKING:
    from ._client import Client, StorageResponse

__all__ = ["DownloadResult", "ProgressCallback", "TransferOptions", "VideoDownload"]

_MAX_PIECES = 256  # network reads gathered per write (an iovec must stay under IOV_MAX)
_MAX_URL_REFRESHES = 3  # fresh signed URLs in a row without progress before giving up
_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RE = re.compile(r"bytes \*/(\d+)")

#: ``progress(video_id, done, total)``: bytes received so far, and the size if known. Called on
#: the event loop after each chunk (and once at the start); keep it quick.
ProgressCallback = Callable[[str, int, "int | None"], None]

logger = logging.getLogger("aioopentok")


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What happened to one video.

    Attributes:
        archive_id, video_id: which video.
        path: the final file (``<dest_dir>/<video_id>.flv``); ``dest_dir`` itself for a video
            whose ID was rejected as unsafe.
        size: bytes in the final file (0 on error).
        sha256: hex digest of the file, computed while streaming (also over a resumed
            ``.part``). None when the file was skipped (re-reading gigabytes only to hash them
            is not cheap), with ``checksum=False``, or on error.
        resumed: the download continued from bytes already on disk (a ``.part`` left by an
            earlier call, or an earlier attempt of this call) instead of all from byte 0.
        skipped: the final file was already there with the size storage announces.
        error: why this video failed (``download_archive`` only; ``download_video`` raises).
    """

    archive_id: str
    video_id: str
    path: Path
    size: int = 0
    sha256: str | None = None
    resumed: bool = False
    skipped: bool = False
    error: OpenTokException | None = None

    @property
    def ok(self) -> bool:
        """Whether the video is complete on disk."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class TransferOptions:
    """The caller's download options, checked once (``_download``) and shared by every video."""

    chunk_size: int
    progress: ProgressCallback | None = None
    timeout: aiohttp.ClientTimeout | None = None
    checksum: bool = True


class _Retry(Exception):
    """A transient storage failure: resume after back-off."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Expired(Exception):
    """Storage refused the signed URL (403): it expired; ask the API for a fresh one."""


# --- the transfer ------------------------------------------------------------------------------


class VideoDownload:
    """The state of one video's download across its storage requests."""

    def __init__(
        self,
        client: Client,
        archive_id: str,
        video_id: str,
        token: str,
        final: Path,
        options: TransferOptions,
    ) -> None:
        self.client = client
        self.archive_id = archive_id
        self.video_id = video_id
        self._token = token
        self.final = final
        self.chunk_size = options.chunk_size
        self.progress = options.progress
        self.timeout = options.timeout
        self.checksum = options.checksum
        self.url = ""
        self.total: int | None = None  # the size storage announced, once known
        self.resumed = False

    async def _fresh_url(self) -> None:
        self.url = await self.client.download_archive_url(
            self.archive_id, self.video_id, self._token
        )

    async def run(self) -> DownloadResult:
        await self._fresh_url()
        have = _file_size(self.final)
        if have is not None and have == await self._remote_size():
            logger.info("%s: complete on disk (%d bytes), skipped", self.final, have)
            await _remove_stale_part(self.final)
            return DownloadResult(
                self.archive_id, self.video_id, self.final, size=have, skipped=True
            )
        part = PartFile(self.final, checksum=self.checksum)
        try:
            if await part.open() and not flv_prefix_ok(part.head):
                await self._restart(part)  # someone else's bytes: resuming them can never verify
            self.resumed = part.size > 0
            await self._fetch(part)
            size = part.size
            digest = await part.finish(self.total)
        finally:
            await part.aclose()
        return DownloadResult(
            self.archive_id,
            self.video_id,
            self.final,
            size=size,
            sha256=digest,
            resumed=self.resumed,
        )

    async def _remote_size(self) -> int | None:
        """Return the file's size on storage, or None if storage does not say.

        Asks for its first byte (``Range: bytes=0-0``) and reads the total from the
        ``Content-Range`` of the 206: a HEAD would be refused on a URL signed for GET.
        """
        for _ in range(2):
            try:
                async with self.client._open_storage(
                    self.url, start=0, end=0, timeout=self.timeout
                ) as resp:
                    if resp.status in (401, 403):
                        await self._fresh_url()
                        continue
                    if resp.status == 206:
                        match = _CONTENT_RANGE_RE.fullmatch(
                            resp.headers.get("Content-Range", "").strip()
                        )
                        if match and match.group(3) != "*":
                            return int(match.group(3))
                    return None  # a 200 ignored the Range: leave its body unread
            except RequestError:
                return None  # the GET that follows has the retries
        return None

    async def _fetch(self, part: PartFile) -> None:
        """Request from ``part.size`` until the body is complete; retry what is transient."""
        policy = self.client.retry
        failures = refreshes = 0
        best = part.size
        while True:
            start = part.size
            try:
                async with self.client._open_storage(
                    self.url, start=start, timeout=self.timeout
                ) as resp:
                    await self._receive(resp, part, start)
                return
            except _Expired:
                await part.drain()
                if part.size > best:
                    best, failures, refreshes = part.size, 0, 0
                refreshes += 1
                if refreshes > _MAX_URL_REFRESHES:
                    raise DownloadError(
                        f"{self.video_id}: storage refused {refreshes} fresh signed URLs in a row",
                        status=403,
                    ) from None
                logger.info(
                    "%s: signed URL expired at byte %d; asking for a fresh one",
                    self.video_id,
                    part.size,
                )
                await self._fresh_url()
            except (RequestError, _Retry) as exc:
                await part.drain()
                if part.size > best:
                    best, failures, refreshes = part.size, 0, 0
                failures += 1
                if failures > policy.retries:
                    raise DownloadError(
                        f"{self.video_id}: gave up after {failures} failed tries in a row "
                        f"at byte {part.size}: {exc}"
                    ) from exc
                retry_after = exc.retry_after if isinstance(exc, _Retry) else None
                delay = policy.delay(failures - 1, retry_after, self.client._jitter())
                if delay is None:
                    raise DownloadError(
                        f"{self.video_id}: storage asked to wait {retry_after:.0f} s, longer than "
                        f"max_retry_after ({policy.max_retry_after:.0f} s); call again later"
                    ) from exc
                logger.info(
                    "%s: %s; resuming at byte %d in %.2f s", self.video_id, exc, part.size, delay
                )
                await self.client._sleep(delay)

    async def _receive(self, resp: StorageResponse, part: PartFile, start: int) -> None:
        """Check one storage reply and stream its body into ``part``."""
        status = resp.status
        if status in (401, 403):
            raise _Expired
        if status in self.client.retry.statuses or status >= 500:
            after = retry_after_of(resp.headers)
            raise _Retry(f"storage answered HTTP {status}", after)
        if status == 416 and start:
            match = _UNSATISFIED_RE.fullmatch(resp.headers.get("Content-Range", ""))
            if match and int(match.group(1)) == start:
                self._learn_total(start)
                self.resumed = True
                return  # the .part already held every byte
            await self._restart(part)
            raise _Retry(f"storage cannot serve bytes from {start} (HTTP 416); starting over")
        if status == 206:
            matches, total = _content_range(resp.headers, start)
            if not matches:
                await self._restart(part)
                raise _Retry("storage answered a Range request with another range; starting over")
            self.resumed = True
        elif status == 200:
            if start:
                logger.info("%s: storage ignored Range; starting over", self.video_id)
                await self._restart(part)
            length = resp.headers.get("Content-Length")
            total = int(length) if length is not None and length.isdigit() else None
        else:
            body = await resp.read_capped()
            raise DownloadError(
                f"{self.video_id}: storage refused the download", status=status, body=body
            )
        if total is not None and self.total is not None and total != self.total:
            await self._restart(part)
            was, self.total = self.total, None
            raise _Retry(f"the file changed size on storage ({was} -> {total} bytes)")
        self._learn_total(total)
        await self._stream(resp, part)

    async def _restart(self, part: PartFile) -> None:
        await part.restart()
        self.resumed = False

    def _learn_total(self, total: int | None) -> None:
        if total is not None:
            self.total = total

    async def _stream(self, resp: StorageResponse, part: PartFile) -> None:
        received = part.size
        if self.progress is not None:
            self.progress(self.video_id, received, self.total)
        pieces: list[bytes] = []
        buffered = 0
        try:
            async for piece in resp.iter_chunks():
                pieces.append(piece)
                buffered += len(piece)
                if buffered >= self.chunk_size or len(pieces) >= _MAX_PIECES:
                    received = await self._write(part, pieces, received)
                    pieces, buffered = [], 0
        except RequestError:
            if pieces:  # keep what did arrive: the resume starts after it
                await self._write(part, pieces, received)
            raise
        if pieces:
            received = await self._write(part, pieces, received)
        await part.drain()
        if self.total is not None and part.size < self.total:
            raise _Retry(f"body ended at byte {part.size} of {self.total}")

    async def _write(self, part: PartFile, pieces: list[bytes], received: int) -> int:
        """Check the chunk against what we know, queue it for the writer; return bytes seen."""
        size = sum(len(p) for p in pieces)
        if received < FLV_HEADER_SIZE:
            await part.drain()  # only for the first bytes: part.head is then up to date
            head = (part.head + b"".join(p[:FLV_HEADER_SIZE] for p in pieces))[:FLV_HEADER_SIZE]
            if not flv_prefix_ok(head):
                await part.discard()
                raise DownloadError(f"{self.video_id}: not an FLV file (starts with {head!r})")
        if self.total is not None and received + size > self.total:
            await part.discard()
            raise DownloadError(
                f"{self.video_id}: storage sent more than the {self.total} bytes it announced"
            )
        await part.write(pieces)
        received += size
        if self.progress is not None:
            self.progress(self.video_id, received, self.total)
        return received


def _content_range(headers: Mapping[str, str], start: int) -> tuple[bool, int | None]:
    """Return whether a 206 is the open range asked for, and the total size (None if ``*``)."""
    match = _CONTENT_RANGE_RE.fullmatch(headers.get("Content-Range", "").strip())
    if match is None or int(match.group(1)) != start:
        return False, None
    if match.group(3) == "*":
        return True, None
    total = int(match.group(3))
    return int(match.group(2)) == total - 1, total


def _file_size(path: Path) -> int | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise disk_error(exc, path, "inspect") from exc
    return stat.st_size if path.is_file() else None


async def _remove_stale_part(final: Path) -> None:
    """Delete a ``.part`` beside a complete final file: it can only be a stale copy."""
    try:
        await asyncio.to_thread(part_path(final).unlink, missing_ok=True)
    except OSError as exc:
        raise disk_error(exc, part_path(final), "delete") from exc
