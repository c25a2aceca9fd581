"""``download_video`` against the emulator over loopback: verify, resume, refresh, fail cleanly."""

from __future__ import annotations

import asyncio
import errno
import inspect
import os
import sys
import threading
from pathlib import Path

import pytest
from conftest import MiB, make_archive, sha256, storage_requests, url_calls

import aioopentok.download._partfile as files_mod
from aioopentok import (
    Client,
    DiskError,
    DownloadError,
    DownloadResult,
    InvalidArgumentError,
)
from aioopentok.download import DEFAULT_CHUNK_SIZE
from aioopentok.emulator import Emulator


def no_connections_in_use(client: Client) -> bool:
    connector = client.http_session.connector
    assert connector is not None
    return not connector._acquired  # type: ignore[attr-defined]


# --- the happy path ---------------------------------------------------------------------------


async def test_download_writes_verified_file_with_streamed_digest(emu, client, tmp_path):
    aid, (vid,), token = make_archive(emu, 3 * MiB + 123)
    dest = tmp_path / "out.flv"
    result = await client.download_video(aid, vid, token, dest, chunk_size=64 * 1024)
    assert isinstance(result, DownloadResult)
    assert result.ok and not result.resumed and not result.skipped
    assert result.path == dest and result.size == emu.video_size(aid, vid)
    assert result.sha256 == emu.video_digest(aid, vid) == sha256(dest)
    assert not (tmp_path / "out.flv.part").exists()
    assert emu.storage_auth_leaks == 0
    # smaller than one part: one request, for the first part's range
    assert [r.headers.get("Range") for r in storage_requests(emu)] == [f"bytes=0-{8 * MiB - 1}"]


async def test_download_into_a_directory_names_the_file_after_the_video(emu, client, tmp_path):
    aid, (vid,), token = make_archive(emu, 50_000)
    result = await client.download_video(aid, vid, token, str(tmp_path))
    assert result.path == tmp_path / f"{vid}.flv"
    assert result.path.read_bytes() == emu.video_bytes(aid, vid)


async def test_progress_reports_bytes_and_total(emu, client, tmp_path):
    aid, (vid,), token = make_archive(emu, 300_000)
    seen: list[tuple[str, int, int | None]] = []
    await client.download_video(
        aid, vid, token, tmp_path, chunk_size=64 * 1024, progress=lambda *a: seen.append(a)
    )
    assert seen[-1] == (vid, 300_000, 300_000)
    assert [d for _, d, _ in seen] == sorted(d for _, d, _ in seen)
    assert len(seen) >= 300_000 // (64 * 1024)


async def test_chunked_storage_without_content_length_works(emu, client, tmp_path):
    emu.faults.chunked_storage = True
    aid, (vid,), token = make_archive(emu, 2 * MiB + 7)
    result = await client.download_video(aid, vid, token, tmp_path)
    assert result.sha256 == emu.video_digest(aid, vid) == sha256(result.path)


async def test_chunked_storage_cut_mid_body_resumes(emu, client, tmp_path):
    emu.faults.chunked_storage = True
    emu.faults.cut_body_after = 500_000
    aid, (vid,), token = make_archive(emu, 2 * MiB)
    result = await client.download_video(aid, vid, token, tmp_path)
    assert result.resumed
    assert result.sha256 == emu.video_digest(aid, vid) == sha256(result.path)


def test_client_methods_default_to_the_download_chunk_size():
    for method in (Client.download_video, Client.download_archive):
        assert inspect.signature(method).parameters["chunk_size"].default == DEFAULT_CHUNK_SIZE


# --- bad input: a clear error before any I/O --------------------------------------------------


@pytest.mark.parametrize(
    "video_id", ["../evil", "..", "a/b", "a\\b", "/etc/passwd", "a\x00b", "", "C:\\x"]
)
async def test_unsafe_video_id_is_refused_before_any_io(emu, client, tmp_path, video_id):
    aid, _, token = make_archive(emu, 50_000)
    with pytest.raises(InvalidArgumentError, match="video_id"):
        await client.download_video(aid, video_id, token, tmp_path)
    assert emu.requests == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "options",
    [{"chunk_size": 0}, {"chunk_size": True}, {"progress": 3}, {"timeout": 5}],
)
async def test_bad_options_are_refused_before_any_io(emu, client, tmp_path, options):
    aid, (vid,), token = make_archive(emu, 50_000)
    with pytest.raises(InvalidArgumentError):
        await client.download_video(aid, vid, token, tmp_path, **options)
    assert emu.requests == []


async def test_missing_parent_directory_is_a_disk_error(emu, client, tmp_path):
    aid, (vid,), token = make_archive(emu, 50_000)
    with pytest.raises(DiskError) as info:
        await client.download_video(aid, vid, token, tmp_path / "nope" / "x.flv")
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOENT
    assert emu.requests == []


# --- resume and retry -------------------------------------------------------------------------


async def test_download_resumes_after_connection_drop_with_range(emu, client, tmp_path, sleeps):
    emu.faults.cut_body_after = 700_000
    aid, (vid,), token = make_archive(emu, 2 * MiB)
    result = await client.download_video(aid, vid, token, tmp_path)
    assert result.resumed
    assert result.sha256 == emu.video_digest(aid, vid) == sha256(result.path)
    ranges = [r.headers.get("Range") for r in storage_requests(emu)]
    # the first part's range; after each cut, the rest of it (the size is known by then)
    assert ranges == ["bytes=0-8388607", "bytes=700000-2097151", "bytes=1400000-2097151"]
    assert len(sleeps) == 2  # back-off between tries, through the injected sleep
    assert emu.storage_auth_leaks == 0


async def test_expired_url_is_refreshed_and_download_continues(emu, client, tmp_path):
    emu.faults.cut_body_after = 600_000
    emu.faults.expire_urls_after_bytes = 600_000
    aid, (vid,), token = make_archive(emu, 2 * MiB)
    result = await client.download_video(aid, vid, token, tmp_path)
    assert result.sha256 == emu.video_digest(aid, vid)
    statuses = [r.headers.get("Range") for r in storage_requests(emu)]
    # cut at 600000, the next try with the same URL is refused (403), a fresh URL resumes.
    assert statuses[:3] == ["bytes=0-8388607", "bytes=600000-2097151", "bytes=600000-2097151"]
    assert url_calls(emu) >= 2
    assert emu.storage_auth_leaks == 0


async def test_storage_403_without_end_gives_up(emu, client, tmp_path):
    emu.faults.storage_403 = 100
    aid, (vid,), token = make_archive(emu, 50_000)
    with pytest.raises(DownloadError) as info:
        await client.download_video(aid, vid, token, tmp_path)
    assert info.value.status == 403
    assert url_calls(emu) == 4  # the first URL and three fresh ones
    assert not (tmp_path / f"{vid}.flv").exists()
    assert "Signature" not in str(info.value)


async def test_storage_503_is_retried_a_bounded_number_of_times(
    emu, client, tmp_path, sleeps, monkeypatch
):
    aid, (vid,), token = make_archive(emu, 50_000)
    get_url = client.download_archive_url

    async def url_then_outage(*args, **kwargs):
        url = await get_url(*args, **kwargs)
        emu.faults.fail_503 = 100  # storage is down from here on
        emu.faults.retry_after = 2
        return url

    monkeypatch.setattr(client, "download_archive_url", url_then_outage)
    with pytest.raises(DownloadError, match="gave up after 4"):
        await client.download_video(aid, vid, token, tmp_path)
    assert len(storage_requests(emu)) == 4  # one try and client.retry.retries (3) retries
    assert sleeps == [2, 2, 2]  # Retry-After honoured
    assert not (tmp_path / f"{vid}.flv").exists()


async def test_storage_503_then_success(emu, client, tmp_path, monkeypatch):
    aid, (vid,), token = make_archive(emu, 50_000)
    get_url = client.download_archive_url

    async def url_then_blip(*args, **kwargs):
        url = await get_url(*args, **kwargs)
        emu.faults.fail_503 = 2
        return url

    monkeypatch.setattr(client, "download_archive_url", url_then_blip)
    result = await client.download_video(aid, vid, token, tmp_path)
    assert result.sha256 == emu.video_digest(aid, vid)


async def test_existing_part_is_resumed_and_hashed(emu, client, tmp_path):
    aid, (vid,), token = make_archive(emu, 3 * MiB)
    part = tmp_path / f"{vid}.flv.part"
    part.write_bytes(emu.video_bytes(aid, vid, 0, 1_234_567))
    result = await client.download_video(aid, vid, token, tmp_path)
    assert result.resumed
    assert result.sha256 == emu.video_digest(aid, vid) == sha256(result.path)
    # the prefix stays; the first request asks for one part from where it ends
    assert [r.headers.get("Range") for r in storage_requests(emu)] == ["bytes=1234567-9623174"]
    assert not part.exists()


async def test_part_that_is_not_flv_is_thrown_away(emu, client, tmp_path):
    aid, (vid,), token = make_archive(emu, 200_000)
    (tmp_path / f"{vid}.flv.part").write_bytes(b"<html>garbage</html>")
    result = await client.download_video(aid, vid, token, tmp_path)
    assert not result.resumed
    assert result.sha256 == emu.video_digest(aid, vid)


async def test_part_longer_than_the_video_starts_over(emu, client, tmp_path):
    aid, (vid,), token = make_archive(emu, 200_000)
    (tmp_path / f"{vid}.flv.part").write_bytes(emu.video_bytes(aid, vid) + b"extra")
    result = await client.download_video(aid, vid, token, tmp_path)
    assert result.sha256 == emu.video_digest(aid, vid) == sha256(result.path)


async def test_complete_part_is_finished_without_a_body(emu, client, tmp_path):
    aid, (vid,), token = make_archive(emu, 200_000)
    (tmp_path / f"{vid}.flv.part").write_bytes(emu.video_bytes(aid, vid))
    result = await client.download_video(aid, vid, token, tmp_path)
    assert result.resumed and result.sha256 == emu.video_digest(aid, vid)


async def test_complete_final_file_is_skipped(emu, client, tmp_path):
    aid, (vid,), token = make_archive(emu, 200_000)
    first = await client.download_video(aid, vid, token, tmp_path)
    emu.clear_requests()
    again = await client.download_video(aid, vid, token, tmp_path)
    assert again.skipped and again.size == first.size and again.sha256 is None
    # One GET of the first byte, never a HEAD: storage URLs are signed for GET (S3 refuses a
    # HEAD on them), so the size comes from the 206's Content-Range.
    probes = storage_requests(emu)
    assert [(r.method, r.headers.get("Range")) for r in probes] == [("GET", "bytes=0-0")]
    assert url_calls(emu) == 1


async def test_final_file_of_wrong_size_is_replaced(emu, client, tmp_path):
    aid, (vid,), token = make_archive(emu, 200_000)
    (tmp_path / f"{vid}.flv").write_bytes(b"FLV short")
    result = await client.download_video(aid, vid, token, tmp_path)
    assert not result.skipped
    assert sha256(result.path) == emu.video_digest(aid, vid)


# --- failures leave nothing at the final name ----------------------------------------------------


async def test_disk_full_is_a_disk_error_and_leaves_no_final_file(
    emu, client, tmp_path, monkeypatch
):
    aid, (vid,), token = make_archive(emu, 3 * MiB)
    real = files_mod._pwritev
    calls = []

    def full_after_one(fd, views, offset):
        calls.append(offset)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, views, offset)

    monkeypatch.setattr(files_mod, "_pwritev", full_after_one)
    with pytest.raises(DiskError, match="disk full") as info:
        await client.download_video(aid, vid, token, tmp_path)
    assert isinstance(info.value, OSError) and isinstance(info.value, DownloadError)
    assert info.value.errno == errno.ENOSPC
    assert not (tmp_path / f"{vid}.flv").exists()
    assert 0 < (tmp_path / f"{vid}.flv.part").stat().st_size < 3 * MiB  # kept for resuming
    assert no_connections_in_use(client)


async def test_unwritable_directory_is_a_disk_error(emu, client, tmp_path, monkeypatch):
    # Root ignores directory permissions, so the refusal is simulated at the open call.
    def refuse(self):
        raise PermissionError(errno.EACCES, "Permission denied", str(self.part))

    monkeypatch.setattr(files_mod.PartFile, "_open", refuse)
    aid, (vid,), token = make_archive(emu, 50_000)
    with pytest.raises(DiskError, match="not writable") as info:
        await client.download_video(aid, vid, token, tmp_path)
    assert info.value.errno == errno.EACCES
    assert list(tmp_path.iterdir()) == []


async def test_fsync_failure_leaves_no_final_file(emu, client, tmp_path, monkeypatch):
    def eio(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(files_mod.os, "fsync", eio)
    aid, (vid,), token = make_archive(emu, 50_000)
    with pytest.raises(DiskError):
        await client.download_video(aid, vid, token, tmp_path)
    assert not (tmp_path / f"{vid}.flv").exists()
    assert (tmp_path / f"{vid}.flv.part").exists()


async def test_cancel_leaves_part_no_final_and_no_open_connection(emu, client, tmp_path):
    aid, (vid,), token = make_archive(emu, 48 * MiB)
    started = asyncio.Event()

    def progress(_vid: str, done: int, _total: int | None) -> None:
        if done >= 32 * MiB:  # two workers of 8 MiB parts: at least two parts are complete
            started.set()

    task = asyncio.create_task(
        client.download_video(aid, vid, token, tmp_path, progress=progress, connections=2)
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not (tmp_path / f"{vid}.flv").exists()
    assert (tmp_path / f"{vid}.flv.part").exists()
    assert no_connections_in_use(client)
    # and the next call, made at once, resumes the .part to a verified file
    result = await client.download_video(aid, vid, token, tmp_path)
    assert result.resumed and result.sha256 == emu.video_digest(aid, vid)


_KILLED_CHILD = """
import asyncio, sys, time
from aioopentok import Client
url, key, secret, aid, vid, token, dest = sys.argv[1:]
def progress(video_id, done, total):
    if done >= 1024 * 1024:  # mid-body: say so, then stall until the parent kills us
        print("mid-body", flush=True)
        time.sleep(3600)
async def main():
    async with Client(key, secret, api_url=url) as c:
        await c.download_video(
            aid, vid, token, dest, chunk_size=65536, progress=progress, connections=1
        )
asyncio.run(main())
"""


async def test_sigkill_mid_body_leaves_a_part_that_resumes(emu, client, tmp_path):
    aid, (vid,), token = make_archive(emu, 24 * MiB)
    part = tmp_path / f"{vid}.flv.part"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_CHILD, emu.url, emu.api_key, emu.api_secret,
        aid, vid, token, str(tmp_path), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        # No timing guesswork: the child says when it is mid-body, then stalls there.
        line = await asyncio.wait_for(child.stdout.readline(), timeout=120)
        assert line == b"mid-body\n"
        child.kill()  # SIGKILL: no cleanup of any kind runs
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()
    assert child.returncode == -9
    assert not (tmp_path / f"{vid}.flv").exists()
    kept = part.stat().st_size
    assert 0 < kept < 24 * MiB
    result = await client.download_video(aid, vid, token, tmp_path)
    assert result.resumed
    assert result.sha256 == emu.video_digest(aid, vid) == sha256(result.path)


async def test_file_io_never_runs_on_the_event_loop_thread(emu, client, tmp_path, monkeypatch):
    loop_thread = threading.current_thread()
    on_loop: list[str] = []
    for name in ("pwritev", "pwrite", "pread", "fsync", "replace", "ftruncate"):
        real = getattr(os, name)

        def spy(*args, _real=real, _name=name):
            if threading.current_thread() is loop_thread:
                on_loop.append(_name)
            return _real(*args)

        monkeypatch.setattr(files_mod.os, name, spy)
    aid, (vid,), token = make_archive(emu, 8 * MiB + 5)
    (tmp_path / f"{vid}.flv.part").write_bytes(emu.video_bytes(aid, vid, 0, MiB))
    result = await client.download_video(aid, vid, token, tmp_path)
    assert result.sha256 == emu.video_digest(aid, vid)
    assert on_loop == []


# --- without the digest -----------------------------------------------------------------------


async def test_checksum_off_skips_the_digest_but_still_verifies(
    emu: Emulator, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive_id, (video_id,), token = make_archive(emu, 3 * MiB)
    hashed: list[int] = []
    real_sha256 = files_mod.hashlib.sha256

    def counting_sha256(*args: object) -> object:
        caller = sys._getframe(1).f_globals["__name__"]
        if caller == "aioopentok.download._partfile":  # not the emulator's
            hashed.append(1)
        return real_sha256(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(files_mod.hashlib, "sha256", counting_sha256)
    result = await client.download_video(archive_id, video_id, token, tmp_path, checksum=False)
    assert result.sha256 is None and hashed == []
    assert result.size == 3 * MiB
    assert sha256(result.path) == emu.video_digest(archive_id, video_id)


async def test_checksum_off_resumes_a_part_without_rereading_it(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    archive_id, (video_id,), token = make_archive(emu, 2 * MiB)
    part = tmp_path / f"{video_id}.flv.part"
    part.write_bytes(emu.video_bytes(archive_id, video_id, 0, MiB))
    result = await client.download_video(archive_id, video_id, token, tmp_path, checksum=False)
    assert result.resumed and result.sha256 is None
    assert sha256(result.path) == emu.video_digest(archive_id, video_id)
    assert storage_requests(emu)[-1].headers["Range"] == f"bytes={MiB}-{MiB + 8 * MiB - 1}"


async def test_checksum_off_still_refuses_a_part_that_is_not_flv(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    archive_id, (video_id,), token = make_archive(emu, MiB)
    (tmp_path / f"{video_id}.flv.part").write_bytes(b"GIF89a" + bytes(1000))
    result = await client.download_video(archive_id, video_id, token, tmp_path, checksum=False)
    assert result.resumed is False
    assert sha256(result.path) == emu.video_digest(archive_id, video_id)


async def test_a_stale_part_beside_a_complete_file_is_removed(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    archive_id, (video_id,), token = make_archive(emu, 200_000)
    await client.download_video(archive_id, video_id, token, tmp_path)
    stale = tmp_path / f"{video_id}.flv.part"
    stale.write_bytes(emu.video_bytes(archive_id, video_id, 0, 1000))
    again = await client.download_video(archive_id, video_id, token, tmp_path)
    assert again.skipped and not stale.exists()


async def test_a_foreign_part_is_not_reread_before_it_is_thrown_away(
    emu: Emulator, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive_id, (video_id,), token = make_archive(emu, 200_000)
    (tmp_path / f"{video_id}.flv.part").write_bytes(b"GIF89a" + bytes(8 * MiB))
    reread: list[int] = []
    real, real_v = files_mod.os.pread, files_mod.os.preadv

    def counting(fd: int, length: int, offset: int) -> bytes:
        reread.append(length)
        return real(fd, length, offset)

    def counting_v(fd: int, buffers: list, offset: int) -> int:
        n = real_v(fd, buffers, offset)
        reread.append(n)
        return n

    monkeypatch.setattr(files_mod.os, "pread", counting)
    monkeypatch.setattr(files_mod.os, "preadv", counting_v)
    result = await client.download_video(archive_id, video_id, token, tmp_path)
    assert not result.resumed and result.sha256 == emu.video_digest(archive_id, video_id)
    assert sum(reread) <= files_mod.FLV_HEADER_SIZE  # not the 8 MiB of someone else's bytes
