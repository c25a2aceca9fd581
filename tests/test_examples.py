"""The examples in ``examples/``, each run against a live emulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

import aioopentok
from aioopentok import Role, verify_token
from aioopentok.emulator import Emulator

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def emu_env(opentok_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator, with its credentials in the environment as the examples read them."""
    monkeypatch.setenv("OPENTOK_API_KEY", opentok_emulator.api_key)
    monkeypatch.setenv("OPENTOK_API_SECRET", opentok_emulator.api_secret)
    monkeypatch.setenv("OPENTOK_API_URL", opentok_emulator.url)
    return opentok_emulator


def page_values(html: str) -> dict[str, str]:
    """Return the JavaScript variables and the share link the page embeds."""
    values = {
        name: json.loads(literal)
        for name, literal in re.findall(r"var (\w+) = (\"[^\"]*\");", html)
    }
    match = re.search(r'<a id="share" href="([^"]+)">', html)
    assert match, html
    values["share"] = match[1].replace("&amp;", "&")
    return values


def check_room_page(emu: Emulator, html: str) -> dict[str, str]:
    """Assert the page holds the API key, a session of the emulator, a token for it, a link."""
    values = page_values(html)
    assert values["apiKey"] == emu.api_key
    assert values["sessionId"] in emu.sessions
    data = verify_token(values["token"], emu.api_key, emu.api_secret)
    assert data.session_id == values["sessionId"]
    assert data.role is Role.PUBLISHER
    assert parse_qs(urlsplit(values["share"]).query)["sessionId"] == [values["sessionId"]]
    return values


# --- the aiohttp app ---------------------------------------------------------------------


async def test_aiohttp_app_makes_a_room_and_the_share_link_reuses_it(emu_env):
    example = load_example("aiohttp_app")
    app = example.make_app()
    async with TestClient(TestServer(app)) as http:
        first = await http.get("/")
        assert first.status == 200
        room = check_room_page(emu_env, await first.text())
        assert urlsplit(room["share"]).netloc == f"{http.host}:{http.port}"
        sessions = len(emu_env.sessions)

        link = urlsplit(room["share"])
        visitor = await http.get(f"{link.path}?{link.query}")
        again = check_room_page(emu_env, await visitor.text())
        assert again["sessionId"] == room["sessionId"]
        assert again["token"] != room["token"]  # a token per visitor
        assert len(emu_env.sessions) == sessions  # no new session for a shared room

        other = check_room_page(emu_env, await (await http.get("/")).text())
        assert other["sessionId"] != room["sessionId"]

        bad = await http.get("/", params={"sessionId": "1_bm90LWEtc2Vzc2lvbg"})
        assert bad.status == 400
        client = app[example.CLIENT]
        assert not client.closed
    assert client.closed  # closed by the app's cleanup


# --- the Starlette app -------------------------------------------------------------------


class RecordingClient(aioopentok.Client):
    made: list[aioopentok.Client] = []  # noqa: RUF012

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        RecordingClient.made.append(self)


@asynccontextmanager
async def asgi_lifespan(app) -> AsyncIterator[dict]:
    """Run an ASGI app's lifespan as a server does; yield the state it set up.

    (Starlette's TestClient would do this, but it now warns that its httpx is deprecated.)
    """
    state: dict = {}
    to_app: asyncio.Queue = asyncio.Queue()
    from_app: asyncio.Queue = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    task = asyncio.create_task(app(scope, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    assert (await from_app.get())["type"] == "lifespan.startup.complete"
    try:
        yield state
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
        await task


async def test_starlette_app_makes_a_room_and_the_share_link_reuses_it(emu_env, monkeypatch):
    import httpx

    RecordingClient.made.clear()
    monkeypatch.setattr(aioopentok, "Client", RecordingClient)
    app = load_example("starlette_app").make_app()
    async with asgi_lifespan(app) as state:

        async def with_state(scope, receive, send):  # what an ASGI server does per request
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://example.test") as http:
            first = await http.get("/")
            assert first.status_code == 200
            room = check_room_page(emu_env, first.text)
            link = urlsplit(room["share"])
            assert link.netloc == "example.test"
            again = check_room_page(emu_env, (await http.get(f"{link.path}?{link.query}")).text)
            bad = await http.get("/", params={"sessionId": "1_bm90LWEtc2Vzc2lvbg"})
        (client,) = RecordingClient.made  # one Client per app, opened by the lifespan...
        assert not client.closed
    assert client.closed  # ...and closed by it
    assert again["sessionId"] == room["sessionId"]
    assert again["token"] != room["token"]
    assert len(emu_env.sessions) == 1
    assert emu_env.sessions[room["sessionId"]].location == "127.0.0.1"
    assert bad.status_code == 400


# --- the bulk download script ------------------------------------------------------------


async def test_bulk_download_fetches_every_archive_and_summarises(emu_env, tmp_path, capsys):
    session_id = emu_env.create_session_id()
    archives = [emu_env.add_archive(session_id, [150_000, 90_000]) for _ in range(2)]
    listing = tmp_path / "archives.txt"
    listing.write_text(
        "# archive  session\n" + "".join(f"{aid} {session_id}\n" for aid in archives) + "\n"
    )
    dest = tmp_path / "out"
    bulk = load_example("bulk_download")
    code = await asyncio.to_thread(bulk.main, [str(listing), "--dest", str(dest)])
    out = capsys.readouterr().out
    assert code == 0, out
    for aid in archives:
        for video in emu_env.archives[aid].videos:
            path = dest / aid / f"{video.id}.flv"
            assert path.read_bytes() == emu_env.video_bytes(aid, video.id)
        assert re.search(rf"^ok +{aid}  2/2 videos", out, re.M)
    assert "2/2 archives complete, 0.5 MiB" in out


async def test_bulk_download_reports_a_missing_archive_and_gets_the_rest(emu_env, tmp_path, capsys):
    session_id = emu_env.create_session_id()
    good = emu_env.add_archive(session_id, [100_000])
    listing = tmp_path / "archives.txt"
    listing.write_text(f"{good} {session_id}\n0000-gone {session_id}\n")
    bulk = load_example("bulk_download")
    code = await asyncio.to_thread(bulk.main, [str(listing), "--dest", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"^FAILED 0000-gone", out, re.M) and "not found" in out
    assert "1/2 archives complete" in out
    assert len(list((tmp_path / "out" / good).glob("*.flv"))) == 1


async def test_bulk_download_takes_each_archive_once_and_refuses_zero_concurrency(
    emu_env, tmp_path, capsys
):
    session_id = emu_env.create_session_id()
    aid = emu_env.add_archive(session_id, [100_000])
    listing = tmp_path / "archives.txt"
    listing.write_text(f"{aid} {session_id}\n{aid} {session_id}\n")
    bulk = load_example("bulk_download")
    with pytest.raises(SystemExit) as info:
        bulk.main([str(listing), "--concurrency", "0"])
    assert info.value.code == 2  # argparse: a usage error, not a hang on Semaphore(0)
    capsys.readouterr()
    code = await asyncio.to_thread(bulk.main, [str(listing), "--dest", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count(f"ok     {aid}") == 1 and "1/1 archives complete" in out
