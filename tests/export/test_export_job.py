"""``Client.export`` end to end: the emulator over real loopback sockets, files on a real disk."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import aioopentok
from aioopentok import (
    AuthError,
    Client,
    ConnectError,
    DiskError,
    InvalidArgumentError,
    NotFoundError,
)
from aioopentok.emulator import Emulator
from aioopentok.export import MANIFEST_NAME, failures, read_status, run

SIZE = 1_500  # tiny videos: these tests are about the job, not the bytes


def seed(emu: Emulator, count: int, videos: int = 1, size: int = SIZE) -> list[tuple[str, str]]:
    """Return ``count`` new (archive_id, session_id) pairs, each archive in its own session."""
    return emu.seed_archives(count, videos_per_archive=videos, video_size=size)


def assert_exported(emu: Emulator, dest: Path, pairs: list[tuple[str, str]]) -> None:
    """Every video byte-exact at dest/ARCHIVE_ID/VIDEO_ID.flv, a manifest, no .part left."""
    for archive_id, _ in pairs:
        for video in emu.archives[archive_id].videos:
            path = dest / archive_id / f"{video.id}.flv"
            assert path.read_bytes() == emu.video_bytes(archive_id, video.id), path
        assert (dest / archive_id / MANIFEST_NAME).is_file()
    assert not [p for p in dest.rglob("*") if p.name.endswith(".part")]


def paths_of(emu: Emulator, word: str) -> list[str]:
    return [r.path for r in emu.requests if word in r.path]


async def test_2000_archives_then_a_rerun_makes_zero_requests(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    pairs = seed(emu, 2000)
    dest = tmp_path / "export"
    result = await client.export(iter(pairs), dest, concurrency=32)
    assert (result.done, result.failed, result.skipped) == (2000, 0, 0)
    assert (result.videos, result.bytes) == (2000, 2000 * SIZE)
    assert_exported(emu, dest, pairs)

    emu.clear_requests()
    started = time.perf_counter()
    again = await client.export(iter(pairs), dest)
    assert time.perf_counter() - started < 2
    assert emu.requests == []
    assert (again.done, again.failed, again.skipped, again.bytes) == (0, 0, 2000, 0)
    status = read_status(dest)
    assert (status.done, status.failed, status.pending) == (2000, 0, 0)


async def test_manifest_json_keeps_what_the_service_said(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    session_id = emu.create_session_id()
    archive_id = emu.add_archive(
        session_id, [("v-one", 2_000, "cam 1"), ("v-two", 3_000, "cam 2")], title="Board, 3 May"
    )
    await client.export([(archive_id, session_id)], tmp_path)
    document = json.loads((tmp_path / archive_id / MANIFEST_NAME).read_text())
    assert document["archive_id"] == archive_id and document["session_id"] == session_id
    assert document["title"] == "Board, 3 May"
    info = emu.archives[archive_id]
    videos = {v["id"]: v for v in document["videos"]}
    for video in info.videos:
        entry = videos[video.id]
        assert (entry["name"], entry["size"]) == (video.name, video.size)
        assert entry["length"] == video.length_ms and entry["offset"] == video.offset_ms
        assert entry["sha256"] == emu.video_digest(archive_id, video.id)


async def test_four_shards_cover_the_input_exactly_once(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    pairs = seed(emu, 200)
    done = 0
    for k in range(4):
        result = await client.export(pairs, tmp_path, shard=f"{k}/4")
        assert result.failed == 0 and 20 < result.done < 80
        done += result.done
    assert done == 200
    manifests = paths_of(emu, "getmanifest")
    assert sorted(manifests) == sorted({f"/hl/archive/getmanifest/{a}" for a, _ in pairs})
    assert_exported(emu, tmp_path, pairs)
    status = read_status(tmp_path)
    assert len(status.shards) == 4 and status.done == 200 and status.pending == 0


async def test_archives_done_under_another_sharding_cost_no_request(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    pairs = seed(emu, 40)
    assert (await client.export(pairs, tmp_path)).done == 40  # unsharded first
    emu.clear_requests()
    skipped = 0
    for k in range(3):
        result = await client.export(pairs, tmp_path, shard=(k, 3))
        assert result.done == 0
        skipped += result.skipped
    assert skipped == 40 and emu.requests == []
    assert read_status(tmp_path).done == 40  # each archive counted once, in the unsharded journal


class MissingFirst:
    """The real client, but some archives are "not found" (as if listed before they existed)."""

    def __init__(self, client: Client, missing: set[str]) -> None:
        self.client, self.missing = client, missing

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def get_archive_manifest(self, archive_id: str, token: str) -> Any:
        if archive_id in self.missing:
            raise NotFoundError(f"Archive {archive_id} not found", code="404")
        return await self.client.get_archive_manifest(archive_id, token)


async def test_status_counts_each_archive_once_across_shardings(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    pairs = seed(emu, 30)
    missing = {a for a, _ in pairs[:6]}
    first = await run(MissingFirst(client, missing), pairs, tmp_path)  # type: ignore[arg-type]
    assert (first.done, first.failed) == (24, 6)
    for k in range(2):  # then sharded: only the 6 failed ones are fetched, into shard journals
        await client.export(pairs, tmp_path, shard=f"{k}/2")
    status = read_status(tmp_path)
    assert (status.done, status.failed, status.pending) == (30, 0, 0)
    assert status.bytes == 30 * SIZE
    assert sum(s.failed for s in status.shards) == 6  # the unsharded journal still says so
    assert list(failures(tmp_path)) == []


async def test_missing_archives_fail_alone_and_only_they_are_retried(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    good = seed(emu, 20)
    session_id = good[0][1]
    missing = [(f"00000000-0000-4000-8000-00000000000{k}", session_id) for k in range(3)]
    result = await client.export(good[:10] + missing + good[10:], tmp_path)
    assert (result.done, result.failed) == (20, 3)
    reasons = {r.archive_id: r.error for r in failures(tmp_path)}
    assert set(reasons) == {a for a, _ in missing}
    assert all("NotFoundError" in r and "404" in r for r in reasons.values())
    assert_exported(emu, tmp_path, good)

    emu.clear_requests()
    again = await client.export(good + missing, tmp_path)
    assert (again.skipped, again.failed) == (20, 3)
    assert sorted(paths_of(emu, "archive")) == sorted(
        f"/hl/archive/getmanifest/{a}" for a, _ in missing
    )


async def test_a_429_burst_slows_the_whole_job_and_it_still_finishes(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    pairs = seed(emu, 60)
    emu.faults.fail_status = 429
    emu.faults.retry_after = 0
    emu.faults.fail_503 = 150  # far more than the client's own 3 retries per request absorb
    result = await run(client, pairs, tmp_path, concurrency=16, backoff=0)
    assert (result.done, result.failed) == (60, 0)
    assert result.rate_limited > 0
    assert result.lowest_concurrency < 16
    assert_exported(emu, tmp_path, pairs)


async def test_storage_failures_are_recorded_with_s3s_reason_and_no_secret(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    pairs = seed(emu, 3)
    emu.faults.storage_403 = 10_000  # storage refuses every signed URL: "Request has expired"
    result = await run(client, pairs, tmp_path, concurrency=2, backoff=0)
    assert result.failed == 3
    reasons = [r.error or "" for r in failures(tmp_path)]
    assert all("403" in r and "DownloadError" in r for r in reasons), reasons
    emu.faults.storage_403 = 0
    journal = b"".join(p.read_bytes() for p in (tmp_path / ".aioopentok").iterdir() if p.is_file())
    for secret in (b"Signature=", b"Expires=", b"T1==", emu.api_secret.encode()):
        assert secret not in journal
    assert (await client.export(pairs, tmp_path)).done == 3  # and the next run retries them


class FlakyDisk:
    """The real client, but the disk fills up after ``ok`` downloads (``ENOSPC``)."""

    def __init__(self, client: Client, ok: int) -> None:
        self.client, self.ok = client, ok

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def download_video(self, *args: Any, **kwargs: Any) -> Any:
        if self.ok <= 0:
            error = DiskError("cannot write x.flv.part: disk full (No space left on device)")
            error.errno = errno.ENOSPC
            raise error
        self.ok -= 1
        return await self.client.download_video(*args, **kwargs)


async def test_a_full_disk_stops_the_job_and_a_rerun_after_freeing_space_finishes(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    pairs = seed(emu, 40, videos=2)
    with pytest.raises(DiskError) as info:
        await run(FlakyDisk(client, ok=15), pairs, tmp_path, concurrency=4)  # type: ignore[arg-type]
    assert info.value.errno == errno.ENOSPC
    status = read_status(tmp_path)
    assert status.failed == 0 and status.done <= 8  # nothing marked failed for a full disk
    result = await client.export(pairs, tmp_path)
    assert result.failed == 0 and result.done + result.skipped == 40
    assert result.skipped == status.done
    assert_exported(emu, tmp_path, pairs)


async def test_enospc_writing_manifest_json_stops_the_job(
    emu: Emulator, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = seed(emu, 10)

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("aioopentok.export._job.write_manifest", full)
    with pytest.raises(DiskError, match="No space left"):
        await client.export(pairs, tmp_path, concurrency=2)
    assert read_status(tmp_path).done == 0
    monkeypatch.undo()
    assert (await client.export(pairs, tmp_path)).done == 10


async def test_unsafe_ids_are_refused_and_nothing_is_written_outside_dest(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    session_id = emu.create_session_id()
    evil = emu.add_archive(session_id, [("../../escaped", SIZE), ("fine", SIZE)])
    good = emu.add_archive(session_id, [SIZE])
    dest = tmp_path / "dest"
    result = await client.export(
        [(evil, session_id), ("../up", session_id), (good, session_id)], dest
    )
    assert (result.done, result.failed) == (1, 2)
    reasons = {r.archive_id: r.error for r in failures(dest)}
    assert "refused" in reasons[evil] and "refused" in reasons["../up"]
    everything = await asyncio.to_thread(lambda: list(tmp_path.rglob("*")))
    assert [p for p in everything if dest not in (p, *p.parents)] == []
    assert not (dest / evil).exists()  # refused before anything of it was written
    assert not [r for r in emu.requests if "escaped" in r.path]


async def test_bad_credentials_abort_at_once_and_mark_nothing_failed(
    emu: Emulator, tmp_path: Path
) -> None:
    pairs = seed(emu, 300)
    async with Client(emu.api_key, "f" * 40, api_url=emu.url) as wrong:
        with pytest.raises(AuthError):
            await wrong.export(pairs, tmp_path, concurrency=8)
    assert len(emu.requests) <= 8  # the requests already in flight, not one per archive
    status = read_status(tmp_path)
    assert (status.done, status.failed) == (0, 0)


def flip_a_byte(path: Path) -> None:
    """Damage a file without changing its size: only a digest can tell."""
    with path.open("r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))


async def test_a_service_that_cannot_be_reached_stops_the_job_instead_of_failing_it_all(
    emu: Emulator, tmp_path: Path
) -> None:
    pairs = seed(emu, 200)
    with socket.socket() as probe:  # a port that was just free: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with Client(emu.api_key, emu.api_secret, api_url=f"http://127.0.0.1:{port}/hl",
                      retry=0) as down:  # fmt: skip
        with pytest.raises(ConnectError):
            await run(down, pairs, tmp_path, concurrency=4, retries=0)  # type: ignore[arg-type]
    status = read_status(tmp_path)
    assert status.done == 0 and 15 <= status.failed <= 15 + 8  # the 16th stops it; not 200


class CorruptingClient:
    """The real client, but the files of some archives are damaged after download."""

    def __init__(self, client: Client, damaged: set[str]) -> None:
        self.client, self.damaged = client, damaged

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def download_video(self, archive_id: str, video_id: str, *args: Any, **kw: Any) -> Any:
        result = await self.client.download_video(archive_id, video_id, *args, **kw)
        if archive_id in self.damaged:
            await asyncio.to_thread(flip_a_byte, Path(args[1]))  # args: token, dest
        return result


async def test_delete_after_verify_deletes_exactly_the_verified_archives(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    pairs = seed(emu, 10, videos=2)
    damaged = {pairs[0][0], pairs[1][0]}
    result = await run(
        CorruptingClient(client, damaged),  # type: ignore[arg-type]
        pairs,
        tmp_path,
        delete_after_verify=True,
    )
    assert (result.done, result.deleted, result.failed) == (8, 8, 2)
    assert {a for a, _ in pairs if emu.archives[a].deleted} == {a for a, _ in pairs} - damaged
    assert all("not deleted" in r.error for r in failures(tmp_path))

    emu.clear_requests()
    again = await client.export(pairs, tmp_path, delete_after_verify=True)
    assert (again.done, again.deleted, again.skipped, again.failed) == (2, 2, 8, 0)
    assert all(emu.archives[a].deleted for a, _ in pairs)
    assert sorted(paths_of(emu, "delete")) == sorted(f"/hl/archive/delete/{a}" for a in damaged)

    emu.clear_requests()
    third = await client.export(pairs, tmp_path, delete_after_verify=True)
    assert emu.requests == [] and third.skipped == 10  # a deletion is never repeated


async def test_delete_after_verify_checks_the_md5_against_storages_etag(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    pairs = seed(emu, 2)
    await client.export(pairs, tmp_path)
    bad = pairs[0][0]
    manifest = tmp_path / bad / MANIFEST_NAME
    document = json.loads(manifest.read_text())
    video = document["videos"][0]
    assert (
        video["etag"].strip('"')
        == hashlib.md5(emu.video_bytes(bad, video["id"]), usedforsecurity=False).hexdigest()
    )  # the emulator's ETag is the MD5 of the bytes, as S3's single-part ones
    path = tmp_path / bad / video["file"]
    await asyncio.to_thread(flip_a_byte, path)
    # Make the recorded SHA-256 agree with the damage: only the MD5/ETag check can catch it.
    video["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest.write_text(json.dumps(document))
    result = await client.export(pairs, tmp_path, delete_after_verify=True)
    assert (result.deleted, result.failed) == (1, 1)
    assert not emu.archives[bad].deleted and emu.archives[pairs[1][0]].deleted
    assert "ETag" in next(failures(tmp_path)).error


async def test_delete_after_verify_of_archives_exported_earlier(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    pairs = seed(emu, 5)
    await client.export(pairs, tmp_path)
    emu.clear_requests()
    result = await client.export(pairs, tmp_path, delete_after_verify=True)
    assert (result.deleted, result.skipped, result.done) == (5, 5, 0)
    assert len(emu.requests) == 5 and paths_of(emu, "delete") == [r.path for r in emu.requests]
    assert read_status(tmp_path).deleted == 5


async def test_items_are_read_lazily_from_an_async_iterable(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    pairs = seed(emu, 60)
    taken = 0
    at_first_outcome: list[int] = []

    async def items() -> AsyncIterator[tuple[str, str]]:
        nonlocal taken
        for pair in pairs:
            taken += 1
            yield pair

    def progress(snapshot: aioopentok.ExportProgress) -> None:
        if snapshot.outcome is not None and not at_first_outcome:
            at_first_outcome.append(taken)

    result = await client.export(items(), tmp_path, concurrency=2, progress=progress)
    assert result.done == 60
    assert at_first_outcome[0] <= 8  # a window of 2 * concurrency archives, not the whole input


async def test_a_failing_progress_callback_stops_the_job_and_blames_no_archive(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    pairs = seed(emu, 30)

    def broken(snapshot: aioopentok.ExportProgress) -> None:
        if snapshot.outcome is not None and snapshot.done == 3:
            raise ZeroDivisionError("a bug in the caller's callback")

    with pytest.raises(ZeroDivisionError):
        await client.export(pairs, tmp_path, concurrency=2, progress=broken)
    status = read_status(tmp_path)
    assert status.failed == 0 and 3 <= status.done < 30
    assert (await client.export(pairs, tmp_path)).failed == 0


def _bad_arguments() -> Iterator[dict[str, Any]]:
    yield {"concurrency": 0}
    yield {"concurrency": "8"}
    yield {"shard": "4/4"}
    yield {"progress": 3}
    yield {"items": None}
    yield {"items": "a b"}


@pytest.mark.parametrize("bad", list(_bad_arguments()))
async def test_bad_arguments_are_refused_before_any_io(
    emu: Emulator, client: Client, tmp_path: Path, bad: dict[str, Any]
) -> None:
    kwargs: dict[str, Any] = {"items": [], **bad}
    items = kwargs.pop("items")
    with pytest.raises(InvalidArgumentError):
        await client.export(items, tmp_path / "dest", **kwargs)
    assert not (tmp_path / "dest").exists() and emu.requests == []
