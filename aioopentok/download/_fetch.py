"""One video's transfer: ranged requests until every byte is on disk, then the atomic finish.

Strategy: a ``VideoJob`` asks for the first part (``Range: bytes=0-<part_size-1>``); the reply's
``Content-Range`` tells the size, and a video larger than one part is then fetched by up to
``connections`` workers pulling parts from one queue, each request holding a slot of the
Client-wide storage budget (``StorageLink.slots``). A storage that ignores ``Range`` (200) is
read as one stream. Every reply is judged by ``_storage.judge`` (pure); this module only acts:
stream, refresh the signed URL (single flight: one API call however many parts saw the 403),
back off and resume the part from its last byte, restart, or fail with storage's reason.
Completed parts go into the ranges record (``_partfile``), so a rerun fetches only the rest.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from pathlib import Path

from .._errors import DownloadError, RequestError, ResponseError, disk_error
from .._http import safe_url
from .._storage import ERROR_BODY_CAP, Action, Asked, Verdict, judge
from ._body import Cursor, first_error, read_capped, write_body
from ._link import SignedUrl, StorageLink
from ._options import DownloadOptions, DownloadResult
from ._partfile import PartFile, flv_prefix_ok
from ._ranges import RangeSet, Record, split

__all__ = ["VideoJob"]

_MAX_RESTARTS = 3  # the file changed on storage this often during one call: give up
logger = logging.getLogger("aioopentok")


class _Restart(Exception):
    """The file changed on storage (or ignored Range mid-way): start the video over."""


class _Transient(Exception):
    """A failure worth a retry of the same part after back-off."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class VideoJob:
    """The state of one video's download across its parts and requests."""

    def __init__(
        self,
        link: StorageLink,
        archive_id: str,
        video_id: str,
        token: str,
        final: Path,
        options: DownloadOptions,
    ) -> None:
        self.link = link
        self.archive_id = archive_id
        self.video_id = video_id
        self.final = final
        self.options = options
        self.url = SignedUrl(lambda: link.sign(archive_id, video_id, token), video_id)
        self.total: int | None = None
        self.etag: str | None = None
        self.done = RangeSet()  # complete parts (segmented) or the prefix (one stream)
        self.segmented = False
        self.resumed = False
        self.received = 0
        self.peak = 0
        self._active = 0
        self._queue: collections.deque[tuple[int, int]] = collections.deque()
        self._group: asyncio.TaskGroup | None = None

    # --- the whole video ----------------------------------------------------------------------

    async def run(self) -> DownloadResult:
        await self.url.fetch()
        have = _file_size(self.final)
        if have is not None and have == await self._remote_size():
            logger.info("%s: complete on disk (%d bytes), skipped", self.final, have)
            part = PartFile(self.final)
            await part.discard()  # a .part beside a complete file can only be stale
            await part.aclose()
            return DownloadResult(
                self.archive_id,
                self.video_id,
                self.final,
                size=have,
                etag=self.etag,
                skipped=True,
            )
        part = PartFile(self.final, checksum=self.options.checksum)
        try:
            await self._resume(part)
            restarts = 0
            while True:
                try:
                    await self._fetch(part)
                    break
                except _Restart as exc:
                    restarts += 1
                    if restarts > _MAX_RESTARTS:
                        raise DownloadError(f"{self.video_id}: {exc}, {restarts} times") from exc
                    logger.info("%s: %s; starting over", self.video_id, exc)
                    await self._start_over(part)
            digest = await part.finish(self.total)
        except BaseException:
            # A resume can use the bytes the record lists, or (one stream) the prefix on disk;
            # when there are none, leave nothing behind (no empty .part after a failure).
            usable = part.written.prefix()
            if self.segmented and self.total is not None:
                with contextlib.suppress(DownloadError):  # the failure in hand is the news
                    part.note_progress(self.total, self.etag)  # record every byte written
                    await part.settle()
                usable = part.written.size
            if not usable:
                await part.discard()
            raise
        finally:
            await self.url.aclose()  # a refresh still running must not outlive the call
            await part.aclose()
        return DownloadResult(
            self.archive_id,
            self.video_id,
            self.final,
            size=self.total or self.done.prefix(),
            sha256=digest,
            etag=self.etag,
            resumed=self.resumed,
            connections=self.peak,
        )

    async def _resume(self, part: PartFile) -> None:
        """Take what an earlier call left: the record's parts, else the ``.part``'s prefix."""
        size, record = await part.open()
        if record is not None:
            self.total, self.etag, self.segmented = record.size, record.etag, True
            done = record.done
        else:
            done = RangeSet([(0, size)])
        if done.size:
            await part.adopt(done)
            if done.prefix() and not flv_prefix_ok(part.head):
                await self._start_over(part)  # someone else's bytes: they can never verify
                return
            await part.catch_up()  # only now: re-reading someone else's gigabytes is waste
            self.done = RangeSet(done)
            self.resumed = True
            self.received = done.size

    async def _start_over(self, part: PartFile) -> None:
        self._queue.clear()  # parts of the old plan: the new one is made from the first reply
        with contextlib.suppress(DownloadError):
            await part.settle()  # no save of the old plan may land after the truncate
        await part.restart()
        self.total = self.etag = None
        self.done = RangeSet()
        self.segmented = self.resumed = False
        self.received = 0

    async def _remote_size(self) -> int | None:
        """Return the size on storage from a 1-byte GET (a HEAD is refused on a GET URL)."""
        asked = Asked(0, 0)
        try:
            async with self.link.slots:
                response = await self.link.open(
                    self.url.value, asked.range_header(), self.options.timeout
                )
                await response.aclose()
        except (RequestError, ResponseError):
            return None  # the GET that follows has the retries
        verdict = judge(response.status, response.headers, b"", asked)
        if verdict.action is Action.STREAM and not verdict.whole:
            self.etag = verdict.etag
            return verdict.total
        if verdict.action is Action.STREAM and verdict.total is not None:
            return verdict.total  # a 200: its Content-Length is the size
        return None

    async def _fetch(self, part: PartFile) -> None:
        """Fetch what is missing: the rest of a recorded plan, or from the first part on."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                if self.segmented and self.total is not None:
                    missing = self.done.missing(self.total)
                    self._spawn(part, split(missing, self.options.part_size), 0)
                else:
                    start = self.done.prefix()
                    hi = None if self.options.connections == 1 else start + self.options.part_size
                    group.create_task(self._first(part, start, hi))
        except BaseExceptionGroup as group_error:
            # One part failed and the others were cancelled: report that part's reason.
            raise first_error(group_error, _Restart) from None
        finally:
            self._group = None

    def _spawn(self, part: PartFile, parts: list[tuple[int, int]], running: int) -> None:
        """Queue ``parts`` and start workers up to ``connections`` (``running`` exist)."""
        self._queue.extend(parts)
        assert self._group is not None
        for _ in range(min(self.options.connections - running, len(parts))):
            self._group.create_task(self._worker(part))

    async def _worker(self, part: PartFile) -> None:
        while self._queue:
            lo, hi = self._queue.popleft()
            await self._part(part, lo, hi)

    async def _first(self, part: PartFile, start: int, hi: int | None) -> None:
        """The first part: its reply tells the size; then it works the queue like the others."""
        await self._part(part, start, hi, first=True)
        if self.total is None and not self.segmented and hi is not None:
            # A 206 that did not tell the size ("bytes 0-N/*"): read on to the end.
            await self._part(part, self.done.prefix(), None)
        await self._worker(part)

    def _go_segmented(self, first_end: int) -> bool:
        """Whether the first reply shows a file worth more than the first part."""
        return self.total is not None and self.total > first_end and not self.segmented

    # --- one part -----------------------------------------------------------------------------

    async def _part(self, part: PartFile, lo: int, hi: int | None, *, first: bool = False) -> None:
        """Fetch ``[lo, hi)`` (to the end if ``hi`` is None), retrying what is transient."""
        pos, failures, best = lo, 0, lo
        while True:
            limit = hi if self.total is None or hi is None else min(hi, self.total)
            asked = Asked(pos, None if limit is None else limit - 1, self.total, self.etag)
            seen = self.url.generation
            if pos > lo:
                self.resumed = True  # this part goes on from bytes an earlier try wrote
            verdict: Verdict | None = None
            cursor = Cursor(pos)
            try:
                async with self.link.slots:
                    self._active += 1
                    self.peak = max(self.peak, self._active)
                    try:
                        verdict, pos = await self._request(part, asked, first, cursor)
                    finally:
                        self._active -= 1
            except (RequestError, ResponseError, _Transient) as exc:
                # ResponseError: a reply HTTP does not allow (a proxy's garbage): transient too.
                failure: Exception = exc
                pos = cursor.pos  # what did arrive stays: the retry starts after it
            else:
                if verdict.action is Action.COMPLETE:
                    break
                if pos > asked.start:
                    self.url.progressed()  # this URL works: its refusals start counting anew
                if verdict.action is Action.STREAM:
                    if verdict.whole:
                        lo, hi = 0, None  # the whole file came in this one stream
                    if self._reached_end(pos, hi):
                        break
                    failure = _Transient(f"body ended at byte {pos}")
                elif verdict.action is Action.REFRESH:
                    await self.url.refresh(seen, verdict)
                    continue
                elif verdict.action is Action.RESTART:
                    raise _Restart(verdict.reason)
                elif verdict.action is Action.FAIL:
                    raise self._error(verdict)
                else:
                    failure = _Transient(verdict.reason, verdict.retry_after)
            if pos > best:
                best, failures = pos, 0
                self.url.progressed()
            failures += 1
            await self._back_off(failures, failure, verdict, pos)
        if self.segmented and hi is not None:
            assert self.total is not None
            self.done.add(lo, min(hi, self.total))
            part.note_progress(self.total, self.etag)
        else:
            self.done.add(lo, pos)

    def _reached_end(self, pos: int, hi: int | None) -> bool:
        """Whether a stream that ended at ``pos`` finished its part (or, open, the file)."""
        if hi is not None:
            return pos >= (hi if self.total is None else min(hi, self.total))
        return self.total is None or pos >= self.total  # no size told: the end is the end

    async def _back_off(
        self, failures: int, failure: Exception, verdict: Verdict | None, pos: int
    ) -> None:
        policy = self.link.retry
        if failures > policy.retries:
            if verdict is not None and verdict.action is Action.RETRY:
                raise self._error(verdict, f"gave up after {failures} tries at byte {pos}")
            raise DownloadError(
                f"{self.video_id}: gave up after {failures} failed tries in a row at byte "
                f"{pos}: {failure}"
            ) from failure
        retry_after = getattr(failure, "retry_after", None)
        delay = policy.delay(failures - 1, retry_after, self.link.jitter())
        if delay is None:
            raise DownloadError(
                f"{self.video_id}: storage asked to wait {retry_after:.0f} s, longer than "
                f"max_retry_after ({policy.max_retry_after:.0f} s); call again later",
                status=None if verdict is None else verdict.status,
                code=None if verdict is None else verdict.code,
            ) from failure
        logger.info("%s: %s; resuming at byte %d in %.2f s", self.video_id, failure, pos, delay)
        await self.link.sleep(delay)

    def _error(self, verdict: Verdict, detail: str | None = None) -> DownloadError:
        where = safe_url(self.url.value)
        text = f"{self.video_id}: {verdict.reason} for {where}"
        if detail:
            text += f"; {detail}"
        return DownloadError(
            text, status=verdict.status, code=verdict.code, message=verdict.message
        )

    async def _request(
        self, part: PartFile, asked: Asked, first: bool, cursor: Cursor
    ) -> tuple[Verdict, int]:
        """Send one request for ``asked``; stream its body. Return the verdict and position."""
        response = await self.link.open(self.url.value, asked.range_header(), self.options.timeout)
        try:
            body = b""
            if response.status not in (200, 206):
                body = await read_capped(response, ERROR_BODY_CAP)
            verdict = judge(response.status, response.headers, body, asked)
            if verdict.action is not Action.STREAM:
                if verdict.action is Action.COMPLETE:
                    self.total = verdict.total
                return verdict, asked.start
            pos = asked.start
            if verdict.whole:  # storage ignored Range: the body is the whole file
                if self.segmented:
                    raise _Restart("storage ignored Range")
                if pos:
                    await self._start_over(part)
                    pos = 0
            if self.total is None:
                self.total = verdict.total
            if self.etag is None:
                self.etag = verdict.etag
            if first and not verdict.whole and asked.end is not None:
                first_end = asked.end + 1
                if self._go_segmented(first_end):
                    assert self.total is not None
                    self.segmented = True
                    await part.start_segmented(Record(self.total, self.etag, RangeSet(self.done)))
                    rest = split([(first_end, self.total)], self.options.part_size)
                    self._spawn(part, rest, 1)
            cursor.pos = pos
            await write_body(
                response, part, cursor, self.options.chunk_size, self.total, self._got,
                self.video_id,
            )  # fmt: skip
            return verdict, cursor.pos
        finally:
            await response.aclose()

    def _got(self, size: int) -> None:
        self.received += size
        self._progress()

    def _progress(self) -> None:
        if self.options.progress is not None:
            self.options.progress(self.video_id, self.received, self.total)


def _file_size(path: Path) -> int | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise disk_error(exc, path, "inspect") from exc
    return stat.st_size if path.is_file() else None
