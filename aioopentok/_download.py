"""Streaming archive videos to disk: the public entry points and their argument checks.

Strategy: check every argument before any I/O, then hand each video to a ``VideoDownload``
(``_transfer``: signed URL, Range resume, URL refresh) whose bytes go through a ``PartFile``
(``_files``: writer thread, SHA-256, fsync, atomic rename). ``download_archive`` runs them at most
``concurrency`` at once on the client's one pool and turns each video's ``OpenTokException``
into that video's ``DownloadResult.error``; only the manifest call (and ``dest_dir``) raise.

File names: a video is saved as ``<video_id>.flv``. IDs come from an untrusted manifest, so an ID
that ``_protocol.check_id`` rejects (``/``, ``\\``, ``..``, NUL, absolute paths, ...) is never
mapped to another name: that video fails with ``InvalidArgumentError`` before any I/O, the others
go on. A valid ID holds only letters, digits, ``._~-`` and starts alphanumeric, so
``<video_id>.flv`` cannot leave the destination directory.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from ._errors import InvalidArgumentError, OpenTokException
from ._files import disk_error
from ._protocol import check_id, check_token
from ._transfer import DownloadResult, ProgressCallback, TransferOptions, VideoDownload

if TYPE_CHECKING:
    from ._client import Client

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

logger = logging.getLogger("aioopentok")


# --- argument checks (before any I/O) ----------------------------------------------------------


def _check_options(
    chunk_size: object, progress: object, timeout: object, checksum: object
) -> TransferOptions:
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
    return TransferOptions(chunk_size, progress, timeout, bool(checksum))


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
    checksum: bool = True,
) -> DownloadResult:
    """Stream one video to ``dest`` (a file path, or an existing directory: ``<video_id>.flv``).

    Chunks go to ``<final>.part``; the final name appears only once the file is complete,
    verified (size, FLV signature) and fsynced. An existing ``.part`` is resumed; an existing
    final file of the right size is skipped. Failures raise; a ``.part`` is left for the next
    call to resume, unless its bytes proved wrong (not FLV, a size other than announced).

    Args:
        chunk_size: bytes per write (and the most read from the network per await).
        progress: ``progress(video_id, done, total)`` after each chunk.
        timeout: storage requests' ``aiohttp.ClientTimeout`` (default: the client's
            ``download_timeout``). API calls use the client's ``timeout``.
        checksum: compute the SHA-256 while streaming (``DownloadResult.sha256``). It costs
            about 0.85 s of CPU per GiB here (on another core when one is free); turn it off when
            size and FLV checks are enough.

    Raises:
        InvalidArgumentError: a bad ID, token or option, before any I/O.
        DiskError: the disk is full or not writable (an ``OSError`` too).
        DownloadError: the file failed verification, or storage kept failing.
        APIError, RequestError: from the API call that signs the URL.
    """
    archive_id = check_id(archive_id, "archive_id")
    video_id = check_id(video_id, "video_id")
    token = check_token(token)
    options = _check_options(chunk_size, progress, timeout, checksum)
    final = _final_path(_as_path(dest, "dest"), video_id)
    return await VideoDownload(client, archive_id, video_id, token, final, options).run()


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
    checksum: bool = True,
) -> list[DownloadResult]:
    """Download every video of an archive into ``dest_dir`` (created if missing).

    The manifest is fetched first; then the videos go, at most ``concurrency`` at once, through
    the client's one connection pool. A second run into the same directory skips finished
    files (by size) and resumes ``.part`` files. Options are as for ``download_video``.

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
    options = _check_options(chunk_size, progress, timeout, checksum)
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
            try:
                return await VideoDownload(
                    client, archive_id, video_id, token, final, options
                ).run()
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
