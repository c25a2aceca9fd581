"""What a download is asked to do (checked once, before any I/O) and what it reports.

Strategy: the public entry points check every option here into a frozen ``DownloadOptions``
shared by every video of a call, so the loops below never re-validate; ``DownloadResult`` is
what the caller gets back for each video.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import InvalidArgumentError, OpenTokException

if TYPE_CHECKING:
    from aiohttp import ClientTimeout

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CONNECTIONS",
    "DEFAULT_PART_SIZE",
    "DownloadOptions",
    "DownloadResult",
    "ProgressCallback",
    "as_path",
    "check_budget",
    "check_concurrency",
    "check_options",
    "check_segmenting",
]

DEFAULT_CHUNK_SIZE = 1024 * 1024
# AWS's guidance for S3: concurrent byte-range GETs of 8-16 MB, since one connection is capped.
DEFAULT_CONNECTIONS = 8
DEFAULT_PART_SIZE = 8 * 1024 * 1024
_MIN_CHUNK_SIZE = 4096
_MAX_CHUNK_SIZE = 64 * 1024 * 1024
_MIN_PART_SIZE = 64 * 1024
_MAX_PART_SIZE = 1024 * 1024 * 1024
_MAX_CONNECTIONS = 64

#: ``progress(video_id, done, total)``: bytes on disk so far, and the size if known. Called on
#: the event loop as bytes arrive (and once at the start); keep it quick.
ProgressCallback = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What happened to one video.

    Attributes:
        archive_id, video_id: which video.
        path: the final file (``<dest_dir>/<video_id>.flv``); ``dest_dir`` itself for a video
            whose ID was rejected as unsafe.
        size: bytes in the final file (0 on error).
        sha256: hex digest of the file in file order, computed while downloading (also over a
            resumed ``.part``). None when the file was skipped, with ``checksum=False``, or on
            error.
        etag: the storage's ``ETag`` of the file (S3: the MD5 for single-part uploads).
        resumed: some bytes were not fetched again: they were on disk already, left by an
            earlier call, or by an earlier try (a cut connection) of this one.
        skipped: the final file was already there with the size storage announces.
        connections: the most ranged requests that ran at once for this video.
        error: why this video failed (``download_archive`` only; ``download_video`` raises).
    """

    archive_id: str
    video_id: str
    path: Path
    size: int = 0
    sha256: str | None = None
    etag: str | None = None
    resumed: bool = False
    skipped: bool = False
    connections: int = 1
    error: OpenTokException | None = None

    @property
    def ok(self) -> bool:
        """Whether the video is complete on disk."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class DownloadOptions:
    """The caller's download options, checked once and shared by every video."""

    connections: int = DEFAULT_CONNECTIONS
    part_size: int = DEFAULT_PART_SIZE
    chunk_size: int = DEFAULT_CHUNK_SIZE
    progress: ProgressCallback | None = None
    timeout: ClientTimeout | None = None
    checksum: bool = True


def _int_in(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgumentError(f"{name} must be an int from {low} to {high}, not {value!r}")
    return value


def check_segmenting(connections: object, part_size: object) -> DownloadOptions:
    """Return the defaults a Client gives every download (``connections``, ``part_size``)."""
    return DownloadOptions(
        connections=_int_in(connections, "connections", 1, _MAX_CONNECTIONS),
        part_size=_int_in(part_size, "part_size", _MIN_PART_SIZE, _MAX_PART_SIZE),
    )


def check_options(
    defaults: DownloadOptions,
    connections: object,
    part_size: object,
    chunk_size: object,
    progress: object,
    timeout: object,
    checksum: object,
) -> DownloadOptions:
    """Check one call's options over the Client's defaults, before any I/O."""
    from aiohttp import ClientTimeout  # the type is aiohttp's; the import stays lazy here

    if progress is not None and not callable(progress):
        raise InvalidArgumentError(f"progress must be callable or None, not {progress!r}")
    if timeout is not None and not isinstance(timeout, ClientTimeout):
        raise InvalidArgumentError(
            f"timeout must be an aiohttp.ClientTimeout or None, not {timeout!r}"
        )
    segmenting = check_segmenting(
        defaults.connections if connections is None else connections,
        defaults.part_size if part_size is None else part_size,
    )
    return replace(
        segmenting,
        chunk_size=_int_in(chunk_size, "chunk_size", _MIN_CHUNK_SIZE, _MAX_CHUNK_SIZE),
        progress=progress,
        timeout=timeout,
        checksum=bool(checksum),
    )


def check_budget(max_storage_connections: object) -> int:
    """Return a valid Client-wide storage-connection budget, or raise."""
    return _int_in(max_storage_connections, "max_storage_connections", 1, 100_000)


def check_concurrency(concurrency: object) -> int:
    """Return a valid ``download_archive`` concurrency, or raise."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidArgumentError(f"concurrency must be an int >= 1, not {concurrency!r}")
    return concurrency


def as_path(value: object, name: str) -> Path:
    """Return ``value`` as a ``Path``, or raise ``InvalidArgumentError``."""
    try:
        return Path(value)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidArgumentError(f"{name} must be a path, not {value!r}") from None
