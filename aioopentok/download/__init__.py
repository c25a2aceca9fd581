"""Archive videos to disk: the entry points the Client's download methods call.

Strategy: the Client checks the options (``check_options``) and hands over a ``StorageLink``
(send a storage request, sign a fresh URL, sleep, the retry policy, the storage-connection
budget); this package never imports the Client. Each video is a ``VideoJob`` (``_fetch``:
ranged parts, retries, single-flight URL refresh) whose bytes go through a ``PartFile``
(``_partfile``: positional writes, ordered SHA-256, ranges record, fsync, atomic rename).
``download_archive`` runs the videos of a manifest at most ``concurrency`` at once and turns
each video's ``OpenTokException`` into that video's ``DownloadResult.error``.

File names: a video is saved as ``<video_id>.flv``. IDs come from an untrusted manifest, so an ID
that ``_requests.check_id`` rejects (``/``, ``\\``, ``..``, NUL, absolute paths, ...) is never
mapped to another name: that video fails with ``InvalidArgumentError`` before any I/O, the others
go on. A valid ID holds only letters, digits, ``._~-`` and starts alphanumeric, so
``<video_id>.flv`` cannot leave the destination directory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from .._errors import InvalidArgumentError, OpenTokException, disk_error
from .._models import Archive
from .._requests import check_id, check_token
from ._fetch import VideoJob
from ._link import StorageLink
from ._options import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONNECTIONS,
    DEFAULT_PART_SIZE,
    DownloadOptions,
    DownloadResult,
    ProgressCallback,
    as_path,
    check_budget,
    check_concurrency,
    check_options,
    check_segmenting,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CONNECTIONS",
    "DEFAULT_PART_SIZE",
    "DownloadOptions",
    "DownloadResult",
    "ProgressCallback",
    "StorageLink",
    "as_path",
    "check_budget",
    "check_concurrency",
    "check_options",
    "check_segmenting",
    "download_archive",
    "download_video",
]

logger = logging.getLogger("aioopentok")


def _final_path(dest: Path, video_id: str) -> Path:
    """Return the file to write: ``dest`` itself, or ``dest/<video_id>.flv`` for a directory."""
    if dest.is_dir():
        return dest / f"{video_id}.flv"
    if not dest.parent.is_dir():
        raise disk_error(FileNotFoundError(2, "no such directory"), dest.parent, "write into")
    return dest


async def download_video(
    link: StorageLink,
    archive_id: str,
    video_id: str,
    token: str,
    dest: str | Path,
    options: DownloadOptions,
) -> DownloadResult:
    """Download one video to ``dest`` (see ``Client.download_video``)."""
    archive_id = check_id(archive_id, "archive_id")
    video_id = check_id(video_id, "video_id")
    token = check_token(token)
    final = _final_path(as_path(dest, "dest"), video_id)
    return await VideoJob(link, archive_id, video_id, token, final, options).run()


async def download_archive(
    link: StorageLink,
    get_manifest: Callable[[str, str], Awaitable[Archive]],
    archive_id: str,
    token: str,
    dest_dir: str | Path,
    concurrency: int,
    options: DownloadOptions,
) -> list[DownloadResult]:
    """Download every video of an archive into ``dest_dir`` (see ``Client.download_archive``)."""
    archive_id = check_id(archive_id, "archive_id")
    token = check_token(token)
    concurrency = check_concurrency(concurrency)
    directory = as_path(dest_dir, "dest_dir")
    manifest = await get_manifest(archive_id, token)
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
                return await VideoJob(link, archive_id, video_id, token, final, options).run()
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
