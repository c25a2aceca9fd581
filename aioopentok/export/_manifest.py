"""``dest/ARCHIVE_ID/manifest.json``: what the service said about an archive, and its files.

Strategy: ``manifest_document`` is pure (the archive's manifest and the files' facts in, a
JSON-ready dict out): archive and session IDs, title, and per video its id, name, length and
offset (milliseconds, as the service reports them: protocol.md, Archives), size, SHA-256 and,
when storage gave one, its ETag. ``write_manifest`` makes it durable the way the videos are:
a temporary file, fsync, atomic rename, fsync of the directory, so ``manifest.json`` is either
whole or absent after a crash. These are blocking calls: the job runs them in a thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._interface import ArchiveLike

__all__ = [
    "MANIFEST_NAME",
    "FileFacts",
    "file_facts",
    "fsync_dir",
    "manifest_document",
    "read_manifest",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
FORMAT = 1
_READ_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileFacts:
    """One downloaded video as it is on disk (``etag``: storage's, when known)."""

    video_id: str
    size: int
    sha256: str
    etag: str | None = None


def manifest_document(
    archive: ArchiveLike, session_id: str, files: Mapping[str, FileFacts], *, now: datetime
) -> dict[str, Any]:
    """Return the ``manifest.json`` content of an exported archive."""
    offsets: dict[str, int] = {}
    for event in archive.timeline:
        offsets.setdefault(event.id, event.offset)
    videos = []
    for video in archive.resources:
        facts = files[video.id]
        entry: dict[str, Any] = {
            "id": video.id,
            "name": video.name,
            "length": video.length,
            "offset": offsets.get(video.id),
            "file": f"{video.id}.flv",
            "size": facts.size,
            "sha256": facts.sha256,
        }
        if facts.etag is not None:
            entry["etag"] = facts.etag
        videos.append(entry)
    return {
        "format": FORMAT,
        "archive_id": archive.archive_id,
        "session_id": session_id,
        "title": archive.title,
        "exported_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "units": {"length": "ms", "offset": "ms", "size": "bytes"},
        "videos": videos,
    }


def fsync_dir(directory: Path) -> None:
    """Make the names in ``directory`` durable (a rename survives a power cut)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_manifest(folder: Path, document: Mapping[str, Any]) -> Path:
    """Write ``folder/manifest.json`` atomically and durably; return its path."""
    final = folder / MANIFEST_NAME
    temporary = folder / f".{MANIFEST_NAME}.part"
    data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
    try:
        with temporary.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, final)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    fsync_dir(folder)
    return final


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """Return ``folder/manifest.json``, or None if missing or not ours."""
    try:
        document = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return None
    return document


def file_facts(path: Path, *, md5: bool = False) -> tuple[int, str, str | None]:
    """Read a file once: return its size, SHA-256 and (if asked) MD5, hex."""
    sha = hashlib.sha256()
    digest_md5 = hashlib.md5(usedforsecurity=False) if md5 else None
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_READ_CHUNK):
            size += len(chunk)
            sha.update(chunk)
            if digest_md5 is not None:
                digest_md5.update(chunk)
    return size, sha.hexdigest(), None if digest_md5 is None else digest_md5.hexdigest()
