"""The local side of a download: the ``.part`` file, its ranges record, the atomic finish.

Strategy: every blocking file operation of one download (open, positional writes, SHA-256,
fdatasync, the record, rename, close) runs on that download's own one-thread executor, so they
happen in the order submitted and the event loop awaits at most one chunk of file I/O at a time.
Parts arrive in any order and are written at their offsets (``os.pwritev`` straight from the
network's buffers); the SHA-256 is computed in *file order*: bytes written at the hashed
frontier are hashed from memory, and when a gap before them fills, the bytes after it are read
back (page cache) and hashed as the completed prefix grows. The ranges record
(``<final>.part.ranges``) is written atomically, after an fdatasync of the ``.part``, so it
never claims bytes the disk may not have. Every ``OSError`` of the disk becomes a ``DiskError``
here, in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import glob
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from .._errors import DiskError, DownloadError, disk_error
from ._ranges import RECORD_SUFFIX, RangeSet, Record, decode_record, encode_record
from ._threads import SerialQueue

__all__ = [
    "FLV_HEADER_SIZE",
    "PART_SUFFIX",
    "PartFile",
    "flv_prefix_ok",
    "part_path",
    "record_path",
]

# protocol.md, "FLV files": "FLV", version 0x01, a flags byte, then the header size 9 (4 bytes BE).
FLV_HEADER_SIZE = 9
_FLV_START = b"FLV\x01"
_FLV_SIZE_FIELD = b"\x00\x00\x00\x09"
PART_SUFFIX = ".part"
_READBACK_CHUNK = 4 * 1024 * 1024
_T = TypeVar("_T")
logger = logging.getLogger("aioopentok")


def flv_prefix_ok(head: bytes) -> bool:
    """Return whether ``head`` (the first bytes, maybe fewer than 9) can start an FLV file."""
    return _FLV_START.startswith(head[:4]) and _FLV_SIZE_FIELD.startswith(head[5:9])


def part_path(final: Path) -> Path:
    """Return the ``.part`` path bytes go to before ``final`` exists."""
    return final.with_name(final.name + PART_SUFFIX)


def record_path(final: Path) -> Path:
    """Return the ranges record's path, beside the ``.part``."""
    return final.with_name(final.name + PART_SUFFIX + RECORD_SUFFIX)


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    """Read into ``view`` at ``offset``; return how many bytes came."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, [view], offset)
    data = os.pread(fd, len(view), offset)  # Windows: no preadv
    view[: len(data)] = data
    return len(data)


def _pwritev(fd: int, views: list[memoryview], offset: int) -> int:
    if hasattr(os, "pwritev"):
        return os.pwritev(fd, views, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows: no pwrite; one writer thread, so no race
    return os.write(fd, views[0])


class PartFile:
    """The ``.part`` file of one download: positional writes, ordered SHA-256, its record."""

    def __init__(self, final: Path, *, checksum: bool = True) -> None:
        self.final = final
        self.part = part_path(final)
        self.record = record_path(final)
        self.written = RangeSet()  # bytes on disk; only the writer thread changes it
        self.head = b""  # the first bytes, for the FLV header check
        self.existed = False  # a .part was there before this download
        self._checksum = checksum
        self._hash = hashlib.sha256() if checksum else None
        self._hashed = 0  # the hash covers [0, _hashed)
        self._fd = -1
        self._queue = SerialQueue()  # this file's jobs, in order, on the shared threads
        # The record's fdatasync waits for the disk; on its own thread, and never awaited by a
        # part, it holds up no write and no request (benchmarks/README.md, segmented).
        self._recorder = SerialQueue()
        self._wanted = self._saved = 0
        self._saving: asyncio.Future[None] | None = None
        self._record_of: tuple[int, str | None] = (0, None)
        self._record_error: DiskError | None = None
        self._readback: memoryview | None = None

    # --- scheduling ---------------------------------------------------------------------------

    async def _run(self, doing: str, fn: Callable[..., _T], *args: object) -> _T:
        try:
            return await asyncio.wrap_future(self._queue.submit(fn, *args))
        except DownloadError:
            raise
        except OSError as exc:
            raise disk_error(exc, self.part, doing) from exc

    def submit(self, offset: int, pieces: Sequence[bytes]) -> asyncio.Future[None]:
        """Queue a write of ``pieces`` at ``offset``; the caller awaits it before the next one.

        So each stream has one chunk on its way to disk while it reads the next.
        """
        return asyncio.wrap_future(self._queue.submit(self._write, offset, list(pieces)))

    async def wait(self, pending: asyncio.Future[None] | None) -> None:
        """Await a write from ``submit``; a disk error surfaces here as a ``DiskError``."""
        if pending is None:
            return
        try:
            await pending
        except OSError as exc:
            raise disk_error(exc, self.part, "write") from exc

    async def aclose(self) -> None:
        """Close the fd once the job still running (at most one chunk) is done."""
        saving = self._recorder.submit(lambda: None)  # after any record save still running
        with contextlib.suppress(OSError):
            await asyncio.shield(asyncio.wrap_future(saving))
        done = self._queue.submit(self._close_fd)
        try:
            await asyncio.shield(asyncio.wrap_future(done))
        except OSError as exc:  # the data was fsynced already, or the download failed anyway
            logger.debug("closing %s: %s", self.part, exc)

    def _close_fd(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    # --- opening and resuming -----------------------------------------------------------------

    async def open(self) -> tuple[int, Record | None]:
        """Open (or create) ``.part``; return its size and its ranges record, if valid."""
        return await self._run("open", self._open)

    def _open(self) -> tuple[int, Record | None]:
        self.existed = self.part.exists()
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(self.part, flags, 0o644)
        size = os.fstat(self._fd).st_size
        try:
            data = self.record.read_bytes()
        except FileNotFoundError:
            return size, None  # a .part of one stream: its bytes are a prefix
        record = decode_record(data)
        if record is None or record.size != size:
            # A record says the .part was written by ranges, so it may have holes; one that
            # does not describe it cannot say where they are: start over, never guess.
            self._truncate()
            return 0, None
        return size, record

    async def adopt(self, done: RangeSet) -> None:
        """Take ``done`` as already on disk (a prefix or a record); read its FLV header."""
        await self._run("read", self._adopt, done)

    async def catch_up(self) -> None:
        """Hash the adopted prefix, in slices (so a cancel is prompt and the loop stays free)."""
        while await self._run("read", self._catch_up, _READBACK_CHUNK * 4):
            pass

    def _adopt(self, done: RangeSet) -> None:
        self.written = RangeSet(done)
        if done.prefix():
            self.head = os.pread(self._fd, FLV_HEADER_SIZE, 0)

    async def restart(self) -> None:
        """Throw away what ``.part`` and its record hold and start again from byte 0."""
        await self._run("truncate", self._truncate)

    def _truncate(self) -> None:
        # The data first: killed in between, a record that no longer fits the .part makes
        # the rerun start over; the other order would leave a full-size .part with holes
        # and no record, taken for a prefix.
        os.ftruncate(self._fd, 0)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.record)
        self.written = RangeSet()
        self.head = b""
        self._hash = hashlib.sha256() if self._checksum else None
        self._hashed = 0

    async def start_segmented(self, record: Record) -> None:
        """Write the record, then size the file: no byte lands past a prefix without a record."""
        await self._run("prepare", self._start_segmented, record)

    def _start_segmented(self, record: Record) -> None:
        self._save_record(record, sync_data=False)
        try:
            os.posix_fallocate(self._fd, 0, record.size)  # a full disk fails now, not at 90%
        except (AttributeError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            os.ftruncate(self._fd, record.size)  # no fallocate here (tmpfs, Windows, macOS)

    def note_progress(self, total: int, etag: str | None) -> None:
        """Have the record brought up to every byte written so far, in the background.

        The record lists the byte ranges on disk (whole parts, and the written start of parts
        still arriving), so a rerun after ``kill -9`` asks only for the rest. Saves run one at a
        time on their own thread, so a part never waits for the disk; calls during a save
        share the next one. A save's failure surfaces at the next call or at ``settle``.
        """
        self._raise_record_error()
        self._record_of = (total, etag)
        self._wanted += 1
        if self._saving is None:
            self._saving = asyncio.ensure_future(self._save_loop())

    def _raise_record_error(self) -> None:
        if self._record_error is not None:
            error, self._record_error = self._record_error, None
            raise error

    async def _save_loop(self) -> None:
        try:
            while self._saved < self._wanted:
                target = self._wanted
                total, etag = self._record_of
                # Taken before the fdatasync starts: every byte it lists is then on disk.
                record = Record(total, etag, RangeSet(self.written))
                try:
                    await asyncio.wrap_future(
                        self._recorder.submit(self._save_record, record, True)
                    )
                except OSError as exc:
                    self._record_error = disk_error(exc, self.record, "record")
                    return
                self._saved = target
        finally:
            self._saving = None

    async def settle(self) -> None:
        """Wait until the record holds what was noted; raise a save's failure."""
        while self._saving is not None:
            await asyncio.shield(self._saving)
        self._raise_record_error()

    def _save_record(self, record: Record, sync_data: bool) -> None:
        if sync_data:
            os.fdatasync(self._fd) if hasattr(os, "fdatasync") else os.fsync(self._fd)
        # One temporary name per thread: the first record and a background save never share.
        tmp = self.record.with_name(f"{self.record.name}.tmp{threading.get_ident()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, encode_record(record))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.record)

    # --- writing ------------------------------------------------------------------------------

    def _write(self, offset: int, pieces: list[bytes]) -> None:
        size = sum(len(p) for p in pieces)
        if (
            offset < FLV_HEADER_SIZE
            and len(self.head) < FLV_HEADER_SIZE
            and offset <= len(self.head)
        ):
            joined = b"".join(p[:FLV_HEADER_SIZE] for p in pieces)
            self.head = (self.head[:offset] + joined)[:FLV_HEADER_SIZE]
        at = offset
        views = [memoryview(p) for p in pieces if p]
        while views:
            n = _pwritev(self._fd, views, at)
            at += n
            while views and n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            if n:
                views[0] = views[0][n:]
        if self._hash is not None and offset == self._hashed:
            for piece in pieces:
                self._hash.update(piece)
            self._hashed += size
        self.written.add(offset, offset + size)
        if self._hash is not None:
            while self._catch_up(None):
                pass

    def _readback_buffer(self) -> memoryview:
        # One buffer per file, reused: a fresh 4 MiB bytes per read costs a page fault per
        # 4 KiB (measured: 8 connections uncapped, 2.4 s -> 1.x s of CPU per GiB).
        if self._readback is None:
            self._readback = memoryview(bytearray(_READBACK_CHUNK))
        return self._readback

    def _catch_up(self, limit: int | None) -> bool:
        """Hash written bytes after the frontier (read back); return whether any were."""
        if self._hash is None:
            return False
        for start, end in self.written:
            if start <= self._hashed < end:
                todo = end - self._hashed if limit is None else min(limit, end - self._hashed)
                done = 0
                view = self._readback_buffer()
                while done < todo:
                    n = _pread_into(self._fd, view[: min(_READBACK_CHUNK, todo - done)],
                                    self._hashed)  # fmt: skip
                    if not n:
                        raise DownloadError(f"{self.part} shrank while being written")
                    self._hash.update(view[:n])
                    self._hashed += n
                    done += n
                return True
        return False

    # --- finishing ----------------------------------------------------------------------------

    async def finish(self, expected_size: int | None) -> str | None:
        """Verify, fsync, and rename ``.part`` to the final name atomically; return the SHA-256.

        Raises:
            DownloadError: the bytes do not make the announced file, or are not FLV; the
                ``.part`` is deleted then, as resuming it could never succeed.
        """
        await self.settle()  # no save in flight may rewrite the record we remove
        return await self._run("finish", self._finish, expected_size)

    def _finish(self, expected_size: int | None) -> str | None:
        size = os.fstat(self._fd).st_size
        problem = None
        if expected_size is not None and size != expected_size:
            problem = f"size {size} differs from the {expected_size} bytes announced"
        elif self.written.prefix() != size:
            problem = f"bytes missing: {self.written.size} of {size} on disk"
        elif len(self.head) < FLV_HEADER_SIZE or not flv_prefix_ok(self.head):
            problem = f"not an FLV file (starts with {self.head!r})"
        elif self._hash is not None and self._hashed != size:
            problem = f"hashed {self._hashed} of {size} bytes"
        if problem is not None:
            self._discard()
            raise DownloadError(f"{self.final.name}: {problem}")
        os.fsync(self._fd)  # the data is on disk before the name is: no short file after a crash
        self._close_fd()
        os.replace(self.part, self.final)
        self._remove_record()
        _fsync_dir(self.final.parent)  # and the rename itself survives a power cut
        return None if self._hash is None else self._hash.hexdigest()

    def _remove_record(self) -> None:
        """Delete the record and any temporary one a killed process left mid-save."""
        for path in (self.record, *self.final.parent.glob(f"{glob.escape(self.record.name)}.tmp*")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    async def discard(self) -> None:
        """Delete ``.part`` and its record (their bytes are wrong, or of no use to a resume)."""
        with contextlib.suppress(DiskError):
            await self.settle()  # no save in flight may rewrite the record we remove
        await self._run("delete", self._discard)

    def _discard(self) -> None:
        self._close_fd()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.part)
        self._remove_record()
        self.written = RangeSet()


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return  # Windows cannot open a directory; NTFS journals the rename itself
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
