"""Every Python block in README.md runs, and the README's test command is what CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

_STREAM_WRITER_ERROR = "missing 1 required keyword-only argument: 'stream_writer'"
ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def _aiohttp_version() -> tuple[int, ...]:
    return tuple(int(part) for part in aiohttp.__version__.split(".")[:2])


def test_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index: int, tmp_path: Path) -> None:
    code = BLOCKS[index]
    if "def test_" in code:  # a pytest example: run it with pytest, as a user would
        (tmp_path / "test_example.py").write_text(code)
        (tmp_path / "pytest.ini").write_text(
            "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        )
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            str(tmp_path),
        ]
    else:
        command = [sys.executable, "-W", "error", "-c", code]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False
    )
    if "aioresponses" in code and "1 skipped" in result.stdout:
        pytest.skip("aioresponses is not installed")
    if "aioresponses" in code and result.returncode != 0:
        # README: upstream aioresponses is broken on aiohttp >= 3.14.0. Where it fails, it must
        # be that breakage, and on such an aiohttp, so the README's warning stays true.
        assert _STREAM_WRITER_ERROR in result.stdout, result.stdout + result.stderr
        assert _aiohttp_version() >= (3, 14), aiohttp.__version__
        return
    assert result.returncode == 0, result.stdout + result.stderr
    if "def test_" in code:
        assert "1 passed" in result.stdout
    # What a block prints with a literal label must appear (e.g. the tour's "deleted:" line,
    # printed only after the manifest call failed with NotFoundError).
    for label in re.findall(r'print\("([^"]+)"', code):
        assert label in result.stdout, (label, result.stdout)
    if "print(" in code:
        assert result.stdout.strip()


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in ci
    assert "$ scripts/test" in README
    assert "$ scripts/demo" in README
