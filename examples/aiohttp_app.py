"""The seed's PHP page as an aiohttp app: a session per room, a token per visitor.

A visit without ``?sessionId=`` opens a new room (creates a session near the visitor's IP); the
page embeds ``apiKey``, ``sessionId`` and a fresh token for the browser's OpenTok library, and a
share link that brings others into the same room. One ``Client`` per app: opened at startup,
closed at cleanup (``cleanup_ctx``).

Try it against the emulator (no account needed)::

    python -m aioopentok.emulator          # prints url=... api_key=... api_secret=...
    export OPENTOK_API_URL=<url> OPENTOK_API_KEY=<api_key> OPENTOK_API_SECRET=<api_secret>
    python examples/aiohttp_app.py         # then open http://127.0.0.1:8080/
"""

from __future__ import annotations

import html
import ipaddress
import json
import os
from collections.abc import AsyncIterator

from aiohttp import web

import aioopentok

CLIENT = web.AppKey("client", aioopentok.Client)

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


def js(value: str) -> str:
    """Return ``value`` as a JavaScript string literal that is safe inside <script>."""
    return json.dumps(value).replace("</", "<\\/")


def location_of(host: str | None) -> str | None:
    """Return the visitor's IP as the session's location hint, if it is an IP address."""
    try:
        return str(ipaddress.ip_address(host or ""))
    except ValueError:
        return None


async def room(request: web.Request) -> web.Response:
    """Serve the room page: reuse ``?sessionId=`` or create a session, then make a token."""
    client = request.app[CLIENT]
    session_id = request.query.get("sessionId")
    if not session_id:
        session = await client.create_session(location_of(request.remote))
        session_id = session.session_id
    try:
        token = client.generate_token(session_id)
    except aioopentok.InvalidArgumentError:  # not a session ID of our API key
        raise web.HTTPBadRequest(text="unknown sessionId") from None
    # Built from the parts, not request.url: aiohttp 3.9's request.url rejects a host with a
    # port under current yarl releases.
    share = f"{request.scheme}://{request.host}{request.rel_url.with_query(sessionId=session_id)}"
    body = PAGE.format(
        api_key=js(client.api_key),
        session_id=js(session_id),
        token=js(token),
        share=html.escape(share),
    )
    return web.Response(text=body, content_type="text/html")


def make_app(
    api_key: str | None = None, api_secret: str | None = None, api_url: str | None = None
) -> web.Application:
    """Return the app; credentials default to OPENTOK_API_KEY/SECRET/URL."""
    key = api_key or os.environ["OPENTOK_API_KEY"]
    secret = api_secret or os.environ["OPENTOK_API_SECRET"]
    url = api_url or os.environ.get("OPENTOK_API_URL", aioopentok.PRODUCTION_URL)

    async def client_ctx(app: web.Application) -> AsyncIterator[None]:
        async with aioopentok.Client(key, secret, api_url=url) as client:
            app[CLIENT] = client
            yield

    app = web.Application()
    app.cleanup_ctx.append(client_ctx)
    app.router.add_get("/", room)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=8080)
