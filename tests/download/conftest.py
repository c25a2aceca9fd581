"""Helpers for the download tests: archives on the emulator, what storage saw, a fake sleep."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from aioopentok import Client, Role
from aioopentok.emulator import Emulator

MiB = 1024 * 1024


def make_archive(emu: Emulator, *sizes: int) -> tuple[str, list[str], str]:
    """Return (archive_id, video_ids, moderator token) of a fresh archive."""
    session_id = emu.create_session_id()
    ids = [f"v{i}-{size}" for i, size in enumerate(sizes)]
    archive_id = emu.add_archive(session_id, list(zip(ids, sizes, strict=True)))
    token = Client(emu.api_key, emu.api_secret).generate_token(session_id, Role.MODERATOR)
    return archive_id, ids, token


def storage_requests(emu: Emulator) -> list:
    return [r for r in emu.requests if r.path.startswith("/storage/")]


def url_calls(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if "/archive/url/" in r.path)


def files_in(path: Path) -> list[Path]:
    """The directory's entries (a sync helper: async tests must not block on pathlib)."""
    return sorted(path.iterdir())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest_asyncio.fixture
async def client(emu: Emulator, sleeps: list[float]) -> AsyncIterator[Client]:
    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    async with Client(emu.api_key, emu.api_secret, api_url=emu.url, sleep=fake_sleep) as c:
        yield c
