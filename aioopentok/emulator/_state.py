"""In-memory state of one emulated OpenTok account: sessions, archives, signed URLs, logs.

Strategy: plain mutable objects, no I/O, no aiohttp; the routes (``_app``) read and change
them, and the ``Emulator`` exposes them to tests. Signed storage URLs use an emulator-private
HMAC key (never the API secret), carry a serial number so every issued URL is distinct (the
``expire_urls_after_bytes`` knob burns URLs one by one), and are checked here too.

Account scale: sessions, archives and videos are slotted and hold only ids and sizes (a
video's bytes are made on demand by ``FlvVideo``), ~0.9 KB per archive of two videos with
its own session. Measured (2-core VM): ``python -m aioopentok.emulator --seed-archives 100000
--videos-per-archive 2 --video-size 1048576 --export-list FILE`` is listening 2.4 s after
launch with a peak RSS of 143 MB (30,000: 0.9 s, 70 MB); before, 100,000 archives in one
shared session already took 215 MB, and each video once served kept a 1 MiB template.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from multidict import CIMultiDict

from ._faults import Faults
from ._flv import FRAME_MS, FlvVideo, tag_count
from ._tokens import make_session_id, session_api_key

__all__ = [
    "ArchiveInfo",
    "RecordedRequest",
    "SessionInfo",
    "State",
    "VideoInfo",
    "VideoSpec",
]

#: What ``add_archive`` takes per video: a size, or (id, size), or (id, size, name).
VideoSpec = int | tuple[str, int] | tuple[str, int, str]

_TIMELINE_STEP_MS = 8  # recorded manifests start streams a few ms apart
_OFFSETS = tuple(1255 + i * _TIMELINE_STEP_MS for i in range(64))  # shared int objects


def _offset_ms(index: int) -> int:
    """Timeline offset of an archive's stream ``index`` (recorded: 1255, 1263, ...)."""
    return _OFFSETS[index] if index < len(_OFFSETS) else 1255 + index * _TIMELINE_STEP_MS


def _random_uuids(count: int) -> list[str]:
    """Return ``count`` random (version 4) UUID strings; 3x faster than ``uuid.uuid4()``."""
    h = os.urandom(16 * count).hex()
    out = []
    for i in range(0, 32 * count, 32):
        s = h[i : i + 32]
        variant = "89ab"[int(s[16], 16) & 3]
        out.append(f"{s[:8]}-{s[8:12]}-4{s[13:16]}-{variant}{s[17:20]}-{s[20:]}")
    return out


def _id_date(now: datetime) -> str:
    """The date as session IDs carry it (``Tue Sep 04 14:53:02 UTC 2012``)."""
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", now.timetuple())


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it."""

    method: str
    path: str
    query: str
    headers: CIMultiDict[str]
    body: bytes


# slots: an account-scale emulator holds 100,000s of these (see ``State.seed_archives``).
@dataclass(slots=True)
class SessionInfo:
    """A session the emulator created (or was told about)."""

    session_id: str
    location: str
    p2p_preference: str
    properties: dict[str, str]
    create_dt: datetime


@dataclass(slots=True)
class VideoInfo:
    """One stream of an archive; ``flv`` generates its bytes (made on demand, never stored)."""

    id: str
    size: int
    name: str
    offset_ms: int
    archive_id: str

    @property
    def flv(self) -> FlvVideo:
        """The video's bytes: a seed and its layout, cheap to make (microseconds)."""
        return FlvVideo(self.archive_id, self.id, self.size)

    @property
    def length_ms(self) -> int:
        """Duration in milliseconds, as the manifest reports it."""
        return tag_count(self.size) * FRAME_MS


@dataclass(slots=True)
class ArchiveInfo:
    """An archive of one session."""

    id: str
    session_id: str
    title: str
    videos: list[VideoInfo]
    deleted: bool = False
    stitch_calls: int = 0
    stitched: FlvVideo | None = None  # made on the first download of the stitched file

    def video(self, video_id: str) -> VideoInfo | None:
        """Return the video with this id, or None."""
        return next((v for v in self.videos if v.id == video_id), None)


def _parse_spec(spec: VideoSpec) -> tuple[str, int, str]:
    """Return (id, size, name) of one ``add_archive`` video spec."""
    if isinstance(spec, int):
        return str(uuid.uuid4()), spec, ""
    if len(spec) == 2:
        return spec[0], spec[1], ""
    return spec[0], spec[1], spec[2]


@dataclass
class State:
    """Everything the emulated service knows; shared by the routes and the Emulator."""

    api_key: str
    api_secret: str = field(repr=False)
    staging: bool = False
    faults: Faults = field(default_factory=Faults)
    clock: Callable[[], float] = time.time
    sessions: dict[str, SessionInfo] = field(default_factory=dict)
    archives: dict[str, ArchiveInfo] = field(default_factory=dict)
    requests: list[RecordedRequest] | deque[RecordedRequest] = field(default_factory=list)
    storage_auth_leaks: int = 0
    base_url: str = ""  # "http://host:port", set once the server listens
    # Bookkeeping for the storage fault knobs.
    cut_done: set[tuple[str, int]] = field(default_factory=set)
    url_bytes: dict[str, int] = field(default_factory=dict)
    # Whole-file hashes by (archive id, file name or video id), filled lazily by ``_hashes``.
    sha256: dict[tuple[str, str], str] = field(default_factory=dict)
    md5: dict[tuple[str, str], str] = field(default_factory=dict)
    md5_pending: dict[tuple[str, str], asyncio.Future[str]] = field(default_factory=dict)
    _url_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    _url_serial: int = 0

    def create_session(
        self, location: str = "", properties: Mapping[str, str] | None = None
    ) -> SessionInfo:
        """Make and remember a new session; its ID embeds our API key like the real ones."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        return self._new_session(location, dict(properties or {}), now, _id_date(now))

    def _new_session(
        self, location: str, props: dict[str, str], now: datetime, date: str
    ) -> SessionInfo:
        rand = f"0.{secrets.randbelow(10**16):016d}"
        sid = make_session_id(self.api_key, location, date, rand)
        info = SessionInfo(
            session_id=sid,
            location=location,
            p2p_preference=props.get("p2p.preference", "disabled"),
            properties=props,
            create_dt=now,
        )
        self.sessions[sid] = info
        return info

    def add_archive(
        self, session_id: str, videos: Sequence[VideoSpec], title: str | None = None
    ) -> ArchiveInfo:
        """Record an archive of ``session_id`` with deterministic FLV videos."""
        if session_api_key(session_id) != self.api_key:
            raise ValueError("session_id is not a session of this API key")
        if not videos:
            raise ValueError("an archive needs at least one video")
        archive_id = str(uuid.uuid4())
        infos = []
        for i, spec in enumerate(videos):
            vid, size, name = _parse_spec(spec)
            tag_count(size)  # raises ValueError if too small for an FLV file
            infos.append(VideoInfo(vid, size, name, _offset_ms(i), archive_id))
        if title is None:
            title = str(int(self.clock() * 1000))  # the recorded titles were ms timestamps
        archive = ArchiveInfo(archive_id, session_id, title, infos)
        self.archives[archive_id] = archive
        return archive

    def seed_archives(
        self, count: int, videos_per_archive: int, video_size: int
    ) -> list[tuple[str, str]]:
        """Add ``count`` archives, each in a new session of its own; return (archive, session).

        The fast path of ``add_archive`` for account-scale runs: one date for all the new
        sessions and shared small values, about 1 KB per archive of 2 videos.
        """
        if count < 0 or videos_per_archive < 1:
            raise ValueError("count must be >= 0 and videos_per_archive >= 1")
        tag_count(video_size)  # raises ValueError if too small for an FLV file
        now = datetime.fromtimestamp(self.clock(), UTC)
        date, title = _id_date(now), str(int(self.clock() * 1000))
        location = "127.0.0.1"
        seeded = []
        for _ in range(count):
            sid = self._new_session(location, {}, now, date).session_id
            archive_id, *video_ids = _random_uuids(1 + videos_per_archive)
            infos = [
                VideoInfo(vid, video_size, "", _offset_ms(i), archive_id)
                for i, vid in enumerate(video_ids)
            ]
            self.archives[archive_id] = ArchiveInfo(archive_id, sid, title, infos)
            seeded.append((archive_id, sid))
        return seeded

    # Signed storage URLs --------------------------------------------------------------

    def _signature(self, path: str, expires: int, serial: int) -> str:
        msg = f"{path}\n{expires}\n{serial}".encode()
        return hmac.new(self._url_key, msg, hashlib.sha256).hexdigest()

    def sign_url(self, path: str, lifetime: float) -> str:
        """Return an absolute URL for ``path`` on our storage, valid ``lifetime`` seconds."""
        self._url_serial += 1
        expires = int(self.clock() + lifetime)
        sig = self._signature(path, expires, self._url_serial)
        query = urlencode({"Expires": expires, "Serial": self._url_serial, "Signature": sig})
        return f"{self.base_url}{path}?{query}"

    def check_url(self, path: str, query: Mapping[str, str]) -> str | None:
        """Return why a storage URL is refused (bad signature, expired), or None if good."""
        try:
            expires = int(query["Expires"])
            serial = int(query["Serial"])
            given = query["Signature"]
        except (KeyError, ValueError):
            return "Query-string authentication requires the Signature and Expires parameters"
        if not hmac.compare_digest(given, self._signature(path, expires, serial)):
            return "The request signature we calculated does not match the signature you provided"
        if expires <= self.clock():
            return "Request has expired"
        limit = self.faults.expire_urls_after_bytes
        if limit is not None and self.url_bytes.get(given, 0) >= limit:
            return "Request has expired"
        return None
