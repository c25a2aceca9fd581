"""What an export needs from a client, declared here so that ``export`` never imports ``_client``.

Strategy: ``typing.Protocol`` classes of the four calls and the result shapes the job reads
(read-only properties, so frozen dataclasses match). ``aioopentok.Client`` satisfies them
structurally; tests may pass any object that does, e.g. a fake that fails on cue.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from .._models import Role

__all__ = [
    "ArchiveLike",
    "DownloadResultLike",
    "EventLike",
    "ExportClient",
    "VideoLike",
    "VideoProgress",
]

#: ``progress(video_id, bytes_done, bytes_total_or_None)``, as downloads call it.
VideoProgress = Callable[[str, int, "int | None"], None]


class VideoLike(Protocol):
    """One video of a manifest."""

    @property
    def id(self) -> str: ...
    @property
    def length(self) -> int: ...
    @property
    def name(self) -> str: ...


class EventLike(Protocol):
    """One timeline event of a manifest."""

    @property
    def id(self) -> str: ...
    @property
    def offset(self) -> int: ...


class ArchiveLike(Protocol):
    """An archive manifest."""

    @property
    def archive_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def resources(self) -> Sequence[VideoLike]: ...
    @property
    def timeline(self) -> Sequence[EventLike]: ...


class DownloadResultLike(Protocol):
    """One finished download (``etag`` is read with ``getattr``: not every client has it)."""

    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def skipped(self) -> bool: ...
    @property
    def resumed(self) -> bool: ...


class ExportClient(Protocol):
    """The calls an export makes."""

    async def get_archive_manifest(self, archive_id: str, token: str) -> ArchiveLike: ...

    async def download_video(
        self,
        archive_id: str,
        video_id: str,
        token: str,
        dest: Path,
        *,
        progress: VideoProgress | None = ...,
        checksum: bool = ...,
    ) -> DownloadResultLike: ...

    async def delete_archive(self, archive_id: str, token: str) -> None: ...

    def generate_token(self, session_id: str, role: Role = ...) -> str: ...
