"""A transport that calls your function instead of the network, and a router to write one.

Strategy: as httpx's ``MockTransport``: the Client's whole request path (retries, the reply
cap, inflating, ``<Errors>`` mapping, downloads' ranges and URL refreshes) sits above the
``Transport`` seam (``aioopentok._http``), so a handler that answers ``HTTPRequest`` with
``HTTPResponse`` exercises all of it without a socket. Raising ``RequestError`` or
``ConnectError`` from a handler is a network failure, exactly as the aiohttp transport reports
one.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from .._http import HTTPRequest, HTTPResponse
from . import replies

__all__ = ["Handler", "MockTransport", "Router"]

#: What answers a request: a function or a coroutine function.
Handler = Callable[[HTTPRequest], HTTPResponse | Awaitable[HTTPResponse]]


class MockTransport:
    """A ``Transport`` whose replies come from ``handler``; pass it as ``Client(transport=)``.

    Every request is appended to ``requests`` before the handler runs, so a test can assert on
    what was sent (headers, body, URL), failed tries included.
    """

    def __init__(self, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {handler!r}")
        self.handler = handler
        self.requests: list[HTTPRequest] = []
        self.closed = False

    def __repr__(self) -> str:
        return f"<MockTransport handler={self.handler!r} requests={len(self.requests)}>"

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Record the request and return the handler's reply (awaited if it is a coroutine)."""
        self.requests.append(request)
        result = self.handler(request)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, HTTPResponse):
            raise TypeError(
                f"the MockTransport handler returned {result!r}, not an HTTPResponse "
                "(build one with aioopentok.testing.replies)"
            )
        return result

    async def aclose(self) -> None:
        """Mark the transport closed (``Client.close`` calls it)."""
        self.closed = True


def _compile(pattern: str) -> re.Pattern[str]:
    """Turn ``archive/url/{archive_id}/{video_id}`` into a regex; ``{x}`` is one path segment."""
    parts = re.split(r"(\{[A-Za-z_]\w*\})", pattern.lstrip("/"))
    body = "".join(
        rf"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts
    )
    if "://" in pattern:
        return re.compile(body)
    return re.compile(rf"(?:.*/)?{body}")  # a suffix of the path: any base URL will do


class Router:
    """Dispatch requests by method and path to handlers; a ``Handler`` itself.

    Patterns are path templates: ``{name}`` matches one segment (``params(request)`` returns
    them). A pattern without a scheme matches the end of the URL's path, so
    ``"session/create"`` matches whatever ``api_url`` the Client has; one with a scheme
    (``"https://storage.test/{video}.flv"``) matches the URL without its query. The method
    ``"*"`` matches any. The first route added that matches wins; a request no route matches
    gets production's nginx HTML 404.
    """

    def __init__(self) -> None:
        self._routes: list[tuple[str, str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Answer ``method`` requests whose path matches ``pattern`` with ``handler``."""
        self._routes.append((method.upper(), pattern, _compile(pattern), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Decorator form of ``add``."""

        def register(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return register

    def _match(self, request: HTTPRequest) -> tuple[Handler, dict[str, str]] | None:
        parts = urlsplit(request.url)
        for method, pattern, regex, handler in self._routes:
            if method not in ("*", request.method.upper()):
                continue
            subject = (
                f"{parts.scheme}://{parts.netloc}{parts.path}" if "://" in pattern else parts.path
            )
            found = regex.fullmatch(subject)
            if found is not None:
                return handler, found.groupdict()
        return None

    def params(self, request: HTTPRequest) -> dict[str, str]:
        """Return the ``{name}`` segments of the route that ``request`` matches (or ``{}``)."""
        found = self._match(request)
        return {} if found is None else found[1]

    def __call__(self, request: HTTPRequest) -> HTTPResponse | Awaitable[HTTPResponse]:
        found = self._match(request)
        if found is None:
            return replies.nginx_404()
        return found[0](request)
