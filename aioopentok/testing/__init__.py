"""Test doubles for apps that use aioopentok: no socket, no hand-written XML.

``MockTransport(handler)`` goes where the network was (``Client(..., transport=...)``); the
builders in ``replies`` answer with the service's recorded bytes; ``Router`` maps method and
path to handlers. The pytest plugin (``aioopentok.testing.pytest_plugin``: a live emulator
fixture) is opt-in: ``pytest_plugins = ["aioopentok.testing.pytest_plugin"]`` in your
top-level conftest.py.
"""

from __future__ import annotations

from .._http import HTTPRequest, HTTPResponse, Transport
from . import replies
from ._mock import Handler, MockTransport, Router

__all__ = [
    "HTTPRequest",
    "HTTPResponse",
    "Handler",
    "MockTransport",
    "Router",
    "Transport",
    "replies",
]
