"""The local side of a download: the ``.part`` file, its writer thread, the atomic finish.

Strategy: every blocking file operation of one download (open, re-hash of an old ``.part``,
write + SHA-256 of each chunk, fsync, rename, close) runs on that download's own one-thread
executor, so they happen in the order submitted and the event loop awaits at most one chunk of
file I/O at a time. The thread writes with ``os.pwritev`` straight from the network's buffers
(no join, no copy) and hashes the same buffers (hashlib releases the GIL for them), so disk and
hash work overlap the next network read. Every ``OSError`` of the disk becomes a ``DiskError``
here, in one place. Closing queues behind a write still running, so a cancelled download waits
for at most that one chunk, and the fd is never closed under a busy thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ._errors import DiskError, DownloadError

__all__ = ["FLV_HEADER_SIZE", "PART_SUFFIX", "PartFile", "disk_error", "flv_prefix_ok", "part_path"]

# protocol.md, "FLV files": "FLV", version 0x01, a flags byte, then the header size 9 (4 bytes BE).
FLV_HEADER_SIZE = 9
_FLV_START = b"FLV\x01"
_FLV_SIZE_FIELD = b"\x00\x00\x00\x09"


def flv_prefix_ok(head: bytes) -> bool:
    """Return whether ``head`` (the first bytes, maybe fewer than 9) can start an FLV file."""
    return _FLV_START.startswith(head[:4]) and _FLV_SIZE_FIELD.startswith(head[5:9])


PART_SUFFIX = ".part"
_REHASH_CHUNK = 4 * 1024 * 1024
# Ask the kernel to start writing dirty pages back every this many bytes (Linux: fadvise
# DONTNEED starts async writeback), so the final fsync has little left to do and the page
# cache does not balloon with one big file.
_WRITEBACK_EVERY = 32 * 1024 * 1024
_T = TypeVar("_T")
logger = logging.getLogger("aioopentok")
_HAVE_FADVISE = hasattr(os, "posix_fadvise")


def _pwritev(fd: int, views: list[memoryview], offset: int) -> int:
    """Write some of ``views`` at ``offset``; return how many bytes went (maybe fewer)."""
    if hasattr(os, "pwritev"):
        return os.pwritev(fd, views, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows: no pwrite; one writer thread, so no race
    return os.write(fd, views[0])


def part_path(final: Path) -> Path:
    """Return the ``.part`` path chunks go to before ``final`` exists."""
    return final.with_name(final.name + PART_SUFFIX)


def disk_error(exc: OSError, path: Path, doing: str) -> DiskError:
    """Return a ``DiskError`` for a refused file operation (full, read-only, not writable)."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = f"disk full ({reason})"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = f"not writable ({reason})"
    err = DiskError(f"cannot {doing} {path}: {reason}")
    err.errno = exc.errno
    err.strerror = exc.strerror
    err.filename = str(path)
    return err


class PartFile:
    """The ``.part`` file of one download, with its running SHA-256 and its writer thread."""

    def __init__(self, final: Path, *, checksum: bool = True) -> None:
        self.final = final
        self.part = part_path(final)
        self.size = 0  # bytes on disk in .part; only the writer thread changes it
        self.head = b""  # the first bytes, for the FLV signature check
        self._checksum = checksum
        self._hash = hashlib.sha256() if checksum else None
        self._fd = -1
        self._pending: asyncio.Future[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="aioopentok-download")

    # --- scheduling ---------------------------------------------------------------------------

    async def _run(self, doing: str, fn: Callable[..., _T], *args: object) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except DownloadError:
            raise
        except OSError as exc:
            raise disk_error(exc, self.part, doing) from exc

    async def aclose(self) -> None:
        """Close the fd once the job still running (at most one chunk) is done.

        Awaited even when the download was cancelled, so that a call made right after finds
        the ``.part`` complete and closed, never still being written by this one.
        """
        done = self._executor.submit(self._close_fd)
        self._executor.shutdown(wait=False)
        try:
            await asyncio.shield(asyncio.wrap_future(done))
        except OSError as exc:  # the data was fsynced already, or the download failed anyway
            logger.debug("closing %s: %s", self.part, exc)

    def _close_fd(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    # --- opening and resuming -----------------------------------------------------------------

    async def open(self) -> int:
        """Open (or create) ``.part``; re-hash what an earlier call left there. Return its size."""
        size = await self._run("open", self._open)
        # The FLV header first: bytes that are not an FLV file are thrown away by the caller,
        # so re-reading gigabytes of them for a digest would be wasted. Without a digest, the
        # header is all that is read.
        todo = min(size, FLV_HEADER_SIZE)
        if self._hash is not None and flv_prefix_ok(await self._run("read", self._head, todo)):
            todo = size
        done = 0
        while done < todo:  # one chunk per job: cancellable, and the loop stays free
            done += await self._run("read", self._rehash, done, min(_REHASH_CHUNK, todo - done))
        self.size = size
        return size

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(self.part, flags, 0o644)
        return os.fstat(self._fd).st_size

    def _head(self, length: int) -> bytes:
        return os.pread(self._fd, length, 0)

    def _rehash(self, offset: int, length: int) -> int:
        data = os.pread(self._fd, length, offset)
        if not data:
            raise DownloadError(f"{self.part} shrank while being resumed")
        if self._hash is not None:
            self._hash.update(data)
        if offset < FLV_HEADER_SIZE:
            self.head = (self.head + data)[:FLV_HEADER_SIZE]
        return len(data)

    async def restart(self) -> None:
        """Throw away what ``.part`` holds and start again from byte 0."""
        await self.drain()
        await self._run("truncate", self._truncate)

    def _truncate(self) -> None:
        os.ftruncate(self._fd, 0)
        self.size = 0
        self.head = b""
        self._hash = hashlib.sha256() if self._checksum else None

    # --- writing ------------------------------------------------------------------------------

    async def write(self, pieces: Sequence[bytes]) -> None:
        """Start writing ``pieces`` after the previous write; wait only for that previous one.

        So one chunk is on its way to disk while the next is read from the network.
        """
        await self.drain()
        loop = asyncio.get_running_loop()
        self._pending = loop.run_in_executor(self._executor, self._write, list(pieces))

    async def drain(self) -> None:
        """Wait for the write in flight, if any (a disk error surfaces here)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            try:
                await pending
            except OSError as exc:
                raise disk_error(exc, self.part, "write") from exc

    def _write(self, pieces: list[bytes]) -> None:
        if self._hash is not None:
            for piece in pieces:
                self._hash.update(piece)
        if len(self.head) < FLV_HEADER_SIZE:
            self.head = (self.head + b"".join(p[:FLV_HEADER_SIZE] for p in pieces))[
                :FLV_HEADER_SIZE
            ]
        before = offset = self.size
        views = [memoryview(p) for p in pieces if p]
        while views:
            n = _pwritev(self._fd, views, offset)
            offset += n
            self.size = offset
            while views and n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            if n:
                views[0] = views[0][n:]
        if offset // _WRITEBACK_EVERY != before // _WRITEBACK_EVERY and _HAVE_FADVISE:
            start = (before // _WRITEBACK_EVERY) * _WRITEBACK_EVERY
            os.posix_fadvise(self._fd, start, offset - start, os.POSIX_FADV_DONTNEED)

    # --- finishing ----------------------------------------------------------------------------

    async def finish(self, expected_size: int | None) -> str | None:
        """Verify, fsync, and rename ``.part`` to the final name atomically; return the SHA-256.

        The digest is None when the file was opened with ``checksum=False``.

        Raises:
            DownloadError: the size differs from ``expected_size`` or the file is not FLV; the
                ``.part`` is deleted then, as resuming it could never succeed.
        """
        await self.drain()
        return await self._run("finish", self._finish, expected_size)

    def _finish(self, expected_size: int | None) -> str | None:
        problem = None
        if expected_size is not None and self.size != expected_size:
            problem = f"size {self.size} differs from the {expected_size} bytes announced"
        elif len(self.head) < FLV_HEADER_SIZE or not flv_prefix_ok(self.head):
            problem = f"not an FLV file (starts with {self.head!r})"
        if problem is not None:
            self._discard()
            raise DownloadError(f"{self.final.name}: {problem}")
        os.fsync(self._fd)  # the data is on disk before the name is: no short file after a crash
        self._close_fd()
        os.replace(self.part, self.final)
        _fsync_dir(self.final.parent)  # and the rename itself survives a power cut
        return None if self._hash is None else self._hash.hexdigest()

    async def discard(self) -> None:
        """Delete ``.part`` (its bytes are known to be wrong)."""
        await self.drain()
        await self._run("delete", self._discard)

    def _discard(self) -> None:
        self._close_fd()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.part)
        self.size = 0


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return  # Windows cannot open a directory; NTFS journals the rename itself
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
