"""Storage errors keep storage's reason, never a signature; failures leave no empty ``.part``.

Issue 11.4 and 11.5, over loopback: the emulator's storage answers as S3 does (XML error bodies),
and a scripted server plays what the emulator does not (``SlowDown``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import files_in, make_archive, sha256, storage_requests

from aioopentok import Client, DownloadError
from aioopentok.cli import main as cli_main
from aioopentok.emulator import Emulator

_SIGNED = re.compile(r"Signature|Expires=|AWSAccessKeyId|X-Amz-", re.IGNORECASE)


def _no_secrets(*texts: str) -> None:
    for text in texts:
        assert not _SIGNED.search(text), text


async def test_an_expired_url_error_carries_s3_code_and_message_and_no_signature(
    emu: Emulator, client: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    aid, (vid,), token = make_archive(emu, 100_000)
    emu.faults.storage_403 = 100
    with pytest.raises(DownloadError) as info:
        await client.download_video(aid, vid, token, tmp_path)
    error = info.value
    assert (error.status, error.code, error.message) == (403, "AccessDenied", "Request has expired")
    text = str(error)
    assert "HTTP 403" in text and "AccessDenied" in text and "Request has expired" in text
    assert f"/{aid}/{vid}.flv" in text  # where, without the query string
    _no_secrets(text, repr(error), repr(error.args), caplog.text)
    assert files_in(tmp_path) == []  # nothing on disk: no empty .part (issue 11.5)


async def test_no_such_key_fails_at_once_and_leaves_nothing(
    emu: Emulator, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aid, (vid,), token = make_archive(emu, 100_000)
    sign = client.download_archive_url

    async def sign_then_delete(*args: str) -> str:
        url = await sign(*args)
        emu.archives[aid].deleted = True  # storage no longer has the key
        return url

    monkeypatch.setattr(client, "download_archive_url", sign_then_delete)
    with pytest.raises(DownloadError) as info:
        await client.download_video(aid, vid, token, tmp_path)
    assert (info.value.status, info.value.code) == (404, "NoSuchKey")
    assert "The specified key does not exist." in str(info.value)
    assert len(storage_requests(emu)) == 1  # permanent: not retried
    assert files_in(tmp_path) == []


async def test_connection_resets_on_the_first_request_leave_nothing(
    emu: Emulator, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aid, (vid,), token = make_archive(emu, 100_000)
    sign = client.download_archive_url

    async def sign_then_reset(*args: str) -> str:
        url = await sign(*args)
        emu.faults.reset_connections = 100
        return url

    monkeypatch.setattr(client, "download_archive_url", sign_then_reset)
    with pytest.raises(DownloadError, match="gave up after 4"):
        await client.download_video(aid, vid, token, tmp_path)
    assert files_in(tmp_path) == []


async def test_a_part_with_bytes_stays_for_the_resume(
    emu: Emulator, client: Client, tmp_path: Path
) -> None:
    aid, (vid,), token = make_archive(emu, 2_000_000)
    emu.faults.cut_body_after = 300_000

    def then_storage_goes_away(_vid: str, done: int, _total: int | None) -> None:
        if done >= 300_000:
            emu.faults.reset_connections = 100  # every retry after the cut is reset

    with pytest.raises(DownloadError, match="gave up"):
        await client.download_video(
            aid, vid, token, tmp_path, connections=1, progress=then_storage_goes_away
        )
    part = tmp_path / f"{vid}.flv.part"
    assert part.stat().st_size == 300_000  # usable bytes: kept
    emu.faults.cut_body_after = None
    emu.faults.reset_connections = 0
    result = await client.download_video(aid, vid, token, tmp_path, connections=1)
    assert result.resumed and result.sha256 == sha256(result.path) == emu.video_digest(aid, vid)


async def test_the_cli_prints_storages_reason(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("OPENTOK_API_KEY", emu.api_key)
    monkeypatch.setenv("OPENTOK_API_SECRET", emu.api_secret)
    monkeypatch.setenv("OPENTOK_API_URL", emu.url)
    aid, (vid,), token = make_archive(emu, 10_000)
    emu.faults.storage_403 = 100
    argv = ["download", aid, vid, "--token", token, "--dest", str(tmp_path), "--retries", "0"]
    code = await asyncio.to_thread(cli_main, argv)
    err = capsys.readouterr().err
    assert code != 0
    assert "AccessDenied" in err and "Request has expired" in err
    _no_secrets(err)


# --- what the emulator does not send: S3's SlowDown ---------------------------------------------

SLOW_DOWN = (
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)
BODY = b"FLV\x01\x05\x00\x00\x00\x09" + bytes(range(256)) * 400


@pytest_asyncio.fixture
async def scripted() -> AsyncIterator[tuple[Client, list, list[float]]]:
    replies: list[tuple[int, bytes, dict[str, str]]] = []
    sleeps: list[float] = []

    async def url(request: web.Request) -> web.Response:
        return web.Response(text=f"{server.make_url('/v.flv')}?Signature=sig&Expires=1")

    async def storage(request: web.Request) -> web.Response:
        status, body, headers = replies.pop(0)
        return web.Response(status=status, body=body, headers=headers)

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    app = web.Application()
    app.router.add_get("/hl/archive/url/a/v", url)
    app.router.add_get("/v.flv", storage)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with Client("1", "s", api_url=str(server.make_url("/hl")), sleep=fake_sleep) as c:
            yield c, replies, sleeps
    finally:
        await server.close()


async def test_slow_down_is_retried_with_back_off(scripted, tmp_path: Path) -> None:
    client, replies, sleeps = scripted
    ok = {"Content-Range": f"bytes 0-{len(BODY) - 1}/{len(BODY)}"}
    replies.extend([(503, SLOW_DOWN, {}), (503, SLOW_DOWN, {"Retry-After": "1"}), (206, BODY, ok)])
    result = await client.download_video("a", "v", "T1==dG9rZW4=", tmp_path)
    assert (tmp_path / "v.flv").read_bytes() == BODY and result.size == len(BODY)
    assert len(sleeps) == 2 and sleeps[1] == 1.0  # jittered back-off, then Retry-After


async def test_slow_down_for_good_says_so(scripted, tmp_path: Path) -> None:
    client, replies, _ = scripted
    replies.extend([(503, SLOW_DOWN, {})] * 4)
    with pytest.raises(DownloadError) as info:
        await client.download_video("a", "v", "T1==dG9rZW4=", tmp_path)
    assert (info.value.status, info.value.code) == (503, "SlowDown")
    assert "Please reduce your request rate." in str(info.value)
    _no_secrets(str(info.value))
    assert files_in(tmp_path) == []


async def test_the_cli_downloads_over_the_connections_it_is_given(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("OPENTOK_API_KEY", emu.api_key)
    monkeypatch.setenv("OPENTOK_API_SECRET", emu.api_secret)
    monkeypatch.setenv("OPENTOK_API_URL", emu.url)
    aid, (vid,), token = make_archive(emu, 1_000_000)
    argv = ["download", aid, vid, "--token", token, "--dest", str(tmp_path), "--json",
            "--connections", "3", "--part-size", "100000"]  # fmt: skip
    assert await asyncio.to_thread(cli_main, argv) == 0
    assert (tmp_path / f"{vid}.flv").read_bytes() == emu.video_bytes(aid, vid)
    assert len(storage_requests(emu)) == 10  # ten parts of 100,000 bytes
    assert "Range" in storage_requests(emu)[-1].headers
