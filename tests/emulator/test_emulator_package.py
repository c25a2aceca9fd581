"""The package surface: ``__all__`` is honest and nothing is borrowed from the client."""

from __future__ import annotations

import ast
import importlib
import pathlib

import aioopentok.emulator as emulator_pkg

PKG_DIR = pathlib.Path(emulator_pkg.__file__).parent
ALLOWED_ROOTS = {"aiohttp", "multidict", "pytest_asyncio"}
MODULES = sorted(p.stem for p in PKG_DIR.glob("*.py"))


def test_public_names() -> None:
    for name in ("Emulator", "Faults", "RecordedRequest", "make_app"):
        assert name in emulator_pkg.__all__
    assert emulator_pkg.__all__ == sorted(emulator_pkg.__all__, key=lambda n: (n.upper() != n, n))


def test_every_module_has_an_honest_all_and_a_docstring() -> None:
    for stem in MODULES:
        mod = importlib.import_module(f"aioopentok.emulator.{stem}")
        assert mod.__doc__, stem
        for name in mod.__all__:
            assert hasattr(mod, name), f"{stem}.{name}"
        assert len((PKG_DIR / f"{stem}.py").read_text().splitlines()) < 400, stem


def test_emulator_imports_only_stdlib_and_aiohttp() -> None:
    import sys

    for path in PKG_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level > 0:
                    assert node.level == 1, f"{path.name} imports from outside the emulator"
                    continue
                roots = [node.module or ""]
            elif isinstance(node, ast.Import):
                roots = [alias.name for alias in node.names]
            else:
                continue
            for root in (r.split(".")[0] for r in roots):
                assert root in sys.stdlib_module_names or root in ALLOWED_ROOTS, (
                    f"{path.name} imports {root}"
                )
