"""The pytest plugin is opt-in, and its fixtures work in pytest-asyncio's strict mode too."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

from aioopentok import Client
from aioopentok.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent.parent
PLUGIN = "aioopentok.testing.pytest_plugin"
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


def run_pytest(where: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run pytest in a directory of its own; return stdout + stderr, asserting nothing."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(where)],
        cwd=where if where.is_dir() else where.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr + f"\nexit={done.returncode}"


def readme_fixture_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    (example,) = [b for b in blocks if f'pytest_plugins = ["{PLUGIN}"]' in b]
    return example


async def test_the_fixtures_give_a_client_bound_to_the_emulator(
    opentok_emulator: Emulator, opentok_client: Client
) -> None:
    assert opentok_emulator.url.startswith("http://127.0.0.1:")
    assert opentok_client.api_url == opentok_emulator.url + "/"
    opentok_emulator.faults.fail_503 = 1  # retried at once: the fixture's client does not sleep
    sid = opentok_emulator.create_session_id()
    archive_id = opentok_emulator.add_archive(sid, videos=[50_000])
    token = opentok_client.generate_token(sid, role="moderator")
    archive = await opentok_client.get_archive_manifest(archive_id, token)
    assert len(archive.resources) == 1


def test_the_readme_fixture_example_runs_as_is_in_strict_mode(tmp_path: Path) -> None:
    (tmp_path / "test_example.py").write_text(readme_fixture_example())
    (tmp_path / "pytest.ini").write_text(INI)
    out = run_pytest(tmp_path, "-p", "asyncio", "-o", "asyncio_mode=strict", "-W", "error")
    assert "1 passed" in out and "exit=0" in out, out


def test_an_unrelated_project_sees_nothing_of_ours(tmp_path: Path) -> None:
    assert "entry-points" not in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [ep for ep in entry_points(group="pytest11") if ep.value.startswith("aioopentok")]
    (tmp_path / "conftest.py").write_text("")
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    (tmp_path / "pytest.ini").write_text(INI)
    listed = run_pytest(tmp_path, "--fixtures")
    assert "exit=0" in listed, listed
    assert "opentok" not in listed.lower(), listed
    # The control: opting in is what makes the fixtures appear.
    opted_in = run_pytest(tmp_path, "--fixtures", "-p", PLUGIN)
    assert "opentok_emulator" in opted_in and "opentok_client" in opted_in, opted_in


def test_opting_in_without_pytest_asyncio_says_what_is_missing(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "pytest_asyncio.py").write_text("raise ImportError('not installed here')\n")
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "PYTHONPATH": str(shadow)}
    plain = run_pytest(tmp_path / "test_plain.py", "-p", "no:asyncio", env=env)
    assert "1 passed" in plain, plain  # not opted in: nothing of ours, nothing broken
    opted = run_pytest(tmp_path / "test_plain.py", "-p", "no:asyncio", "-p", PLUGIN, env=env)
    assert "exit=0" not in opted
    assert "needs pytest-asyncio (pip install pytest-asyncio)" in opted, opted
