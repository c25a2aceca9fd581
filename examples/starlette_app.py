"""The seed's PHP page as a Starlette app: a session per room, a token per visitor.

Same page as ``aiohttp_app.py``. One ``Client`` per app, opened and closed by the lifespan;
handlers reach it through ``request.state``. Serve it with any ASGI server, e.g.::

    python -m aioopentok.emulator          # prints url=... api_key=... api_secret=...
    export OPENTOK_API_URL=<url> OPENTOK_API_KEY=<api_key> OPENTOK_API_SECRET=<api_secret>
    pip install uvicorn && uvicorn --app-dir examples starlette_app:app
"""

from __future__ import annotations

import html
import ipaddress
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

import aioopentok

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>OpenTok room</title></head>
<body>
<script>
var apiKey = {api_key};
var sessionId = {session_id};
var token = {token};
</script>
<p>Share this URL: <a id="share" href="{share}">{share}</a></p>
</body></html>
"""


class State(TypedDict):
    client: aioopentok.Client


def js(value: str) -> str:
    """Return ``value`` as a JavaScript string literal that is safe inside <script>."""
    return json.dumps(value).replace("</", "<\\/")


def location_of(host: str | None) -> str | None:
    """Return the visitor's IP as the session's location hint, if it is an IP address."""
    try:
        return str(ipaddress.ip_address(host or ""))
    except ValueError:
        return None


async def room(request: Request) -> Response:
    """Serve the room page: reuse ``?sessionId=`` or create a session, then make a token."""
    client: aioopentok.Client = request.state.client
    session_id = request.query_params.get("sessionId")
    if not session_id:
        host = request.client.host if request.client else None
        session_id = (await client.create_session(location_of(host))).session_id
    try:
        token = client.generate_token(session_id)
    except aioopentok.InvalidArgumentError:  # not a session ID of our API key
        return PlainTextResponse("unknown sessionId", status_code=400)
    share = str(request.url.replace_query_params(sessionId=session_id))
    body = PAGE.format(
        api_key=js(client.api_key),
        session_id=js(session_id),
        token=js(token),
        share=html.escape(share),
    )
    return HTMLResponse(body)


def make_app(
    api_key: str | None = None, api_secret: str | None = None, api_url: str | None = None
) -> Starlette:
    """Return the app; credentials default to OPENTOK_API_KEY/SECRET/URL (read at startup)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        key = api_key or os.environ["OPENTOK_API_KEY"]
        secret = api_secret or os.environ["OPENTOK_API_SECRET"]
        url = api_url or os.environ.get("OPENTOK_API_URL", aioopentok.PRODUCTION_URL)
        async with aioopentok.Client(key, secret, api_url=url) as client:
            yield {"client": client}

    return Starlette(routes=[Route("/", room)], lifespan=lifespan)


app = make_app()
