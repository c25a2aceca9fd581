"""Whole-file hashes of generated videos: S3's ETag (the quoted hex MD5) and SHA-256.

Strategy: a video's bytes exist only while they are generated, so a hash costs one full
generation pass. Each hash is computed at most once per video, lazily (the first storage
reply needs the MD5 for its ``ETag``; ``Emulator.video_digest`` computes both in one pass and
so also warms the ETag), and cached in ``State`` (~100 bytes per hashed video; nothing for
videos never served). The storage route computes in a worker thread, so the event loop keeps
serving meanwhile, and concurrent first requests for one video share one computation.

Cost, measured on the 2-core VM of benchmarks/README.md (CPU time, one core): MD5 alone
1.5 s per GiB, MD5 + SHA-256 in one pass 2.2 s per GiB; so the first storage request of a
1 GiB video waits ~1.5 s for its headers, later ones not at all. Benchmarks and tests that
time downloads should call ``Emulator.video_digest`` (or ``video_md5``) first.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator

from ._flv import FlvVideo
from ._state import State

__all__ = ["HashKey", "digests", "etag", "md5_hex"]

HashKey = tuple[str, str]  # (archive id, file name or video id)


def _chunks(flv: FlvVideo) -> Iterator[memoryview]:
    return flv.iter_range(0, flv.size)


def md5_hex(flv: FlvVideo) -> str:
    """Return the hex MD5 of the whole file (one generation pass)."""
    h = hashlib.md5(usedforsecurity=False)
    for chunk in _chunks(flv):
        h.update(chunk)
    return h.hexdigest()


def digests(state: State, key: HashKey, flv: FlvVideo) -> tuple[str, str]:
    """Return (SHA-256, MD5) hex of the whole file, computing both in one pass if needed."""
    sha = state.sha256.get(key)
    if sha is None:
        h_sha = hashlib.sha256()
        h_md5 = hashlib.md5(usedforsecurity=False)
        for chunk in _chunks(flv):
            h_sha.update(chunk)
            h_md5.update(chunk)
        sha = state.sha256[key] = h_sha.hexdigest()
        state.md5.setdefault(key, h_md5.hexdigest())
    return sha, state.md5[key]


async def etag(state: State, key: HashKey, flv: FlvVideo) -> str:
    """Return the quoted hex MD5 of the file, like S3's ETag of a single-part upload."""
    md5 = state.md5.get(key)
    if md5 is None:
        pending = state.md5_pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(md5_hex, flv))
            state.md5_pending[key] = pending
            pending.add_done_callback(lambda _: state.md5_pending.pop(key, None))
        # shield: a client that hangs up must not cancel the computation others wait for.
        md5 = await asyncio.shield(pending)
        state.md5[key] = md5
    return f'"{md5}"'
