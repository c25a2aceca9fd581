"""The edges where parts run at once: ordered file work under cancellation, restarts, refresh
budgets, refreshes that outlive a failure, and garbled storage replies (a review's findings).

MockTransport where the point is the interleaving, not the wire; a raw socket where it is.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
import traceback
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from aioopentok import Client, DownloadError, Role
from aioopentok._http import HTTPRequest
from aioopentok._transport import AiohttpTransport
from aioopentok.download._threads import SerialQueue
from aioopentok.testing import MockTransport, Router, replies

K = 64 * 1024
SID = "1_MX4xMjM0NX4xMjcuMC4wLjF-VHVlIFNlcCAwNCAxNDo1MzowMiBQRFQgMjAxMn4wLjUyMTE4MTN-"
SECRET = "0123456789abcdef0123456789abcdef01234567"
AID = "200567af-0726-4e93-883b-fe0426d6310a"


async def _no_sleep(_: float) -> None:
    pass


def _client(router: Router, **options: int) -> Client:
    return Client(12345, SECRET, transport=MockTransport(router), sleep=_no_sleep, **options)


def test_a_cancelled_job_does_not_let_the_next_one_overtake_the_running_one() -> None:
    queue = SerialQueue()
    log: list[str] = []
    release = threading.Event()

    def job(name: str, wait: bool) -> None:
        log.append(f"start {name}")
        if wait:
            release.wait(5)
        log.append(f"end {name}")

    first = queue.submit(job, "write", True)
    second = queue.submit(job, "queued write", False)
    assert second.cancel()  # what asyncio.wrap_future does when its awaiting task is cancelled
    third = queue.submit(job, "truncate", False)
    time.sleep(0.05)
    assert log == ["start write"]  # the truncate waits for the write still running
    release.set()
    first.result(5)
    third.result(5)
    assert log == ["start write", "end write", "start truncate", "end truncate"]


async def test_a_restart_forgets_the_old_plan(tmp_path: Path) -> None:
    old, new = replies.flv(8 * K, seed=1), replies.flv(8 * K, seed=2)
    state = {"data": old, "changed": False}
    gets: collections.Counter[str] = collections.Counter()
    router = Router()
    router.add("*", "archive/url/{a}/{v}", lambda _: replies.archive_url("https://s3.test/v.flv"))

    def serve(request: HTTPRequest) -> object:
        asked = dict(request.headers).get("Range", "")
        if state["changed"]:
            gets[asked] += 1
        elif asked.startswith(f"bytes={2 * K}"):
            state["data"], state["changed"] = new, True  # the object is replaced mid-download
        return replies.storage(state["data"], request, chunk_size=4096)

    router.add("GET", "https://s3.test/v.flv", serve)
    seen: list[int] = []
    async with _client(router) as client:
        token = client.generate_token(SID, Role.MODERATOR)
        result = await client.download_video(
            AID, "v1", token, tmp_path, connections=2, part_size=K, chunk_size=4096,
            progress=lambda _v, done, _t: seen.append(done),
        )  # fmt: skip
    assert (tmp_path / "v1.flv").read_bytes() == new and result.size == 8 * K
    # The new plan's eight parts, plus at most the other connection's request in flight when
    # the file changed; the parts still queued in the old plan are not fetched again.
    assert sum(gets.values()) <= 8 + 1, gets
    assert max(seen) <= 8 * K


async def test_every_url_that_works_renews_the_refresh_budget(tmp_path: Path) -> None:
    data = replies.flv(10 * K, seed=3)
    signed = [0]
    served: collections.Counter[str] = collections.Counter()
    router = Router()

    def sign(_: HTTPRequest) -> object:
        signed[0] += 1
        return replies.archive_url(f"https://s3.test/v.flv?Signature=S&n={signed[0]}")

    def serve(request: HTTPRequest) -> object:
        url = urlsplit(request.url).query
        if served[url] >= 2:  # each URL serves two parts, then "expires"
            return replies.s3_error(403, "AccessDenied", "Request has expired")
        served[url] += 1
        return replies.storage(data, request, chunk_size=4096)

    router.add("*", "archive/url/{a}/{v}", sign)
    router.add("GET", "https://s3.test/v.flv", serve)
    async with _client(router) as client:
        token = client.generate_token(SID, Role.MODERATOR)
        await client.download_video(AID, "v1", token, tmp_path, connections=2, part_size=K)
    assert (tmp_path / "v1.flv").read_bytes() == data
    assert signed[0] >= 5  # more fresh URLs than the budget of three in a row: each one worked


async def test_a_refresh_does_not_outlive_a_failed_download(tmp_path: Path) -> None:
    data = replies.flv(4 * K, seed=4)
    calls: list[int] = []
    router = Router()

    async def sign(_: HTTPRequest) -> object:
        calls.append(1)
        if len(calls) > 1:
            await asyncio.sleep(0.3)
            return replies.status(503)
        return replies.archive_url("https://s3.test/v.flv?Signature=S")

    async def serve(request: HTTPRequest) -> object:
        asked = dict(request.headers).get("Range", "")
        if asked.startswith(f"bytes={K}-"):
            return replies.s3_error(403, "AccessDenied", "Request has expired")
        if asked.startswith(f"bytes={2 * K}-"):
            await asyncio.sleep(0.05)
            return replies.s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return replies.storage(data, request, chunk_size=4096)

    router.add("*", "archive/url/{a}/{v}", sign)
    router.add("GET", "https://s3.test/v.flv", serve)
    problems: list[object] = []
    asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: problems.append(ctx))
    async with _client(router, retry=0) as client:
        token = client.generate_token(SID, Role.MODERATOR)
        with pytest.raises(DownloadError, match="NoSuchKey"):
            await client.download_video(AID, "v1", token, tmp_path, connections=4, part_size=K)
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert others == []  # the refresh was cancelled with its parts
    await asyncio.sleep(0.4)
    assert problems == []  # and no "Task exception was never retrieved"


async def test_a_garbled_storage_reply_is_retried_and_never_shows_the_signature(
    tmp_path: Path,
) -> None:
    async def garbled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 2x0 OK\r\nContent-Length: 5\r\n\r\nhello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbled, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/bucket/v.flv?Signature=TOPSECRET&Expires=1&AWSAccessKeyId=AK"
    transport = AiohttpTransport()
    try:
        with pytest.raises(Exception) as info:
            response = await transport.send(HTTPRequest("GET", url, {}, stream=True))
            await response.aclose()
        assert "TOPSECRET" not in "".join(traceback.format_exception(info.value))
        router = Router()
        router.add("*", "archive/url/{a}/{v}", lambda _: replies.archive_url(url))

        async def through(request: HTTPRequest) -> object:
            return await transport.send(request)

        router.add("GET", f"http://127.0.0.1:{port}/bucket/v.flv", through)
        async with _client(router) as client:
            token = client.generate_token(SID, Role.MODERATOR)
            with pytest.raises(DownloadError, match="gave up after 4") as failed:
                await client.download_video(AID, "v1", token, tmp_path)
        assert "TOPSECRET" not in "".join(traceback.format_exception(failed.value))
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()
