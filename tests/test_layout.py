"""The import graph: data flows one way (no circles), and the sans-I/O layers stay pure."""

from __future__ import annotations

import ast
from pathlib import Path

import aioopentok

PACKAGE = Path(aioopentok.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    """Modules of ours that ``path`` imports, type-checking-only imports included.

    An import for type hints still makes a circle of knowledge (style.md: the callee never
    imports the caller, not even for type hints), so it counts here.
    """
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("aioopentok"):
                if node.module:  # "from .x import name": x itself (name may be a submodule)
                    found.add(module)
                found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("aioopentok"))
    return found


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in _imports(path, name) if m in paths and m != name}
        for name, path in paths.items()
    }


def test_the_import_graph_has_no_circle() -> None:
    graph = _graph()
    # A package's __init__ importing its own submodules is not a circle of responsibility,
    # but a submodule importing its parent package back would be: keep both kinds out.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_downloads_and_exports_never_import_the_client() -> None:
    graph = _graph()
    for name, imports in graph.items():
        if name.startswith(("aioopentok.download", "aioopentok.export")):
            assert "aioopentok._client" not in imports, name
            assert "aioopentok" not in imports, name  # the package root imports the Client
