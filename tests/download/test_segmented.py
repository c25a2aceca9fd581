"""Segmented downloads (issue 13): ranged parts in parallel, one budget, resume per range.

Real sockets to the emulator; a wrapping transport observes (and, for the single-flight test,
rewrites) storage replies, since what it checks is what the download does with them.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import MiB, files_in, make_archive, sha256, storage_requests, url_calls

from aioopentok import AiohttpTransport, Client, HTTPRequest, HTTPResponse
from aioopentok._http import iterate_bytes
from aioopentok.download._ranges import decode_record
from aioopentok.emulator import Emulator

EXPIRED = (
    b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
)


class Watching:
    """A transport around the default one: counts storage requests in flight, can refuse."""

    def __init__(self) -> None:
        self.inner = AiohttpTransport()
        self.open = self.peak = 0
        self.statuses: list[int] = []
        self.refuse_url: str | None = None  # storage requests to this URL get S3's 403

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        if not request.stream:
            return await self.inner.send(request)
        if request.url == self.refuse_url:
            self.statuses.append(403)
            return HTTPResponse(403, {"Content-Type": "application/xml"}, iterate_bytes(EXPIRED))
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            response = await self.inner.send(request)
        except BaseException:
            self.open -= 1
            raise
        self.statuses.append(response.status)
        return HTTPResponse(response.status, response.headers, self._body(response))

    async def _body(self, response: HTTPResponse) -> AsyncIterator[bytes]:
        try:
            async for chunk in response:
                yield chunk
        finally:
            await response.aclose()
            self.open -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _no_sleep(_: float) -> None:
    pass


def _client(emu: Emulator, transport: Watching, **options: int) -> Client:
    return Client(emu.api_key, emu.api_secret, api_url=emu.url, transport=transport,
                  sleep=_no_sleep, **options)  # fmt: skip


def _ranges(emu: Emulator) -> list[tuple[int, int]]:
    out = []
    for request in storage_requests(emu):
        first, _, last = request.headers["Range"].removeprefix("bytes=").partition("-")
        out.append((int(first), int(last)))
    return sorted(out)


async def test_a_large_video_comes_over_parallel_ranges_that_tile_the_file(
    emu: Emulator, tmp_path: Path
) -> None:
    emu.faults.storage_rate = 40 * MiB  # parts overlap in time, as on S3
    aid, (vid,), token = make_archive(emu, 10 * MiB + 12345)
    watching = Watching()
    async with _client(emu, watching) as client:
        result = await client.download_video(
            aid, vid, token, tmp_path, part_size=MiB, connections=4
        )
    assert result.sha256 == emu.video_digest(aid, vid) == sha256(result.path)
    assert result.connections == 4 and watching.peak == 4
    assert result.etag == f'"{hashlib.md5(result.path.read_bytes()).hexdigest()}"'  # as S3
    ranges = _ranges(emu)
    assert ranges[0] == (0, MiB - 1) and len(ranges) == 11
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))  # tiled, no overlap
    assert ranges[-1][1] == result.size - 1
    assert files_in(tmp_path) == [result.path]  # no .part, no ranges record


async def test_one_budget_bounds_storage_connections_across_downloads(
    emu: Emulator, tmp_path: Path
) -> None:
    emu.faults.storage_rate = 20 * MiB
    videos = [make_archive(emu, 4 * MiB) for _ in range(4)]
    folders = [tmp_path / str(i) for i in range(len(videos))]
    for folder in folders:
        folder.mkdir()
    watching = Watching()
    async with _client(emu, watching, max_storage_connections=3) as client:
        results = await asyncio.gather(*(
            client.download_video(aid, vid, token, folder, part_size=256 * 1024, connections=8)
            for (aid, (vid,), token), folder in zip(videos, folders, strict=True)
        ))  # fmt: skip
    assert all(r.sha256 == emu.video_digest(r.archive_id, r.video_id) for r in results)
    assert watching.peak == 3  # 4 downloads x 8 connections asked, 3 allowed


async def test_many_parts_refused_at_once_make_one_url_refresh(
    emu: Emulator, tmp_path: Path
) -> None:
    emu.faults.storage_rate = 16 * MiB
    aid, (vid,), token = make_archive(emu, 4 * MiB)
    watching = Watching()
    async with _client(emu, watching) as client:
        sign = client.download_archive_url
        first: list[str] = []

        async def sign_and_watch(*ids: str) -> str:
            url = await sign(*ids)
            first.append(url)
            return url

        client.download_archive_url = sign_and_watch  # type: ignore[method-assign]
        original = watching.send

        async def expire_after_first_reply(request: HTTPRequest) -> HTTPResponse:
            response = await original(request)
            if request.stream and watching.refuse_url is None:
                watching.refuse_url = first[0]  # the URL expires under every other part
            return response

        watching.send = expire_after_first_reply  # type: ignore[method-assign]
        result = await client.download_video(
            aid, vid, token, tmp_path, part_size=256 * 1024, connections=8
        )
    assert result.sha256 == emu.video_digest(aid, vid)
    # The seven other first requests were refused together (and maybe a next request of the
    # first part's connection, before the fresh URL came): one refresh served them all.
    assert watching.statuses.count(403) >= 7
    assert url_calls(emu) == 2  # the first URL and one refresh for all of them


async def test_storage_that_ignores_range_is_read_as_one_stream(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aid, (vid,), token = make_archive(emu, 3 * MiB)
    watching = Watching()
    real = watching.inner.send

    async def no_range(request: HTTPRequest) -> HTTPResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "range"}
        return await real(HTTPRequest(request.method, request.url, headers, request.body,
                                      request.timeout, request.stream))  # fmt: skip

    monkeypatch.setattr(watching.inner, "send", no_range)
    async with _client(emu, watching) as client:
        result = await client.download_video(aid, vid, token, tmp_path, part_size=256 * 1024)
    assert result.sha256 == emu.video_digest(aid, vid) == sha256(result.path)
    assert watching.statuses == [200] and result.connections == 1


_KILLED_CHILD = """
import asyncio, sys, time
from aioopentok import Client
url, key, secret, aid, vid, token, dest = sys.argv[1:]
def progress(video_id, done, total):
    if done >= 40 * 1024 * 1024:  # well into the job: say so, then stall until killed
        print(done, flush=True)
        time.sleep(3600)
async def main():
    async with Client(key, secret, api_url=url) as c:
        await c.download_video(aid, vid, token, dest, connections=4, part_size=2 * 1024 * 1024,
                               chunk_size=256 * 1024, progress=progress)
asyncio.run(main())
"""


async def test_after_sigkill_a_rerun_fetches_only_missing_parts(
    emu: Emulator, tmp_path: Path
) -> None:
    total, part_size, connections = 64 * MiB, 2 * MiB, 4
    emu.faults.storage_rate = 64 * MiB  # per connection: parts complete one by one
    aid, (vid,), token = make_archive(emu, total)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_CHILD, emu.url, emu.api_key, emu.api_secret,
        aid, vid, token, str(tmp_path), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        received = int(await asyncio.wait_for(child.stdout.readline(), timeout=120))
        child.kill()  # SIGKILL: no cleanup of any kind runs
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()
    record_file = tmp_path / f"{vid}.flv.part.ranges"
    record = decode_record(record_file.read_bytes())
    assert record is not None and record.size == total
    kept = record.done.size
    # Lost work is at most the part each connection was in the middle of.
    assert received - kept <= connections * part_size, (received, kept)
    emu.clear_requests()
    emu.faults.storage_rate = None
    async with Client(emu.api_key, emu.api_secret, api_url=emu.url) as client:
        result = await client.download_video(
            aid, vid, token, tmp_path, connections=connections, part_size=part_size
        )
    asked = sum(last - first + 1 for first, last in _ranges(emu))
    assert asked == total - kept  # exactly what the record did not have
    assert result.resumed and result.sha256 == emu.video_digest(aid, vid) == sha256(result.path)
    assert files_in(tmp_path) == [result.path]  # .part and record gone with the finish
    assert json.dumps(record.etag)  # the record kept the ETag it belongs to


async def test_a_record_of_another_etag_or_size_means_starting_over(
    emu: Emulator, tmp_path: Path
) -> None:
    from aioopentok.download._ranges import RangeSet, Record, encode_record

    aid, (vid,), token = make_archive(emu, 3 * MiB)
    part = tmp_path / f"{vid}.flv.part"
    record = tmp_path / f"{vid}.flv.part.ranges"
    for size, etag in ((3 * MiB, '"another-file"'), (5 * MiB, None)):
        part.write_bytes(emu.video_bytes(aid, vid, 0, MiB) + bytes(2 * MiB))  # holes as zeros
        record.write_bytes(encode_record(Record(size, etag, RangeSet([(0, MiB)]))))
        emu.clear_requests()
        async with Client(emu.api_key, emu.api_secret, api_url=emu.url) as client:
            result = await client.download_video(aid, vid, token, tmp_path, part_size=MiB)
        assert result.sha256 == emu.video_digest(aid, vid) == sha256(result.path)
        assert not result.resumed
        assert files_in(tmp_path) == [result.path]
        result.path.unlink()
