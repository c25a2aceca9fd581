"""In-memory state of one emulated OpenTok account: sessions, archives, signed URLs, logs.

Strategy: plain mutable objects, no I/O, no aiohttp; the routes (``_app``) read and change
them, and the ``Emulator`` exposes them to tests. Signed storage URLs use an emulator-private
HMAC key (never the API secret), carry a serial number so every issued URL is distinct (the
``expire_urls_after_bytes`` knob burns URLs one by one), and are checked here too.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from multidict import CIMultiDict

from ._faults import Faults
from ._flv import FlvVideo
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


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it."""

    method: str
    path: str
    query: str
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class SessionInfo:
    """A session the emulator created (or was told about)."""

    session_id: str
    location: str
    p2p_preference: str
    properties: dict[str, str]
    create_dt: datetime


@dataclass
class VideoInfo:
    """One stream of an archive; ``flv`` generates its bytes."""

    id: str
    size: int
    name: str
    offset_ms: int
    flv: FlvVideo

    @property
    def length_ms(self) -> int:
        """Duration in milliseconds, as the manifest reports it."""
        return self.flv.length_ms


@dataclass
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
    requests: list[RecordedRequest] = field(default_factory=list)
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
        props = dict(properties or {})
        now = datetime.fromtimestamp(self.clock(), UTC)
        date = time.strftime("%a %b %d %H:%M:%S UTC %Y", now.timetuple())
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
            if isinstance(spec, int):
                vid, size, name = str(uuid.uuid4()), spec, ""
            elif len(spec) == 2:
                vid, size, name = spec[0], spec[1], ""
            else:
                vid, size, name = spec[0], spec[1], spec[2]
            flv = FlvVideo(archive_id, vid, size)
            infos.append(VideoInfo(vid, size, name, 1255 + i * _TIMELINE_STEP_MS, flv))
        if title is None:
            title = str(int(self.clock() * 1000))  # the recorded titles were ms timestamps
        archive = ArchiveInfo(archive_id, session_id, title, infos)
        self.archives[archive_id] = archive
        return archive

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
