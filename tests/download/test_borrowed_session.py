"""A borrowed aiohttp session lends its pool, never its defaults (issue 11.3).

An app's ``ClientSession`` often has ``raise_for_status=True``, default headers (its own
``Authorization``), cookies or ``auth=``. None of it may change a retry, a URL refresh or an
error, and none of it may reach the storage host (a credential leak, and S3 answers 400 "Only
one auth mechanism allowed" to a presigned URL that also carries an ``Authorization``).
"""

from __future__ import annotations

import warnings

import aiohttp
import pytest
from conftest import make_archive, sha256, storage_requests, url_calls
from yarl import URL

from aioopentok import Client
from aioopentok.emulator import Emulator

APP_HEADERS = {"Authorization": "Bearer app-secret-token", "X-App-Tenant": "tenant-7"}


async def _no_sleep(_: float) -> None:
    pass


def _app_session(emu: Emulator, **extra: object) -> aiohttp.ClientSession:
    jar = aiohttp.CookieJar(unsafe=True)  # unsafe: cookies for an IP host such as 127.0.0.1
    jar.update_cookies({"app_session": "cookie-secret"}, URL(emu.url))
    return aiohttp.ClientSession(raise_for_status=True, cookie_jar=jar, **extra)  # type: ignore[arg-type]


def _assert_nothing_of_the_app_was_sent(emu: Emulator) -> None:
    assert emu.requests
    for request in emu.requests:
        sent = {name.lower(): value for name, value in request.headers.items()}
        assert "cookie" not in sent, request.path
        assert "x-app-tenant" not in sent, request.path
        assert "authorization" not in sent, request.path
        assert "app-secret" not in repr(sent) and "cookie-secret" not in repr(sent)
    for request in storage_requests(emu):
        assert not any(name.lower().startswith("x-tb-") for name in request.headers)


async def test_raise_for_status_session_still_retries_refreshes_and_keeps_headers_away(
    emu: Emulator, tmp_path
) -> None:
    async with _app_session(emu, headers=APP_HEADERS) as borrowed:
        client = Client(emu.api_key, emu.api_secret, api_url=emu.url, session=borrowed,
                        sleep=_no_sleep)  # fmt: skip
        async with client:
            session = await client.create_session()
            assert session.session_id
            aid, (vid,), token = make_archive(emu, 3 * 1024 * 1024 + 17)
            emu.faults.fail_503 = 1  # 503 then 200: retried, not raised by aiohttp
            manifest = await client.get_archive_manifest(aid, token)
            assert [v.id for v in manifest.resources] == [vid]
            assert sum("/getmanifest/" in r.path for r in emu.requests) == 2

            emu.faults.storage_403 = 1  # S3's "Request has expired", once
            result = await client.download_video(aid, vid, token, tmp_path)
            assert result.sha256 == emu.video_digest(aid, vid) == sha256(result.path)
            assert url_calls(emu) == 2  # exactly one fresh URL
        assert not borrowed.closed  # lent, never closed by us
    _assert_nothing_of_the_app_was_sent(emu)


async def test_a_borrowed_session_with_auth_sends_no_basic_auth(emu: Emulator, tmp_path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # aiohttp 3.14 deprecates auth=
        auth = aiohttp.BasicAuth("app-user", "app-secret-password")
        borrowed = _app_session(emu, auth=auth)
    async with (
        borrowed,
        Client(emu.api_key, emu.api_secret, api_url=emu.url, session=borrowed) as c,
    ):
            aid, (vid,), token = make_archive(emu, 200_000)
            await c.get_archive_manifest(aid, token)
            await c.download_video(aid, vid, token, tmp_path)
    _assert_nothing_of_the_app_was_sent(emu)


async def test_an_api_error_status_is_ours_not_aiohttps(emu: Emulator) -> None:
    from aioopentok import NotFoundError, ServerError

    async with _app_session(emu, headers=APP_HEADERS) as borrowed:  # noqa: SIM117
        async with Client(emu.api_key, emu.api_secret, api_url=emu.url, session=borrowed,
                          retry=0) as c:  # fmt: skip
            aid, _, token = make_archive(emu, 1000)
            emu.faults.fail_503 = 1
            with pytest.raises(ServerError):  # not aiohttp.ClientResponseError
                await c.get_archive_manifest(aid, token)
            with pytest.raises(NotFoundError):
                await c.get_archive_manifest("00000000-0000-4000-8000-000000000000", token)
