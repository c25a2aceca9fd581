"""``aioopentok demo``: the seed's whole flow, with the real Client, against a local emulator.

Strategy: start an ``Emulator`` in-process (it makes up its own credentials), then run each step
of the flow over HTTP on 127.0.0.1 and check its outcome against the emulator's own state (its
token verifier, its sessions, its video sizes and digests): a step passes only if the check does.
The first failing step stops the flow. The summary lists every step; exit 0 only if all passed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._client import Client
from .._errors import NotFoundError, OpenTokException
from .._models import Role

if TYPE_CHECKING:
    from .. import DownloadResult
    from ._progress import ProgressBars

__all__ = ["FLV_SIGNATURE", "run_demo"]

FLV_SIGNATURE = b"FLV\x01"  # protocol.md, FLV files: "FLV", then version 1
_MIB = 1024 * 1024
# Recorded streams are not all the same length: spread the sizes around the mean.
_SIZE_SPREAD = (1.25, 0.75, 1.0, 1.5, 0.5, 1.0)


class CheckFailed(Exception):
    """A step ran but its outcome did not match the emulator's state."""


@dataclass
class Step:
    """One step of the flow and how it went."""

    name: str
    ok: bool = False
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Report:
    """The steps so far, printed as they finish unless the output is JSON."""

    live: bool
    steps: list[Step] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Time a step; it passes if the block returns, fails (and stops the flow) if it raises."""
        step = Step(name)
        self.steps.append(step)
        started = time.perf_counter()
        try:
            yield step
        except (CheckFailed, OpenTokException, OSError) as exc:
            step.detail = f"{type(exc).__name__}: {exc}"
            raise _Stop from exc
        else:
            step.ok = True
        finally:
            step.seconds = time.perf_counter() - started
            if self.live:
                mark = "ok  " if step.ok else "FAIL"
                print(f"  {mark} {step.name:<49} {step.detail} ({step.seconds * 1000:.0f} ms)")


class _Stop(Exception):
    """Raised out of a failed step to skip the rest of the flow."""


def check(condition: bool, message: str) -> None:
    """Raise ``CheckFailed`` unless ``condition``."""
    if not condition:
        raise CheckFailed(message)


def video_sizes(count: int, mean: int) -> list[int]:
    """Return ``count`` sizes spread around ``mean`` (bytes)."""
    return [int(mean * _SIZE_SPREAD[k % len(_SIZE_SPREAD)]) for k in range(count)]


def file_facts(path: Path) -> tuple[int, bytes, str]:
    """Return a file's size, first four bytes and SHA-256 hex digest."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        head = f.read(len(FLV_SIGNATURE))
        digest.update(head)
        size += len(head)
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, head, digest.hexdigest()


async def run_demo(
    *,
    videos: int = 6,
    video_size: int = 8 * _MIB,
    concurrency: int = 4,
    dest: Path | None = None,
    keep: bool = False,
    as_json: bool = False,
    progress: ProgressBars | None = None,
    emulator_factory: Callable[[], Any] | None = None,
) -> int:
    """Run the flow against an in-process emulator; print a summary; return the exit code."""
    from ..emulator import Emulator

    report = Report(live=not as_json)
    facts: dict[str, Any] = {}
    workdir = dest if dest is not None else Path(tempfile.mkdtemp(prefix="aioopentok-demo-"))
    started = time.perf_counter()
    try:
        async with (emulator_factory or Emulator)() as emu:
            if not as_json:
                print(f"aioopentok demo: a local OpenTok emulator at {emu.url}")
                print(f"  (API key {emu.api_key}, made-up credentials; no network used)")
            async with Client(emu.api_key, emu.api_secret, api_url=emu.url) as client:
                with suppress(_Stop):
                    await _flow(
                        emu,
                        client,
                        report,
                        facts,
                        videos,
                        video_size,
                        concurrency,
                        workdir,
                        progress,
                    )
    finally:
        if progress is not None:
            progress.close()
        if dest is None and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.perf_counter() - started
    expected_steps = 8
    ok = len(report.steps) == expected_steps and all(s.ok for s in report.steps)
    _print_summary(report, facts, total, ok, as_json, workdir if keep or dest else None)
    return 0 if ok else 1


async def _flow(
    emu: Any,
    client: Client,
    report: Report,
    facts: dict[str, Any],
    videos: int,
    video_size: int,
    concurrency: int,
    workdir: Path,
    progress: ProgressBars | None,
) -> None:
    """The seed's flow, one checked step at a time (``_Stop`` ends it early)."""
    from ..emulator import TokenError
    from ..emulator import verify_token as emulator_verify

    with report.step("create a session (p2p enabled)") as step:
        session = await client.create_session("127.0.0.1", p2p_preference="enabled")
        info = emu.sessions.get(session.session_id)
        check(info is not None, "the emulator has no such session")
        check(info.p2p_preference == "enabled", f"p2p is {info.p2p_preference!r}")
        session_id = session.session_id
        step.detail = session_id[:24] + "..."

    with report.step("make a token per role") as step:
        tokens = {role: client.generate_token(session_id, role) for role in Role}
        for role, token in tokens.items():
            try:
                verified = emulator_verify(token, emu.api_key, emu.api_secret, now=time.time())
            except TokenError as exc:
                raise CheckFailed(f"the emulator refused the {role} token: {exc}") from None
            check(verified.role == role.value, f"{role} token has role {verified.role}")
            check(verified.session_id == session_id, f"{role} token is for another session")
        step.detail = ", ".join(r.value for r in tokens) + ": accepted by the emulator"
        moderator = tokens[Role.MODERATOR]

    sizes = video_sizes(videos, video_size)
    with report.step(f"record an archive of {videos} videos (emulator)") as step:
        archive_id = emu.add_archive(session_id, sizes, title="aioopentok demo")
        facts["archive_id"] = archive_id
        step.detail = f"{sum(sizes) / _MIB:.1f} MiB of FLV"

    with report.step("get the manifest (moderator token)") as step:
        archive = await client.get_archive_manifest(archive_id, moderator)
        expected_ids = {v.id for v in emu.archives[archive_id].videos}
        got_ids = {v.id for v in archive.resources}
        check(got_ids == expected_ids, f"manifest lists {len(got_ids)} videos, not these")
        step.detail = f"{len(archive.resources)} videos"

    with report.step(f"download all videos ({concurrency} at a time)") as step:
        t0 = time.perf_counter()
        results: Sequence[DownloadResult] = await client.download_archive(
            archive_id, moderator, workdir, concurrency=concurrency, progress=progress
        )
        seconds = time.perf_counter() - t0
        if progress is not None:
            progress.close()
        failed = [r for r in results if not r.ok]
        check(not failed, f"{len(failed)} failed, first: {failed[0].error}" if failed else "")
        check(len(results) == videos, f"{len(results)} files, expected {videos}")
        total_bytes = sum(r.size for r in results)
        facts.update(bytes=total_bytes, download_seconds=seconds)
        rate = total_bytes / _MIB / seconds
        step.detail = f"{total_bytes / _MIB:.1f} MiB in {seconds:.2f} s ({rate:.0f} MiB/s)"

    with report.step("verify each file (size, FLV signature, SHA-256)") as step:
        files = []
        for result in results:
            size, head, digest = await asyncio.to_thread(file_facts, Path(result.path))
            want_size = emu.video_size(archive_id, result.video_id)
            want_digest = emu.video_digest(archive_id, result.video_id)
            check(size == want_size, f"{result.video_id}: {size} bytes, expected {want_size}")
            check(head == FLV_SIGNATURE, f"{result.video_id}: no FLV signature ({head!r})")
            check(digest == want_digest, f"{result.video_id}: SHA-256 differs from the emulator's")
            files.append(
                {
                    "video_id": result.video_id,
                    "path": str(result.path),
                    "size": size,
                    "sha256": digest,
                }
            )
        facts["files"] = files
        step.detail = f"{len(files)} files match the emulator's digests"

    with report.step("delete the archive") as step:
        await client.delete_archive(archive_id, moderator)
        check(emu.archives[archive_id].deleted, "the emulator still has the archive")
        step.detail = archive_id

    with report.step("manifest again: NotFoundError") as step:
        try:
            await client.get_archive_manifest(archive_id, moderator)
        except NotFoundError as exc:
            step.detail = f"as expected ({exc.message or exc})"
        else:
            raise CheckFailed("the deleted archive's manifest was still served")


def _print_summary(
    report: Report, facts: dict[str, Any], total: float, ok: bool, as_json: bool, kept: Path | None
) -> None:
    size = facts.get("bytes", 0)
    seconds = facts.get("download_seconds")
    throughput = size / _MIB / seconds if seconds else None
    if as_json:
        data = {
            "ok": ok,
            "steps": [asdict(s) for s in report.steps],
            "archive_id": facts.get("archive_id"),
            "bytes": size,
            "download_seconds": seconds,
            "throughput_mib_s": throughput,
            "total_seconds": total,
            "files": facts.get("files", []),
            "kept_in": str(kept) if kept else None,
        }
        print(json.dumps(data, indent=2))
        return
    passed = sum(s.ok for s in report.steps)
    print()
    if throughput is not None:
        print(f"Downloaded {size / _MIB:.1f} MiB in {seconds:.2f} s ({throughput:.0f} MiB/s).")
    if kept is not None:
        print(f"Files kept in {kept}")
    verdict = "every step verified" if ok else "FAILED"
    print(f"{passed}/{len(report.steps)} steps passed in {total:.2f} s: {verdict}.")
