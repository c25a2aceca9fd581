"""The ``aioopentok`` command line, run in-process against a live emulator on 127.0.0.1.

``main`` runs its own ``asyncio.run``, so each call goes to a worker thread while the test's loop
keeps serving the emulator.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys

import pytest

from aioopentok import Role, decode_token, generate_token, verify_token
from aioopentok.cli import EXIT_CODES, exit_code_for, main
from aioopentok.cli._progress import ProgressBars, make_progress
from aioopentok.emulator import Emulator

SECRET_MARK = "f00dfacef00dfacef00dfacef00dfacef00dface"


async def run_cli(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


@pytest.fixture
async def emu(monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """An emulator whose credentials are in the environment, as a user would set them."""
    async with Emulator(api_key="4242", api_secret=SECRET_MARK) as e:
        monkeypatch.setenv("OPENTOK_API_KEY", e.api_key)
        monkeypatch.setenv("OPENTOK_API_SECRET", e.api_secret)
        monkeypatch.setenv("OPENTOK_API_URL", e.url)
        monkeypatch.delenv("OPENTOK_TOKEN", raising=False)
        yield e


def seeded_archive(emu: Emulator, videos: int = 2, size: int = 20_000) -> tuple[str, str, str]:
    """Return (session_id, archive_id, moderator token) of a fresh archive."""
    session_id = emu.create_session_id()
    archive_id = emu.add_archive(session_id, [size] * videos, title="cli test")
    token = generate_token(emu.api_key, emu.api_secret, session_id, Role.MODERATOR)
    return session_id, archive_id, token


# --- sessions and tokens -------------------------------------------------------------------


async def test_create_session_prints_an_id_the_emulator_knows(emu, capsys):
    assert await run_cli("create-session", "--p2p", "--location", "10.1.2.3") == 0
    session_id = capsys.readouterr().out.strip()
    info = emu.sessions[session_id]
    assert info.p2p_preference == "enabled"
    assert info.location == "10.1.2.3"


async def test_create_session_json_and_flags_override_env(emu, capsys, monkeypatch):
    monkeypatch.setenv("OPENTOK_API_SECRET", "not-the-secret")
    code = await run_cli("create-session", "--json", "--api-secret", emu.api_secret)
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["session_id"] in emu.sessions
    assert data["partner_id"] == emu.api_key


def test_token_is_made_offline_and_verifies(monkeypatch, capsys):
    monkeypatch.setenv("OPENTOK_API_KEY", "4242")
    monkeypatch.setenv("OPENTOK_API_SECRET", SECRET_MARK)
    monkeypatch.setenv("OPENTOK_API_URL", "http://127.0.0.1:1/hl")  # never contacted
    session_id = "1_MX40MjQyfjEyNy4wLjAuMX5UdWUgU2VwIDA0IDE0OjUzOjAyIFBEVCAyMDEyfjAuNX4"
    code = main(
        ["token", session_id, "--role", "moderator", "--expire-time", "+2h", "--data", "a=b"]
    )
    assert code == 0
    token = capsys.readouterr().out.strip()
    data = verify_token(token, "4242", SECRET_MARK)
    assert data.role is Role.MODERATOR
    assert data.session_id == session_id
    assert data.connection_data == "a=b"
    assert data.expire_time is not None and 7100 < data.expire_time - data.create_time <= 7200


def test_decode_token_shows_fields_and_verify_catches_a_forgery(monkeypatch, capsys):
    session_id = "1_MX40MjQyfjEyNy4wLjAuMX5UdWUgU2VwIDA0IDE0OjUzOjAyIFBEVCAyMDEyfjAuNX4"
    token = generate_token("4242", SECRET_MARK, session_id, "subscriber", connection_data="x")
    assert main(["decode-token", token, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["role"] == "subscriber"
    assert data["session_id"] == session_id
    assert data["connection_data"] == "x"
    assert data["signature"] == decode_token(token).signature

    monkeypatch.setenv("OPENTOK_API_KEY", "4242")
    monkeypatch.setenv("OPENTOK_API_SECRET", "another-secret")
    assert main(["decode-token", token, "--verify"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aioopentok: bad token: ") and "signature" in err
    assert main(["decode-token", "T1==garbage"]) == 2


# --- archives ------------------------------------------------------------------------------


async def test_manifest_lists_every_video(emu, capsys):
    _, archive_id, token = seeded_archive(emu, videos=3)
    assert await run_cli("manifest", archive_id, "--token", token) == 0
    out = capsys.readouterr().out
    for video in emu.archives[archive_id].videos:
        assert video.id in out

    assert await run_cli("manifest", archive_id, "--token", token, "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["archive_id"] == archive_id
    assert [r["id"] for r in data["resources"]] == [v.id for v in emu.archives[archive_id].videos]


async def test_session_id_makes_the_moderator_token(emu, capsys):
    session_id, archive_id, _ = seeded_archive(emu)
    assert await run_cli("manifest", archive_id, "--session-id", session_id, "--json") == 0
    assert json.loads(capsys.readouterr().out)["archive_id"] == archive_id


async def test_token_can_come_from_the_environment(emu, capsys, monkeypatch):
    _, archive_id, token = seeded_archive(emu)
    monkeypatch.setenv("OPENTOK_TOKEN", token)
    assert await run_cli("manifest", archive_id, "--json") == 0
    assert json.loads(capsys.readouterr().out)["archive_id"] == archive_id


async def test_token_commands_need_no_credentials(emu, capsys, monkeypatch):
    _, archive_id, token = seeded_archive(emu)
    monkeypatch.delenv("OPENTOK_API_KEY")
    monkeypatch.delenv("OPENTOK_API_SECRET")
    video_id = emu.archives[archive_id].videos[0].id
    assert await run_cli("url", archive_id, video_id, "--token", token) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith(emu.storage_url + "/storage/") and video_id in url


async def test_delete_then_manifest_is_not_found(emu, capsys):
    _, archive_id, token = seeded_archive(emu)
    assert await run_cli("delete", archive_id, "--token", token) == 0
    assert emu.archives[archive_id].deleted
    assert await run_cli("manifest", archive_id, "--token", token) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("aioopentok: not found: ")


async def test_stitch_reports_processing_then_the_url(emu, capsys):
    _, archive_id, _ = seeded_archive(emu)
    emu.faults.stitch_pending = 1
    assert await run_cli("stitch", archive_id, "--json") == 0
    assert json.loads(capsys.readouterr().out) == {"ready": False, "url": None}
    assert await run_cli("stitch", archive_id) == 0
    assert capsys.readouterr().out.startswith("http://127.0.0.1:")


# --- failures: one line, a distinct code, never the secret --------------------------------


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("bad_id", 2),
        ("bad_role", 2),
        ("no_token", 2),
        ("wrong_secret", 3),
        ("not_found", 4),
        ("server", 5),
        ("network", 6),
        ("bad_reply", 7),
    ],
)
async def test_expected_failures_exit_with_their_code_in_one_line(emu, capsys, case, expected):
    _, archive_id, token = seeded_archive(emu)
    manifest = ["manifest", archive_id, "--token", token, "--retries", "0"]
    argv = {
        "bad_id": ["manifest", "../etc", "--token", token],
        "bad_role": ["token", emu.create_session_id(), "--role", "admin"],
        "no_token": ["manifest", archive_id],
        "wrong_secret": ["create-session", "--api-secret", "x" + SECRET_MARK[1:]],
        "not_found": ["manifest", "0000-missing", "--token", token],
        "server": manifest,
        "network": [*manifest, "--api-url", "http://127.0.0.1:9/hl"],
        "bad_reply": manifest,
    }[case]
    if case == "server":
        emu.faults.fail_503 = 1
    if case == "bad_reply":
        emu.faults.hostile = "truncated"
    assert await run_cli(*argv) == expected
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert SECRET_MARK not in captured.out + captured.err
    lines = captured.err.splitlines()
    if case == "bad_role":  # argparse's usage message, then its one-line error
        assert lines[-1].startswith("aioopentok token: error: ")
    else:
        assert len(lines) == 1 and lines[0].startswith("aioopentok: "), lines


async def test_a_secret_in_a_message_is_masked(emu, capsys):
    # The service never echoes it, but a message that did would still not show it.
    _, _, token = seeded_archive(emu)
    assert await run_cli("manifest", f"{SECRET_MARK}/x", "--token", token) == 2
    captured = capsys.readouterr()
    assert SECRET_MARK not in captured.err
    assert "***" in captured.err


def test_missing_credentials_are_bad_input(monkeypatch, capsys):
    monkeypatch.delenv("OPENTOK_API_KEY", raising=False)
    monkeypatch.delenv("OPENTOK_API_SECRET", raising=False)
    assert main(["create-session"]) == 2
    assert "credentials needed" in capsys.readouterr().err


def test_every_exception_class_has_a_distinct_documented_code():
    import aioopentok

    codes = {
        cls.__name__: exit_code_for(cls("x"))[0]
        for cls in (
            aioopentok.InvalidArgumentError,
            aioopentok.AuthError,
            aioopentok.NotFoundError,
            aioopentok.ServerError,
            aioopentok.RequestError,
            aioopentok.ResponseError,
            aioopentok.DownloadError,
        )
    }
    assert len(set(codes.values())) == len(codes), codes
    assert exit_code_for(aioopentok.RequestTimeoutError("x"))[0] == codes["RequestError"]
    assert exit_code_for(aioopentok.RateLimitedError("x"))[0] == codes["ServerError"]
    assert exit_code_for(aioopentok.DiskError("x"))[0] == codes["DownloadError"]
    assert exit_code_for(RuntimeError("x"))[0] == 1
    assert all(code not in (0, 1) for _, code, _ in EXIT_CODES)


def test_help_and_usage_errors(capsys):
    assert main(["--help"]) == 0
    assert "create-session" in capsys.readouterr().out
    assert main([]) == 2
    assert main(["no-such-command"]) == 2
    assert main(["emulator", "--help"]) == 0
    assert "--seed-archives" in capsys.readouterr().out
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "export" in out and "export-status" in out
    assert main(["export", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--shard", "--report", "--delete-after-verify", "--dry-run"):
        assert flag in out
    assert main(["export", "archives.txt"]) == 2  # --dest is required


def test_python_dash_m_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "aioopentok", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("aioopentok ")


# --- progress bars -------------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bars_only_on_a_terminal_and_not_when_quiet():
    assert make_progress(enabled=True, stdout=io.StringIO(), stderr=FakeTerminal()) is None
    assert make_progress(enabled=True, stdout=FakeTerminal(), stderr=io.StringIO()) is None
    assert make_progress(enabled=False, stdout=FakeTerminal(), stderr=FakeTerminal()) is None
    err = FakeTerminal()
    bars = make_progress(enabled=True, stdout=FakeTerminal(), stderr=err)
    assert isinstance(bars, ProgressBars)
    bars("video-a", 0, 2048)
    bars("video-b", 1024, None)
    bars("video-a", 2048, 2048)
    bars.close()
    assert "video-a" in err.getvalue() and "2.00k" in err.getvalue()


# --- downloads -----------------------------------------------------------------------------


async def test_download_archive_saves_every_video_and_resumes(emu, capsys, tmp_path):
    _, archive_id, token = seeded_archive(emu, videos=3, size=300_000)
    dest = tmp_path / "out"
    argv = ["download", archive_id, "--token", token, "--dest", str(dest), "--json"]
    assert await run_cli(*argv, "--concurrency", "2") == 0
    first = json.loads(capsys.readouterr().out)
    assert first["ok"] and len(first["files"]) == 3
    for video in emu.archives[archive_id].videos:
        path = dest / f"{video.id}.flv"
        assert path.read_bytes() == emu.video_bytes(archive_id, video.id)

    # Leave one video half-done, as an interrupted run would: the next run resumes it.
    video_id = emu.archives[archive_id].videos[1].id
    final = dest / f"{video_id}.flv"
    final.unlink()
    (dest / f"{video_id}.flv.part").write_bytes(emu.video_bytes(archive_id, video_id, 0, 100_000))
    assert await run_cli(*argv) == 0
    again = {f["video_id"]: f for f in json.loads(capsys.readouterr().out)["files"]}
    assert again[video_id]["resumed"] and not again[video_id]["skipped"]
    assert again[video_id]["sha256"] == emu.video_digest(archive_id, video_id)
    assert sum(f["skipped"] for f in again.values()) == 2
    assert final.read_bytes() == emu.video_bytes(archive_id, video_id)


async def test_download_one_video_to_a_file_prints_a_summary(emu, capsys, tmp_path):
    _, archive_id, token = seeded_archive(emu)
    video_id = emu.archives[archive_id].videos[0].id
    target = tmp_path / "clip.flv"
    assert (
        await run_cli("download", archive_id, video_id, "--token", token, "--dest", str(target))
        == 0
    )
    out = capsys.readouterr().out
    assert f"sha256 {emu.video_digest(archive_id, video_id)}" in out
    assert "1/1 videos" in out
    assert target.stat().st_size == emu.video_size(archive_id, video_id)


async def test_download_without_checksum_prints_no_digest(emu, capsys, tmp_path):
    _, archive_id, token = seeded_archive(emu)
    video_id = emu.archives[archive_id].videos[0].id
    target = tmp_path / "clip.flv"
    argv = ["download", archive_id, video_id, "--token", token, "--dest", str(target)]
    assert await run_cli(*argv, "--no-checksum", "--json") == 0
    (entry,) = json.loads(capsys.readouterr().out)["files"]
    assert entry["sha256"] is None
    assert target.read_bytes() == emu.video_bytes(archive_id, video_id)


async def test_a_failed_download_exits_with_its_code_in_one_line(emu, capsys, tmp_path):
    _, archive_id, token = seeded_archive(emu, videos=1)
    emu.faults.storage_403 = 1000  # every signed URL "expired"
    argv = ["download", archive_id, "--token", token, "--dest", str(tmp_path), "--retries", "0"]
    code = await run_cli(*argv)
    captured = capsys.readouterr()
    assert code == 8
    assert "FAILED" in captured.out
    (line,) = captured.err.splitlines()
    assert line.startswith("aioopentok: 1 of 1 downloads failed: ")
    assert not list(tmp_path.glob("*.flv"))
