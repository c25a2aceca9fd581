"""``download_archive``: per-video results, untrusted IDs, re-runs, concurrency, cancellation."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import sha256

import aioopentok.download._partfile as files_mod
from aioopentok import (
    Client,
    DiskError,
    DownloadError,
    InvalidArgumentError,
    NotFoundError,
    Role,
)
from aioopentok.emulator import Emulator

MiB = 1024 * 1024


async def _no_sleep(_: float) -> None:
    pass


def make_archive(emu: Emulator, videos: list) -> tuple[str, str]:
    session_id = emu.create_session_id()
    archive_id = emu.add_archive(session_id, videos)
    token = Client(emu.api_key, emu.api_secret).generate_token(session_id, Role.MODERATOR)
    return archive_id, token


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}



async def test_downloads_every_video_with_verified_digests(emu, client, tmp_path):
    aid, token = make_archive(emu, [("a", 300_000), ("b", MiB + 1), ("c", 40_000)])
    dest = tmp_path / "new" / "dir"  # created
    results = await client.download_archive(aid, token, dest, concurrency=2)
    assert [r.video_id for r in results] == ["a", "b", "c"]
    for r in results:
        assert r.ok and r.archive_id == aid and r.path == dest / f"{r.video_id}.flv"
        assert r.sha256 == emu.video_digest(aid, r.video_id) == sha256(r.path)
    assert tree(dest) == {"a.flv", "b.flv", "c.flv"}
    assert emu.storage_auth_leaks == 0


async def test_at_most_concurrency_videos_stream_at_once(emu, client, tmp_path):
    aid, token = make_archive(emu, [(f"v{i}", 2 * MiB) for i in range(6)])
    active: set[str] = set()
    peak = 0

    def progress(video_id: str, done: int, total: int | None) -> None:
        nonlocal peak
        active.add(video_id)
        peak = max(peak, len(active))
        if done == total:
            active.discard(video_id)

    results = await client.download_archive(
        aid, token, tmp_path, concurrency=2, progress=progress, chunk_size=64 * 1024
    )
    assert all(r.ok for r in results)
    assert peak == 2


@pytest.mark.parametrize("hostile", ["../evil", "..", "sub/../../evil", "/tmp/abs-evil", "..\\x"])
async def test_unsafe_ids_in_the_manifest_fail_alone_and_write_nothing_outside(
    emu, client, tmp_path, hostile
):
    aid, token = make_archive(emu, [(hostile, 50_000), ("good", 50_000)])
    dest = tmp_path / "dest"
    results = await client.download_archive(aid, token, dest)
    bad, good = results
    assert bad.video_id == hostile and not bad.ok
    assert isinstance(bad.error, InvalidArgumentError) and bad.path == dest
    assert good.ok and good.sha256 == emu.video_digest(aid, "good")
    assert tree(tmp_path) == {"dest", "dest/good.flv"}
    assert not any(name.startswith("abs-evil") for name in os.listdir("/tmp"))
    assert not any("evil" in r.path for r in emu.requests)  # never even asked for a URL


async def test_duplicate_ids_are_downloaded_once(emu, client, tmp_path):
    aid, token = make_archive(emu, [("same", 50_000), ("same", 50_000)])
    results = await client.download_archive(aid, token, tmp_path)
    assert [r.video_id for r in results] == ["same"] and results[0].ok


async def test_second_run_skips_finished_files_and_resumes_partial_ones(emu, client, tmp_path):
    aid, token = make_archive(emu, [("done", 300_000), ("half", 3 * MiB), ("gone", 200_000)])
    first = await client.download_archive(aid, token, tmp_path)
    assert all(r.ok for r in first)
    # "half" was interrupted: only a .part of its first 1.5 MiB; "gone" was never started.
    (tmp_path / "half.flv").unlink()
    (tmp_path / "half.flv.part").write_bytes(emu.video_bytes(aid, "half", 0, 3 * MiB // 2))
    (tmp_path / "gone.flv").unlink()
    emu.clear_requests()

    again = {r.video_id: r for r in await client.download_archive(aid, token, tmp_path)}
    assert again["done"].skipped and again["done"].size == 300_000
    assert again["half"].resumed and not again["half"].skipped
    assert not again["gone"].resumed and not again["gone"].skipped
    for vid in ("half", "gone"):
        assert again[vid].sha256 == emu.video_digest(aid, vid) == sha256(tmp_path / f"{vid}.flv")
    gets = sorted(
        (r.path.rsplit("/", 1)[1], r.headers.get("Range") or "")
        for r in emu.requests
        if r.path.startswith("/storage/")
    )
    # "done": only its first byte, to learn the size; the others: their bodies.
    assert gets == [
        ("done.flv", "bytes=0-0"),
        ("gone.flv", f"bytes=0-{8 * MiB - 1}"),  # the first part (all of this small file)
        ("half.flv", f"bytes={3 * MiB // 2}-{3 * MiB // 2 + 8 * MiB - 1}"),
    ]
    assert all(r.method == "GET" for r in emu.requests)


async def test_a_failing_video_does_not_stop_the_others(emu, client, tmp_path, monkeypatch):
    aid, token = make_archive(emu, [("ok1", 200_000), ("full", 3 * MiB), ("ok2", 200_000)])
    real = files_mod.PartFile._write

    def full_for_one_video(self, offset, pieces):
        if self.written.size > 0 and self.part.name == "full.flv.part":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, offset, pieces)

    monkeypatch.setattr(files_mod.PartFile, "_write", full_for_one_video)
    results = {r.video_id: r for r in await client.download_archive(aid, token, tmp_path)}
    assert results["ok1"].ok and results["ok2"].ok
    failed = results["full"]
    assert not failed.ok and isinstance(failed.error, DiskError)
    assert failed.size == 0 and failed.sha256 is None
    assert not (tmp_path / "full.flv").exists()


async def test_manifest_failure_raises(emu, client, tmp_path):
    session_id = emu.create_session_id()
    aid = emu.add_archive(session_id, [50_000])
    publisher = client.generate_token(session_id, Role.PUBLISHER)  # not a moderator
    with pytest.raises(NotFoundError):
        await client.download_archive(aid, publisher, tmp_path / "d")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True])
async def test_bad_concurrency_is_refused_before_any_io(emu, client, tmp_path, concurrency):
    aid, token = make_archive(emu, [50_000])
    with pytest.raises(InvalidArgumentError, match="concurrency"):
        await client.download_archive(aid, token, tmp_path, concurrency=concurrency)
    assert emu.requests == []


async def test_cancel_stops_every_video_and_leaves_no_final_file(emu, client, tmp_path):
    aid, token = make_archive(emu, [(f"big{i}", 32 * MiB) for i in range(3)])
    started = asyncio.Event()

    def progress(_vid: str, done: int, _total: int | None) -> None:
        if done >= MiB:
            started.set()

    task = asyncio.create_task(
        # one stream per video, so each keeps the prefix it has as a resumable .part
        client.download_archive(
            aid, token, tmp_path, concurrency=3, progress=progress, connections=1
        )
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not list(tmp_path.glob("*.flv"))
    assert list(tmp_path.glob("*.flv.part"))
    connector = client.http_session.connector
    assert connector is not None and not connector._acquired


# --- what the emulator does not do: a scripted storage server on loopback ---------------------

FLV_BODY = b"FLV\x01\x05\x00\x00\x00\x09" + bytes(range(256)) * 100
TOKEN = "T1==dG9rZW4="
Reply = tuple[int, bytes, dict[str, str]]


@pytest_asyncio.fixture
async def scripted() -> AsyncIterator[tuple[Client, list[Reply], list[str | None]]]:
    """A loopback server: ``archive/url`` points at ``/v.flv``, which plays ``replies`` in order."""
    replies: list[Reply] = []
    ranges: list[str | None] = []

    async def url(request: web.Request) -> web.Response:
        return web.Response(text=f"{server.make_url('/v.flv')}?Signature=secret-sig")

    async def storage(request: web.Request) -> web.Response:
        ranges.append(request.headers.get("Range"))
        status, body, headers = replies.pop(0) if len(replies) > 1 else replies[0]
        return web.Response(status=status, body=body, headers=headers)

    app = web.Application()
    app.router.add_get("/hl/archive/url/a/v", url)
    app.router.add_get("/v.flv", storage)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        api_url = str(server.make_url("/hl"))
        async with Client("1", "s", api_url=api_url, sleep=_no_sleep) as c:
            yield c, replies, ranges
    finally:
        await server.close()


async def test_body_that_is_not_flv_is_refused_and_not_kept(scripted, tmp_path):
    client, replies, _ = scripted
    replies.append((200, b"<html>login page</html>", {}))
    with pytest.raises(DownloadError, match="not an FLV file") as info:
        await client.download_video("a", "v", TOKEN, tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert "secret-sig" not in str(info.value)


@pytest.mark.parametrize(
    "header",
    [b"FLV\x02\x05\x00\x00\x00\x09", b"FLV\x01\x05\x00\x00\x00\x0a", b"FLV"],
    ids=["version-2", "header-size-10", "three-bytes"],
)
async def test_a_header_that_is_not_flv_version_1_is_refused(scripted, tmp_path, header):
    client, replies, _ = scripted
    replies.append((200, header + FLV_BODY[9:] if len(header) == 9 else header, {}))
    with pytest.raises(DownloadError, match="not an FLV file"):
        await client.download_video("a", "v", TOKEN, tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_storage_asking_for_a_pause_beyond_the_cap_ends_the_download(scripted, tmp_path):
    client, replies, ranges = scripted
    replies.append((503, b"", {"Retry-After": "3600"}))
    with pytest.raises(DownloadError, match="asked to wait 3600 s"):
        await client.download_video("a", "v", TOKEN, tmp_path)
    assert len(ranges) == 1  # not called back before the hour it asked for
    assert not (tmp_path / "v.flv").exists()


async def test_storage_that_ignores_range_starts_over(scripted, tmp_path):
    client, replies, ranges = scripted
    (tmp_path / "v.flv.part").write_bytes(FLV_BODY[:1000])
    replies.append((200, FLV_BODY, {}))  # 200, not 206: the whole file again
    result = await client.download_video("a", "v", TOKEN, tmp_path)
    assert ranges == [f"bytes=1000-{1000 + 8 * MiB - 1}"]
    assert (tmp_path / "v.flv").read_bytes() == FLV_BODY
    assert result.sha256 == hashlib.sha256(FLV_BODY).hexdigest() and not result.resumed


async def test_mismatched_content_range_is_not_appended(scripted, tmp_path):
    client, replies, ranges = scripted
    (tmp_path / "v.flv.part").write_bytes(FLV_BODY[:1000])
    wrong = f"bytes 500-{len(FLV_BODY) - 1}/{len(FLV_BODY)}"
    replies.extend([(206, FLV_BODY[500:], {"Content-Range": wrong}), (200, FLV_BODY, {})])
    result = await client.download_video("a", "v", TOKEN, tmp_path)
    assert ranges == [f"bytes=1000-{1000 + 8 * MiB - 1}", f"bytes=0-{8 * MiB - 1}"]
    assert (tmp_path / "v.flv").read_bytes() == FLV_BODY
    assert result.sha256 == hashlib.sha256(FLV_BODY).hexdigest()


async def test_storage_404_fails_without_retry(scripted, tmp_path):
    client, replies, ranges = scripted
    replies.append((404, b"<Error><Code>NoSuchKey</Code></Error>", {}))
    with pytest.raises(DownloadError) as info:
        await client.download_video("a", "v", TOKEN, tmp_path)
    assert info.value.status == 404 and info.value.code == "NoSuchKey"
    assert "NoSuchKey" in str(info.value)
    assert len(ranges) == 1
    assert not (tmp_path / "v.flv").exists()


async def test_file_whose_size_changes_on_storage_starts_over(scripted, tmp_path):
    client, replies, _ = scripted
    other = FLV_BODY + b"more"
    replies.extend(
        [
            (206, FLV_BODY[:100], {"Content-Range": f"bytes 0-99/{len(FLV_BODY)}"}),
            (206, other[100:], {"Content-Range": f"bytes 100-{len(other) - 1}/{len(other)}"}),
            (200, other, {}),
        ]
    )
    result = await client.download_video("a", "v", TOKEN, tmp_path)
    assert (tmp_path / "v.flv").read_bytes() == other and result.size == len(other)


async def test_chunked_storage_whose_chunk_ends_arrive_late_is_read_whole(tmp_path):
    # A chunk's closing CRLF may arrive in a later TCP segment than its data (any real network
    # or a re-chunking proxy). aiohttp then reports an empty piece at the chunk's end, which is
    # not the end of the body: the whole file must still arrive.
    chunks = [FLV_BODY, b"b" * 100_000, b"c" * 100_000]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        if request.startswith(b"GET /hl/archive/url/"):
            url = f"http://127.0.0.1:{port}/v.flv?Signature=x".encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(url), url))
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for chunk in chunks:
                writer.write(b"%x\r\n%s" % (len(chunk), chunk))
                await writer.drain()
                await asyncio.sleep(0.02)
                writer.write(b"\r\n")  # the chunk's end, a moment after its data
                await writer.drain()
                await asyncio.sleep(0.02)
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with Client("1", "s", api_url=f"http://127.0.0.1:{port}/hl") as client:
            result = await client.download_video("a", "v", TOKEN, tmp_path)
    finally:
        server.close()
        await server.wait_closed()
    body = b"".join(chunks)
    assert result.size == len(body)
    assert (tmp_path / "v.flv").read_bytes() == body
