"""``__all__`` is honest: every listed name exists, the lists are sorted, nothing public is
left out of the package's surface, and the typing marker ships."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import aioopentok

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(aioopentok.__path__, "aioopentok.")
    if not name.endswith("__main__")
)


def test_package_all_is_complete() -> None:  # its order is ruff's (RUF022)
    assert len(set(aioopentok.__all__)) == len(aioopentok.__all__)
    for name in aioopentok.__all__:
        assert hasattr(aioopentok, name), name
    assert isinstance(aioopentok.__version__, str)


@pytest.mark.parametrize("module_name", MODULES)
def test_every_module_declares_an_honest_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module_name} has no __all__"
    for name in names:
        assert hasattr(module, name), f"{module_name}.__all__ lists missing {name}"


def test_every_exception_and_model_is_exported() -> None:
    from aioopentok import _errors, _models

    for module in (_errors, _models):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj):
                assert getattr(aioopentok, name, None) is obj, f"{name} is not exported"


def test_exception_tree_matches_the_documented_bases() -> None:
    assert issubclass(aioopentok.InvalidArgumentError, ValueError)
    assert issubclass(aioopentok.RequestError, OSError)
    assert issubclass(aioopentok.RequestTimeoutError, TimeoutError)
    assert issubclass(aioopentok.DiskError, OSError)
    for name in ("AuthError", "NotFoundError", "RateLimitedError", "ServerError"):
        assert issubclass(getattr(aioopentok, name), aioopentok.APIError)
    for name in aioopentok.__all__:
        obj = getattr(aioopentok, name)
        if inspect.isclass(obj) and issubclass(obj, Exception):
            assert issubclass(obj, aioopentok.OpenTokException), name


def test_py_typed_marker_ships() -> None:
    assert (Path(aioopentok.__file__).parent / "py.typed").exists()


def test_no_module_passes_the_size_we_split_at() -> None:
    root = Path(aioopentok.__file__).parent
    sizes = {p.relative_to(root): len(p.read_text().splitlines()) for p in root.rglob("*.py")}
    assert max(sizes.values()) <= 450, sizes


def test_the_transport_seam_is_public() -> None:
    # Users write their own transports, or use aioopentok.testing.MockTransport.
    from aioopentok import _http, _transport, testing

    assert aioopentok.Transport is _http.Transport is testing.Transport
    assert aioopentok.HTTPRequest is _http.HTTPRequest is testing.HTTPRequest
    assert aioopentok.HTTPResponse is _http.HTTPResponse is testing.HTTPResponse
    assert aioopentok.AiohttpTransport is _transport.AiohttpTransport
    assert isinstance(aioopentok.AiohttpTransport(), aioopentok.Transport)
    assert isinstance(testing.MockTransport(lambda r: testing.replies.deleted()), _http.Transport)
