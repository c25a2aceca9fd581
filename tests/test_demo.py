"""``aioopentok demo``: the whole flow passes against the emulator, and fails when it should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aioopentok._client import Client
from aioopentok.cli import _demo, main

SMALL = ["--videos", "3", "--video-size", "256K", "--concurrency", "2"]
STEP_COUNT = 8


def test_demo_verifies_every_step_and_cleans_up(capsys, monkeypatch, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.setattr(_demo.tempfile, "mkdtemp", lambda **_: str(workdir))
    assert main(["demo", *SMALL]) == 0
    out = capsys.readouterr().out
    step_lines = [line for line in out.splitlines() if line.startswith(("  ok ", "  FAIL"))]
    assert len(step_lines) == STEP_COUNT
    assert all(line.startswith("  ok ") for line in step_lines)
    assert f"{STEP_COUNT}/{STEP_COUNT} steps passed" in out and "every step verified" in out
    assert "MiB/s" in out
    assert not workdir.exists()  # the temporary downloads are gone


def test_demo_json_reports_files_that_match_the_sizes(capsys, tmp_path):
    assert main(["demo", *SMALL, "--json", "--dest", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert [s["ok"] for s in report["steps"]] == [True] * STEP_COUNT
    sizes = _demo.video_sizes(3, 256 * 1024)
    assert sorted(f["size"] for f in report["files"]) == sorted(sizes)
    assert report["bytes"] == sum(sizes)
    for f in report["files"]:  # --dest keeps the files
        assert Path(f["path"]).stat().st_size == f["size"]
        assert Path(f["path"]).read_bytes()[:4] == b"FLV\x01"


def test_demo_fails_when_a_downloaded_file_is_corrupted(capsys, monkeypatch):
    real = Client.download_archive

    def flip_a_byte(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size, same signature: only the digest can tell
        path.write_bytes(bytes(data))

    async def corrupting(self, *args, **kwargs):
        results = await real(self, *args, **kwargs)
        flip_a_byte(Path(results[1].path))
        return results

    monkeypatch.setattr(Client, "download_archive", corrupting)
    assert main(["demo", *SMALL]) == 1
    out = capsys.readouterr().out
    fail_lines = [line for line in out.splitlines() if line.startswith("  FAIL")]
    assert len(fail_lines) == 1
    assert "verify each file" in fail_lines[0] and "SHA-256 differs" in fail_lines[0]
    assert "FAILED" in out and "every step verified" not in out


def test_demo_fails_when_the_archive_survives_delete(capsys, monkeypatch):
    async def no_delete(self, archive_id, token, **kwargs):
        return None

    monkeypatch.setattr(Client, "delete_archive", no_delete)
    assert main(["demo", *SMALL, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["steps"][-1]["name"] == "delete the archive"
    assert not report["steps"][-1]["ok"]


@pytest.mark.parametrize("bad", [["--videos", "0"], ["--video-size", "lots"]])
def test_demo_rejects_bad_options(capsys, bad):
    assert main(["demo", *bad]) == 2
