"""``Emulator``: the emulated service as an async context manager for tests, demos, benchmarks.

Strategy: a thin owner of a ``State`` and an ``aiohttp.web.AppRunner`` listening on
127.0.0.1 port 0 by default; everything it exposes is a view of ``State``. Credentials are
made up when not given. Its ``clock`` is the "now" of token checks, URL expiry and ``Date``.
"""

from __future__ import annotations

import collections
import secrets
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType, TracebackType

from aiohttp import web

from ._app import make_app
from ._faults import Faults
from ._flv import FlvVideo
from ._hashes import digests
from ._state import ArchiveInfo, RecordedRequest, SessionInfo, State, VideoSpec

__all__ = ["Emulator"]

_SEED_VIDEOS = 2
# Grace given to in-flight replies on close(). aiohttp's default (60 s) makes close() hang
# for a minute when a test abandons a half-read 2 GiB download; the emulator owes it nothing.
_SHUTDOWN_TIMEOUT = 0.25


class Emulator:
    """A local OpenTok server API (2012 flavour) with fault knobs.

    Args:
        api_key: The API key it accepts; random digits if omitted.
        api_secret: The API secret it accepts; 40 random hex digits if omitted.
        host: Address to bind; 127.0.0.1 by default.
        port: Port to bind; 0 (any free port) by default.
        staging: Behave like the staging service (no partner auth needed for session/create,
            403 with an empty body for a wrong one, staging-shaped XML).
        faults: The initial fault knobs; a default ``Faults()`` if omitted.
        seed_archives: Create one session and this many archives of two videos each (named
            IDs, titled ``seed N``; see ``seeded_archive_ids``). For account-scale seeding,
            each archive in its own session, use ``seed_archives()``.
        video_size: Size in bytes of each video seeded by ``seed_archives=``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        staging: bool = False,
        faults: Faults | None = None,
        seed_archives: int = 0,
        video_size: int = 1_000_000,
        max_recorded_requests: int | None = None,
    ) -> None:
        """Prepare the state (and seed archives); the server starts in ``start()``.

        ``max_recorded_requests`` keeps only the newest requests in ``requests`` (None: all of
        them, as tests want); a long-running emulator serving an account-scale export sets it,
        or its log would grow by a request's headers for every request it ever served.
        """
        if api_key is None:
            api_key = str(10_000_000 + secrets.randbelow(90_000_000))
        if api_secret is None:
            api_secret = secrets.token_hex(20)
        if not api_key or ":" in api_key:
            raise ValueError("api_key must be non-empty and contain no ':'")
        self._state = State(api_key, api_secret, staging=staging, faults=faults or Faults())
        if max_recorded_requests is not None:
            if max_recorded_requests < 0:
                raise ValueError("max_recorded_requests must be >= 0 or None")
            self._state.requests = collections.deque(maxlen=max_recorded_requests)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.seeded_session_id: str | None = None
        self.seeded_archive_ids: list[str] = []
        if seed_archives > 0:
            self.seeded_session_id = self.create_session_id()
            for n in range(seed_archives):
                videos = [
                    (f"{n:08x}-0000-4000-8000-{k:012x}", video_size, f"stream {k}")
                    for k in range(_SEED_VIDEOS)
                ]
                self.seeded_archive_ids.append(
                    self.add_archive(self.seeded_session_id, videos, title=f"seed {n}")
                )

    def __repr__(self) -> str:
        return f"<Emulator url={self.url!r} api_key={self.api_key!r} staging={self.staging}>"

    # Lifecycle ----------------------------------------------------------------------

    async def start(self) -> Emulator:
        """Start listening; return self."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already started")
        runner = web.AppRunner(
            make_app(self._state), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._state.base_url = f"http://{netloc}"
        return self

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # Views of the state -------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API base URL (``http://127.0.0.1:PORT/hl``); empty before ``start()``."""
        return f"{self._state.base_url}/hl" if self._state.base_url else ""

    @property
    def storage_url(self) -> str:
        """The root of the storage host (same server, ``/storage/...`` paths)."""
        return self._state.base_url

    @property
    def api_key(self) -> str:
        return self._state.api_key

    @property
    def api_secret(self) -> str:
        return self._state.api_secret

    @property
    def staging(self) -> bool:
        return self._state.staging

    @property
    def faults(self) -> Faults:
        """The live fault knobs; assign attributes at run time."""
        return self._state.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self._state.faults = value

    @property
    def clock(self) -> Callable[[], float]:
        """The emulator's "now" (Unix seconds): token expiry, URL expiry, Date header."""
        return self._state.clock

    @clock.setter
    def clock(self, value: Callable[[], float]) -> None:
        self._state.clock = value

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in order (the newest ones, with ``max_recorded_requests``)."""
        log = self._state.requests
        return log if isinstance(log, list) else list(log)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        self._state.requests.clear()

    @property
    def storage_auth_leaks(self) -> int:
        """How many storage requests carried an OpenTok auth header (should stay 0)."""
        return self._state.storage_auth_leaks

    @property
    def sessions(self) -> Mapping[str, SessionInfo]:
        return MappingProxyType(self._state.sessions)

    @property
    def archives(self) -> Mapping[str, ArchiveInfo]:
        return MappingProxyType(self._state.archives)

    # Direct manipulation (no HTTP) ----------------------------------------------------

    def create_session_id(
        self, location: str = "127.0.0.1", properties: Mapping[str, str] | None = None
    ) -> str:
        """Create a session as ``session/create`` would; return its ID."""
        return self._state.create_session(location, properties).session_id

    def add_archive(
        self,
        session_id: str,
        videos: Sequence[VideoSpec] = (1_000_000,),
        title: str | None = None,
    ) -> str:
        """Add an archive of ``session_id``; each video is a size, (id, size) or (id, size, name).

        Raises:
            ValueError: A session of another API key, no videos, or a video too small.
        """
        return self._state.add_archive(session_id, videos, title).id

    def seed_archives(
        self, count: int, *, videos_per_archive: int = 2, video_size: int = 1_000_000
    ) -> list[tuple[str, str]]:
        """Add ``count`` archives, each in its own new session, quickly and compactly.

        For account-scale tests (100,000 archives seed in ~2 s and ~1 KB each, see
        ``_state``). Video IDs are random UUIDs, names empty.

        Returns:
            One (archive_id, session_id) pair per archive, in the order created.

        Raises:
            ValueError: A negative count, no videos per archive, or a video too small.
        """
        return self._state.seed_archives(count, videos_per_archive, video_size)

    def _video(self, archive_id: str, video_id: str) -> FlvVideo:
        video = self._state.archives[archive_id].video(video_id)
        if video is None:
            raise KeyError(video_id)
        return video.flv

    def video_digest(self, archive_id: str, video_id: str) -> str:
        """Return the SHA-256 hex digest of a video's full FLV bytes (computed once).

        The same pass computes the MD5 the storage ``ETag`` carries, so the first download
        of the video does not wait for it.
        """
        key = (archive_id, video_id)
        return digests(self._state, key, self._video(archive_id, video_id))[0]

    def video_md5(self, archive_id: str, video_id: str) -> str:
        """Return the hex MD5 of a video's bytes: its storage ``ETag`` without the quotes."""
        key = (archive_id, video_id)
        return digests(self._state, key, self._video(archive_id, video_id))[1]

    def video_bytes(
        self, archive_id: str, video_id: str, start: int = 0, end: int | None = None
    ) -> bytes:
        """Return bytes ``[start, end)`` of a video (end exclusive); for small videos."""
        return self._video(archive_id, video_id).read(start, end)

    def video_size(self, archive_id: str, video_id: str) -> int:
        """Return a video's size in bytes."""
        return self._video(archive_id, video_id).size
