"""Streaming archive videos to disk: signed URL, ``.part`` file, Range resume, verify, rename.

Strategy: one ``_VideoDownload`` per video. It asks the API for the signed URL, then loops over
storage requests (``Client._open_storage``, which never sends OpenTok auth) from the byte the
``.part`` file has reached: a dropped connection, a short body, a 5xx resume with
``Range: bytes=N-`` after back-off; a 403 (URL expired) fetches a fresh URL; a 200 to a Range
request starts over. Failures in a row without new bytes are bounded (``client.retry.retries``);
any progress resets the count. The network loop gathers ~``chunk_size`` bytes, hands them to the
``PartFile`` writer thread (write + SHA-256, see ``_files``) and reads the next chunk while that
one is written: at most two chunks in memory, at most one chunk of file I/O per await. The final
name appears only through ``os.replace`` after the size and the FLV signature check out and the
data is fsynced; failures and cancellation leave the ``.part`` for the next call to resume.

File names: a video is saved as ``<video_id>.flv``. IDs come from an untrusted manifest, so an ID
that ``_protocol.check_id`` rejects (``/``, ``\\``, ``..``, NUL, absolute paths, ...) is never
mapped to another name: that video fails with ``InvalidArgumentError`` before any I/O, the others
go on. A valid ID holds only letters, digits, ``._~-`` and starts alphanumeric, so
``<video_id>.flv`` cannot leave the destination directory.
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

from ._errors import (
    DownloadError,
    InvalidArgumentError,
    OpenTokException,
    RequestError,
)
from ._files import FLV_SIGNATURE, PartFile, disk_error
from ._protocol import check_id, check_token, retry_after_seconds

if TYPE_CHECKING:
    from ._client import Client, StorageResponse

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DownloadResult",
    "ProgressCallback",
    "download_archive",
    "download_video",
]

DEFAULT_CHUNK_SIZE = 1024 * 1024
_MIN_CHUNK_SIZE = 4096
_MAX_CHUNK_SIZE = 64 * 1024 * 1024
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
            is not cheap) or on error.
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


class _Retry(Exception):
    """A transient storage failure: resume after back-off."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Expired(Exception):
    """Storage refused the signed URL (403): it expired; ask the API for a fresh one."""


# --- argument checks (before any I/O) ----------------------------------------------------------


def _check_options(
    chunk_size: object, progress: object, timeout: object
) -> tuple[int, ProgressCallback | None, aiohttp.ClientTimeout | None]:
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or not _MIN_CHUNK_SIZE <= chunk_size <= _MAX_CHUNK_SIZE
    ):
        raise InvalidArgumentError(
            f"chunk_size must be an int from {_MIN_CHUNK_SIZE} to {_MAX_CHUNK_SIZE}, "
            f"not {chunk_size!r}"
        )
    if progress is not None and not callable(progress):
        raise InvalidArgumentError(f"progress must be callable or None, not {progress!r}")
    if timeout is not None and not isinstance(timeout, aiohttp.ClientTimeout):
        raise InvalidArgumentError(
            f"timeout must be an aiohttp.ClientTimeout or None, not {timeout!r}"
        )
    return chunk_size, progress, timeout


def _as_path(value: object, name: str) -> Path:
    try:
        return Path(value)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidArgumentError(f"{name} must be a path, not {value!r}") from None


def _final_path(dest: Path, video_id: str) -> Path:
    """Return the file to write: ``dest`` itself, or ``dest/<video_id>.flv`` for a directory."""
    if dest.is_dir():
        return dest / f"{video_id}.flv"
    if not dest.parent.is_dir():
        raise disk_error(FileNotFoundError(2, "no such directory"), dest.parent, "write into")
    return dest


# --- public entry points -----------------------------------------------------------------------


async def download_video(
    client: Client,
    archive_id: str,
    video_id: str,
    token: str,
    dest: str | Path,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: ProgressCallback | None = None,
    timeout: aiohttp.ClientTimeout | None = None,
) -> DownloadResult:
    """Stream one video to ``dest`` (a file path, or an existing directory: ``<video_id>.flv``).

    Chunks go to ``<final>.part``; the final name appears only once the file is complete,
    verified (size, FLV signature) and fsynced. An existing ``.part`` is resumed; an existing
    final file of the right size is skipped. Failures raise, leaving the ``.part``.

    Args:
        chunk_size: bytes per write (and the most read from the network per await).
        progress: ``progress(video_id, done, total)`` after each chunk.
        timeout: storage requests' ``aiohttp.ClientTimeout`` (default: the client's
            ``download_timeout``). API calls use the client's ``timeout``.

    Raises:
        InvalidArgumentError: a bad ID, token or option, before any I/O.
        DiskError: the disk is full or not writable (an ``OSError`` too).
        DownloadError: the file failed verification, or storage kept failing.
        APIError, RequestError: from the API call that signs the URL.
    """
    archive_id = check_id(archive_id, "archive_id")
    video_id = check_id(video_id, "video_id")
    token = check_token(token)
    chunk_size, progress, timeout = _check_options(chunk_size, progress, timeout)
    final = _final_path(_as_path(dest, "dest"), video_id)
    job = _VideoDownload(client, archive_id, video_id, token, final, chunk_size, progress, timeout)
    return await job.run()


async def download_archive(
    client: Client,
    archive_id: str,
    token: str,
    dest_dir: str | Path,
    *,
    concurrency: int = 4,
    progress: ProgressCallback | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    timeout: aiohttp.ClientTimeout | None = None,
) -> list[DownloadResult]:
    """Download every video of an archive into ``dest_dir`` (created if missing).

    The manifest is fetched first; then the videos go, at most ``concurrency`` at once, through
    the client's one connection pool. A second run into the same directory skips finished
    files (by size) and resumes ``.part`` files.

    Returns:
        One ``DownloadResult`` per distinct video ID, in manifest order. A video's failure does
        not raise: it is in that result's ``error`` (``ok`` is False), the others go on. An ID
        that is unsafe as a file name fails with ``InvalidArgumentError`` and nothing is written.

    Raises:
        InvalidArgumentError: a bad ID, token or option, before any I/O.
        APIError, RequestError, ResponseError: the manifest could not be fetched.
        DiskError: ``dest_dir`` cannot be created.
    """
    archive_id = check_id(archive_id, "archive_id")
    token = check_token(token)
    chunk_size, progress, timeout = _check_options(chunk_size, progress, timeout)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidArgumentError(f"concurrency must be an int >= 1, not {concurrency!r}")
    directory = _as_path(dest_dir, "dest_dir")

    manifest = await client.get_archive_manifest(archive_id, token)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(exc, directory, "create") from exc
    video_ids = list(dict.fromkeys(video.id for video in manifest.resources))
    limit = asyncio.Semaphore(concurrency)

    async def one(video_id: str) -> DownloadResult:
        async with limit:
            try:
                check_id(video_id, "video_id")
            except InvalidArgumentError as exc:
                logger.warning("archive %s: unsafe video id %r refused", archive_id, video_id)
                return DownloadResult(archive_id, video_id, directory, error=exc)
            final = directory / f"{video_id}.flv"
            job = _VideoDownload(
                client, archive_id, video_id, token, final, chunk_size, progress, timeout
            )
            try:
                return await job.run()
            except OpenTokException as exc:
                logger.info("archive %s video %s failed: %s", archive_id, video_id, exc)
                return DownloadResult(archive_id, video_id, final, error=exc)

    tasks = [asyncio.ensure_future(one(video_id)) for video_id in video_ids]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        # A bug or a cancel: stop the others and let them close their files and connections.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


# --- one video ---------------------------------------------------------------------------------


class _VideoDownload:
    """The state of one video's download across its storage requests."""

    def __init__(
        self,
        client: Client,
        archive_id: str,
        video_id: str,
        token: str,
        final: Path,
        chunk_size: int,
        progress: ProgressCallback | None,
        timeout: aiohttp.ClientTimeout | None,
    ) -> None:
        self.client = client
        self.archive_id = archive_id
        self.video_id = video_id
        self._token = token
        self.final = final
        self.chunk_size = chunk_size
        self.progress = progress
        self.timeout = timeout
        self.url = ""
        self.total: int | None = None  # the size storage announced, once known
        self.resumed = False

    def _result(self, **fields: object) -> DownloadResult:
        return DownloadResult(self.archive_id, self.video_id, self.final, **fields)  # type: ignore[arg-type]

    async def _fresh_url(self) -> None:
        self.url = await self.client.download_archive_url(
            self.archive_id, self.video_id, self._token
        )

    async def run(self) -> DownloadResult:
        await self._fresh_url()
        have = _file_size(self.final)
        if have is not None and have == await self._remote_size():
            logger.info("%s: complete on disk (%d bytes), skipped", self.final, have)
            return self._result(size=have, skipped=True)
        part = PartFile(self.final)
        try:
            if await part.open() and not FLV_SIGNATURE.startswith(part.head):
                await self._restart(part)  # someone else's bytes: resuming them can never verify
            self.resumed = part.size > 0
            await self._fetch(part)
            size = part.size
            digest = await part.finish(self.total)
        finally:
            part.close()
        return self._result(size=size, sha256=digest, resumed=self.resumed)

    async def _remote_size(self) -> int | None:
        """Return the size storage announces for a HEAD, or None if it does not say."""
        for _ in range(2):
            try:
                async with self.client._open_storage(
                    self.url, method="HEAD", timeout=self.timeout
                ) as resp:
                    if resp.status in (401, 403):
                        await self._fresh_url()
                        continue
                    length = resp.headers.get("Content-Length")
                    if resp.status == 200 and length is not None and length.isdigit():
                        return int(length)
                    return None
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
            after = retry_after_seconds(resp.headers.get("Retry-After"))
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
            async for piece in resp.iter_chunks(self.chunk_size):
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
        if received < len(FLV_SIGNATURE):
            await part.drain()  # only for the first bytes: part.head is then up to date
            head = (part.head + b"".join(p[:3] for p in pieces))[: len(FLV_SIGNATURE)]
            if not FLV_SIGNATURE.startswith(head):
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
