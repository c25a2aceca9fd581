"""The export loop: every archive of the input to ``dest``, journaled, resumable, paced.

Strategy: the input is consumed lazily, one pair at a time; at most ``2 * concurrency`` archives
are open at once (so memory does not grow with the input), and every request they make (the
manifest, each video's URL call and transfer, the delete) takes a slot of the one job-wide
``Pace``. An archive already ``done`` in the journal costs no request at all. An archive is
recorded ``done`` only after its videos (fsynced and renamed by ``download_video``) and
``manifest.json`` (``_manifest``) are durable. What a failure does is ``_failures.classify``'s
call: the loop only retries, records, or stops everything (``_Stop``) and re-raises the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from .._errors import ConnectError, DiskError, InvalidArgumentError, NotFoundError, disk_error
from .._models import Role
from . import _journal as j
from ._failures import Verdict, classify, describe, retry_after_of
from ._interface import DownloadResultLike, ExportClient
from ._journal import Journal
from ._list import Shard, aiter_pairs, is_safe_component
from ._manifest import (
    FileFacts,
    file_facts,
    fsync_dir,
    manifest_document,
    read_manifest,
    write_manifest,
)
from ._outcome import (
    DELETED,
    DONE,
    FAILED,
    SKIPPED,
    ArchiveOutcome,
    ExportProgress,
    ExportResult,
    Tally,
)
from ._pace import Pace
from ._verify import verify_file

__all__ = ["ExportProgressCallback"]

ExportProgressCallback = Callable[[ExportProgress], None]
_T = TypeVar("_T")
_TICK = 0.1  # seconds between byte-progress snapshots
_SLOW_DOWN_TRIES = 12  # 429s in a row for one call before its archive fails (this run)
_UNREACHABLE_IN_A_ROW = 16  # archives failing with no connection at all: the job stops
_YIELD_EVERY = 1000  # input lines between turns of the event loop
logger = logging.getLogger("aioopentok")


class _Stop(Exception):
    """Raised out of an archive task: the whole job must stop (``cause`` says why)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Job:
    def __init__(
        self,
        client: ExportClient,
        dest: Path,
        journal: Journal,
        shard: Shard,
        *,
        concurrency: int,
        delete_after_verify: bool,
        progress: ExportProgressCallback | None,
        total: int | None,
        retries: int,
        backoff: float,
        sleep: Callable[[float], Awaitable[object]],
        clock: Callable[[], float],
    ) -> None:
        self.client, self.dest, self.journal, self.shard = client, dest, journal, shard
        self.concurrency = concurrency
        self.delete = delete_after_verify
        self.progress, self.total = progress, total
        self.retries, self.backoff = retries, backoff
        self.sleep, self.clock = sleep, clock
        self.pace = Pace(concurrency, clock=clock, sleep=sleep)
        self.tally = Tally(clock, total, journal.path)
        self._last_tick = 0.0
        self._fatal: BaseException | None = None
        self._unreachable = 0  # archives in a row that failed for want of any connection
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the loop ---------------------------------------------------------------------------

    async def run(self, items: Iterable[Any] | AsyncIterable[Any]) -> ExportResult:
        window = asyncio.Semaphore(max(2 * self.concurrency, 4))
        tasks = self._tasks
        open_ids: set[str] = set()
        listed = read = 0
        if self.total is not None:  # known before the first request: a kill keeps "pending" true
            self.journal.set_listed(self.total)
        try:
            async with contextlib.aclosing(aiter_pairs(items)) as pairs:
                async for archive_id, session_id in pairs:
                    read += 1
                    if read % _YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # lines that start nothing must not starve transfers
                    if self._fatal is not None:
                        break
                    if not self.shard.owns(archive_id):
                        continue
                    if archive_id in open_ids:
                        continue  # listed twice: the first one is on it
                    record = self.journal.lookup(archive_id)
                    if record is None or record.run != self.journal.run:
                        listed += 1  # a repeat already dealt with in this run counts once
                    job = self._plan(archive_id, session_id, record)
                    if job is None:
                        continue
                    await window.acquire()
                    if self._fatal is not None:
                        window.release()
                        break
                    open_ids.add(archive_id)
                    task = asyncio.create_task(job())

                    def finished(t: asyncio.Task[None], aid: str = archive_id) -> None:
                        tasks.discard(t)
                        open_ids.discard(aid)
                        window.release()
                        error = None if t.cancelled() else t.exception()
                        if error is not None:
                            self._abort(error)  # not an archive's failure: a bug, stop

                    tasks.add(task)
                    task.add_done_callback(finished)
            while tasks:
                await asyncio.wait(set(tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        if self._fatal is not None:
            raise self._fatal
        self.journal.set_listed(listed)
        return self.tally.result(self.pace.rate_limited, self.pace.lowest)

    def _plan(
        self, archive_id: str, session_id: str, record: j.ArchiveRecord | None
    ) -> Callable[[], Coroutine[Any, Any, None]] | None:
        """Return the work an input pair needs now, or None (done before, or seen this run)."""
        if record is not None and record.run == self.journal.run and record.status != j.PENDING:
            return None  # listed twice, already dealt with in this run
        if record is not None and record.status == j.DELETED:
            self._outcome(ArchiveOutcome(archive_id, session_id, SKIPPED, record.videos, 0))
            return None
        if record is not None and record.status == j.DONE:
            if not self.delete:
                self._outcome(
                    ArchiveOutcome(archive_id, session_id, SKIPPED, record.videos, record.bytes)
                )
                return None
            return lambda: self._guard(archive_id, session_id, self._delete_done)
        return lambda: self._guard(archive_id, session_id, self._export)

    async def _guard(
        self, archive_id: str, session_id: str, work: Callable[[str, str], Awaitable[None]]
    ) -> None:
        """Run one archive's work; record its failure, or stop the job on a fatal one."""
        try:
            await work(archive_id, session_id)
        except _Stop as stop:
            self._abort(stop.cause)
        except _DeleteFailed as failed:  # the export stands (done); the next run deletes
            reason = f"delete failed: {describe(failed.cause)}"
            logger.info("archive %s: %s", archive_id, reason)
            self._outcome(ArchiveOutcome(archive_id, session_id, FAILED, error=reason))
        except Exception as exc:
            verdict = classify(exc)
            if verdict in (Verdict.ABORT, Verdict.STOP):
                self._abort(exc)
                return
            if isinstance(exc, ConnectError):
                self._unreachable += 1
                if self._unreachable >= _UNREACHABLE_IN_A_ROW:
                    self._abort(exc)  # the service is down for everyone: fail nothing more
                    return
            reason = describe(exc)
            logger.info("archive %s failed: %s", archive_id, reason)
            try:
                self.journal.finish(archive_id, session_id, j.FAILED, error=reason)
            except DiskError as full:  # the journal's disk is full too: stop, as for files
                self._abort(full)
                return
            self._outcome(ArchiveOutcome(archive_id, session_id, FAILED, error=reason))

    def _abort(self, exc: BaseException) -> None:
        """Stop the job: remember why, cancel every other archive (they stay ``pending``)."""
        if self._fatal is None:
            self._fatal = exc
            current = asyncio.current_task()
            for task in self._tasks:
                if task is not current:
                    task.cancel()

    # --- one archive ------------------------------------------------------------------------

    async def _export(self, archive_id: str, session_id: str) -> None:
        if not is_safe_component(archive_id):
            raise InvalidArgumentError(f"archive ID {archive_id[:80]!r} refused: unsafe file name")
        token = self.client.generate_token(session_id, Role.MODERATOR)
        self.journal.start(archive_id, session_id)
        archive = await self._call(lambda: self.client.get_archive_manifest(archive_id, token))
        video_ids = list(dict.fromkeys(video.id for video in archive.resources))
        for video_id in video_ids:
            if not is_safe_component(video_id):
                raise InvalidArgumentError(
                    f"video ID {video_id[:80]!r} refused: not a safe file name"
                )
        folder = self.dest / archive_id
        await self._disk(_make_folder, folder)
        facts = await self._videos(archive_id, token, folder, video_ids)
        document = manifest_document(archive, session_id, facts, now=datetime.now(UTC))
        await self._disk(write_manifest, folder, document)
        size = sum(f.size for f in facts.values())
        # Done before any delete: killed after the service deleted it, a rerun finds it done
        # (and a delete's 404 then means "gone"), never pending with a manifest call to fail.
        self.journal.finish(archive_id, session_id, j.DONE, videos=len(facts), size=size)
        if self.delete:
            await self._verify_and_delete(archive_id, session_id, token, folder, facts)
            return
        self._outcome(ArchiveOutcome(archive_id, session_id, DONE, len(facts), size))

    async def _videos(
        self, archive_id: str, token: str, folder: Path, video_ids: list[str]
    ) -> dict[str, FileFacts]:
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._video(archive_id, token, folder, video_id))
                    for video_id in video_ids
                ]
        except BaseExceptionGroup as eg:
            raise _worst(eg) from None
        return {facts.video_id: facts for facts in (t.result() for t in tasks)}

    async def _video(self, archive_id: str, token: str, folder: Path, video_id: str) -> FileFacts:
        path = folder / f"{video_id}.flv"
        seen: list[int] = []

        def on_bytes(_: str, done: int, total: int | None) -> None:
            if seen:
                self.tally.received += done - seen[0]
                seen[0] = done
                self._tick()
            else:
                seen.append(done)  # what was already on disk is not this run's traffic

        result: DownloadResultLike = await self._call(
            lambda: self.client.download_video(
                archive_id, video_id, token, path, progress=on_bytes, checksum=True
            )
        )
        digest = result.sha256
        if digest is None:  # skipped as complete: hash what is on disk
            digest = (await self._disk(file_facts, path))[1]
        etag = getattr(result, "etag", None)
        return FileFacts(video_id, result.size, digest, etag if isinstance(etag, str) else None)

    async def _delete_done(self, archive_id: str, session_id: str) -> None:
        """Delete an archive exported by an earlier run, once its files verify."""
        folder = self.dest / archive_id
        document = await self._disk(read_manifest, folder)
        if document is None:  # manifest.json gone: export it again before any delete
            await self._export(archive_id, session_id)
            return
        exported_with = str(document.get("session_id", ""))
        if exported_with != session_id:
            # A token of another session gets a 404, which a delete takes for "gone".
            raise InvalidArgumentError(
                f"not deleted: the LIST names session {session_id[:80]!r}, the archive was "
                f"exported with {exported_with[:80]!r}"
            )
        for video in document["videos"]:
            if not is_safe_component(str(video["id"])):  # manifest.json may have been edited
                raise InvalidArgumentError(f"not deleted: unsafe video ID {video['id']!r:.80}")
        facts = {
            v["id"]: FileFacts(v["id"], int(v["size"]), str(v["sha256"]), v.get("etag"))
            for v in document["videos"]
        }
        token = self.client.generate_token(session_id, Role.MODERATOR)
        await self._verify_and_delete(archive_id, session_id, token, folder, facts, earlier=True)

    async def _verify_and_delete(
        self,
        archive_id: str,
        session_id: str,
        token: str,
        folder: Path,
        facts: dict[str, FileFacts],
        *,
        earlier: bool = False,
    ) -> None:
        problems = []
        for video in facts.values():
            path = folder / f"{video.video_id}.flv"
            problem = await self._disk(verify_file, path, video, md5=True)
            if problem is not None:
                # The next run downloads it again, instead of skipping a file of the right size.
                await self._disk(path.unlink, missing_ok=True)
                problems.append(f"{path.name} {problem}")
        if problems:
            raise _VerifyFailed(f"not deleted: {'; '.join(problems)}")
        try:
            await self._call(lambda: self.client.delete_archive(archive_id, token))
        except NotFoundError:
            logger.info("archive %s: already gone at delete (a lost earlier reply)", archive_id)
        except Exception as exc:
            if classify(exc) in (Verdict.ABORT, Verdict.STOP):
                raise
            raise _DeleteFailed(exc) from exc  # on disk and done: only the delete is retried
        size = sum(f.size for f in facts.values())
        self.journal.finish(archive_id, session_id, j.DELETED, videos=len(facts), size=size)
        outcome = ArchiveOutcome(archive_id, session_id, DELETED, len(facts), size)
        self._outcome(outcome, exported_now=not earlier)

    # --- calls, disk, bookkeeping -------------------------------------------------------------

    async def _call(self, make: Callable[[], Awaitable[_T]]) -> _T:
        """Make one request in a pace slot; retry what is transient, slow down on 429."""
        retries = slow = 0
        while True:
            epoch = await self.pace.acquire()
            try:
                result = await make()
            except Exception as exc:
                verdict = classify(exc)
                if verdict is Verdict.SLOW_DOWN:
                    self.pace.release(
                        rate_limited=True, retry_after=retry_after_of(exc), epoch=epoch
                    )
                    slow += 1
                    if slow < _SLOW_DOWN_TRIES:
                        continue
                else:
                    self.pace.forget()
                if verdict in (Verdict.ABORT, Verdict.STOP):
                    raise _Stop(exc) from exc
                if verdict is Verdict.RETRY and retries < self.retries:
                    retries += 1
                    jitter = 0.5 + random.random() / 2
                    await self.sleep(self.backoff * 2 ** (retries - 1) * jitter)
                    continue
                raise
            except BaseException:
                self.pace.forget()
                raise
            self.pace.release(epoch=epoch)
            return result

    async def _disk(self, function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run a blocking file operation in a thread; a refused write stops the job."""
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except OSError as exc:
            raise _Stop(disk_error(exc, exc.filename or self.dest, "write")) from exc

    def _outcome(self, outcome: ArchiveOutcome, *, exported_now: bool = True) -> None:
        if outcome.status != FAILED:
            self._unreachable = 0
        self.tally.add(outcome, exported_now=exported_now)
        self._emit(outcome)

    def _emit(self, outcome: ArchiveOutcome | None) -> None:
        if self.progress is None:
            return
        try:
            self.progress(self.tally.snapshot(outcome, self.pace.state.limit))
        except Exception as exc:  # the caller's bug: stop, rather than blame an archive for it
            self._abort(exc)

    def _tick(self) -> None:
        now = self.clock()
        if self.progress is not None and now - self._last_tick >= _TICK:
            self._last_tick = now
            self._emit(None)


def _make_folder(folder: Path) -> None:
    """Create an archive's folder, durably: its entry in ``dest`` survives a power cut."""
    if not folder.is_dir():
        folder.mkdir(exist_ok=True)
        fsync_dir(folder.parent)


class _DeleteFailed(Exception):
    """The archive is exported and done; only its delete failed (retried on the next run)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _VerifyFailed(InvalidArgumentError):
    """A file on disk does not match what storage said: the archive is not deleted."""


def _worst(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """Return the exception of a group that matters most: a stop, then the first failure."""
    leaves: list[BaseException] = []

    def walk(eg: BaseExceptionGroup[BaseException]) -> None:
        for exc in eg.exceptions:
            if isinstance(exc, BaseExceptionGroup):
                walk(exc)
            else:
                leaves.append(exc)

    walk(group)
    for exc in leaves:
        if isinstance(exc, _Stop) or not isinstance(exc, Exception):
            return exc
    return leaves[0]
