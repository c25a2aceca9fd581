"""``aioopentok export`` and ``export-status``, in-process against a live emulator on 127.0.0.1.

``main`` runs its own ``asyncio.run``, so each call goes to a worker thread while the test's loop
keeps serving the emulator.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest

from aioopentok.cli import main
from aioopentok.cli._progress import JobDisplay, job_line
from aioopentok.emulator import Emulator
from aioopentok.export import ExportProgress

SIZE = 1_500


async def run_cli(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


@pytest.fixture
def env(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator, with its credentials in the environment as a user would set them."""
    monkeypatch.setenv("OPENTOK_API_KEY", emu.api_key)
    monkeypatch.setenv("OPENTOK_API_SECRET", emu.api_secret)
    monkeypatch.setenv("OPENTOK_API_URL", emu.url)
    return emu


def write_list(path: Path, emu: Emulator, count: int, *, extra: str = "") -> list[str]:
    session_id = emu.create_session_id()
    ids = [emu.add_archive(session_id, [SIZE, SIZE]) for _ in range(count)]
    lines = ["# ARCHIVE_ID SESSION_ID", ""] + [f"{a}   {session_id}" for a in ids]
    path.write_text("\n".join(lines) + "\n" + extra)
    return ids


async def test_export_json_summary_report_and_a_rerun_that_skips_everything(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing, dest = tmp_path / "archives.txt", tmp_path / "out"
    ids = write_list(listing, env, 12)
    report = tmp_path / "report.jsonl"
    argv = ["export", str(listing), "--dest", str(dest), "--json", "--report", str(report)]
    assert await run_cli(*argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {k: summary[k] for k in ("done", "failed", "skipped", "videos", "bytes")} == {
        "done": 12,
        "failed": 0,
        "skipped": 0,
        "videos": 24,
        "bytes": 24 * SIZE,
    }
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(r["archive_id"] for r in rows) == sorted(ids)
    assert {r["status"] for r in rows} == {"done"} and all(r["error"] is None for r in rows)
    assert set(rows[0]) == {"archive_id", "session_id", "status", "videos", "bytes", "error"}

    env.clear_requests()
    csv_report = tmp_path / "again.csv"
    argv[-1] = str(csv_report)
    assert await run_cli(*argv) == 0
    assert env.requests == []
    assert json.loads(capsys.readouterr().out)["skipped"] == 12
    table = list(csv.DictReader(io.StringIO(csv_report.read_text())))
    assert len(table) == 12 and {r["status"] for r in table} == {"skipped"}


async def test_a_malformed_line_exits_2_naming_file_and_line_before_any_request(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "archives.txt"
    write_list(listing, env, 5, extra="just-one-field\n")
    assert await run_cli("export", str(listing), "--dest", str(tmp_path / "out")) == 2
    assert f"{listing}:8:" in capsys.readouterr().err  # 2 header lines + 5 archives, then it
    assert env.requests == [] and not (tmp_path / "out").exists()


async def test_some_failures_exit_8_after_all_others_and_status_lists_them(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing, dest = tmp_path / "archives.txt", tmp_path / "out"
    ids = write_list(listing, env, 6)
    session_id = env.archives[ids[0]].session_id
    gone = "00000000-0000-4000-8000-00000000dead"
    with listing.open("a") as f:
        f.write(f"{gone} {session_id}\n")
    assert await run_cli("export", str(listing), "--dest", str(dest), "-q") == 8
    out = capsys.readouterr().out
    assert "6 done, 1 failed" in out and "export-status" in out

    assert await run_cli("export-status", str(dest), "--json", "--failed") == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["done"], status["failed"], status["pending"]) == (6, 1, 0)
    assert status["bytes"] == 12 * SIZE
    assert status["failures"][0]["archive_id"] == gone
    assert "404" in status["failures"][0]["error"]
    assert await run_cli("export-status", str(dest), "--failed") == 0
    assert f"FAILED {gone}" in capsys.readouterr().out


async def test_bad_credentials_exit_3(env: Emulator, tmp_path: Path, monkeypatch) -> None:
    listing = tmp_path / "archives.txt"
    write_list(listing, env, 30)
    monkeypatch.setenv("OPENTOK_API_SECRET", "e" * 40)
    assert await run_cli("export", str(listing), "--dest", str(tmp_path / "out"), "-q") == 3
    assert len(env.requests) <= 16


async def test_dry_run_makes_no_request_and_says_what_it_would_do(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing, dest = tmp_path / "archives.txt", tmp_path / "out"
    ids = write_list(listing, env, 4)
    assert await run_cli("export", str(listing), "--dest", str(dest), "-q") == 0
    with listing.open("a") as f:
        f.write(f"{env.add_archive(env.archives[ids[0]].session_id, [SIZE])} x\n")
    capsys.readouterr()
    env.clear_requests()
    argv = ["export", str(listing), "--dest", str(dest), "--dry-run", "--delete-after-verify"]
    assert await run_cli(*argv) == 0
    out = capsys.readouterr().out
    assert out.count("\ndelete ") + out.startswith("delete ") == 4
    assert "download+delete" in out and "would download 1, skip 0, delete 5" in out
    assert await run_cli(*argv, "--json") == 0
    assert json.loads(capsys.readouterr().out)["download"] == 1
    assert env.requests == []
    assert not any(a.deleted for a in env.archives.values())


async def test_stdin_list_and_shards_split_the_job(
    env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    listing, dest = tmp_path / "archives.txt", tmp_path / "out"
    ids = write_list(listing, env, 20)
    done = 0
    for k in range(2):
        monkeypatch.setattr("sys.stdin", io.StringIO(listing.read_text()))
        assert await run_cli("export", "-", "--dest", str(dest), "--shard", f"{k}/2", "--json") == 0
        done += json.loads(capsys.readouterr().out)["done"]
    assert done == 20
    assert all((dest / a / "manifest.json").is_file() for a in ids)
    assert await run_cli("export-status", str(dest)) == 0
    out = capsys.readouterr().out
    assert "20 done, 0 failed, 0 pending" in out and "shard 0/2" in out and "shard 1/2" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--shard", "2/2"],
        ["--shard", "x"],
        ["--report", "r.txt"],
        ["--concurrency", "0"],
        ["--report", "no/such/dir/r.csv"],
    ],
)
async def test_bad_options_exit_2_before_any_request(
    env: Emulator, tmp_path: Path, argv: list[str]
) -> None:
    listing = tmp_path / "archives.txt"
    write_list(listing, env, 2)
    assert await run_cli("export", str(listing), "--dest", str(tmp_path / "o"), *argv) == 2
    assert env.requests == []


async def test_export_status_of_a_directory_without_a_journal_exits_2(tmp_path: Path) -> None:
    assert await run_cli("export-status", str(tmp_path)) == 2


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _snapshot(**kw: object) -> ExportProgress:
    fields: dict[str, object] = {
        "done": 10,
        "failed": 1,
        "skipped": 5,
        "deleted": 0,
        "videos": 20,
        "bytes": 3 * 1024**2,
        "seconds": 2.0,
        "total": 32,
        "concurrency": 16,
    }
    fields.update(kw)
    return ExportProgress(**fields)  # type: ignore[arg-type]


def test_the_job_line_has_archives_bytes_rate_eta_and_failures() -> None:
    line = job_line(_snapshot())
    assert "archives 16/32" in line and "1 failed" in line and "5 skipped" in line
    assert "3.0 MiB" in line and "1.5 MiB/s" in line and "ETA 0:00:02" in line


def test_one_line_redrawn_on_a_terminal_and_throttled_lines_in_a_log() -> None:
    now = [0.0]
    terminal = FakeTerminal()
    display = JobDisplay(terminal, tty=True, clock=lambda: now[0])
    for k in range(100):
        display.update(_snapshot(done=k))
    display.close()
    text = terminal.getvalue()
    assert text.count("\n") == 1 and text.count("\r") == 2  # the first draw, and the last

    log = io.StringIO()
    display = JobDisplay(log, tty=False, clock=lambda: now[0])
    for k in range(100):
        now[0] = k * 0.5
        display.update(_snapshot(done=k))
    display.close()
    assert log.getvalue().count("\n") == 5  # every 10 s of 50
