"""The storage host: serves FLV bytes at signed URLs, like S3 did for OpenTok archives.

Strategy: no OpenTok auth at all (a request carrying an OpenTok auth header is counted as a
leak, see ``_app``); the signed query string is the only credential. Bodies are streamed from
``FlvVideo.iter_range`` in ~1 MiB memoryview slices, straight into ``StreamResponse.write``,
so memory stays flat and the emulator is not the bottleneck of a download benchmark.

Faults ``storage_rate`` and ``first_byte_delay`` make it behave like S3 seen from one
client: each reply is paced by its own token bucket (``_pace``) in writes of 64-256 KiB, and
waits before its headers as S3's time to first byte. The ``ETag`` is the quoted hex MD5 of the
file, as S3's for a single-part upload (computed once per video, see ``_hashes``).

Measured on loopback, 1 GiB video, emulator alone in its own process (2-core VM):
``curl -s -o /dev/null -w '%{speed_download}' URL`` 2.5-3.2 GB/s; an aiohttp client in another
process 3.2-3.4 GB/s (4.1 GB/s curl and 2.0 GB/s aiohttp when sharing the emulator's event loop).
With the per-tag generator of issue 14.8 (0.11 s of CPU per GiB, was 0.03), curl measured
1.6-3.0 GB/s on the same VM under other load (not re-measured idle).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

from aiohttp import web

from ._flv import FlvVideo
from ._hashes import HashKey, etag
from ._pace import TokenBucket, write_size
from ._state import State
from ._xml import s3_error

__all__ = ["STITCHED_NAME", "handle_storage", "parse_range"]

STITCHED_NAME = "stitched.mp4"
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiable(ValueError):
    """The Range header asks for bytes past the end."""


def parse_range(header: str | None, total: int) -> tuple[int, int] | None:
    """Return ``(start, end_exclusive)`` for one ``bytes=`` range, None to send everything.

    Multi-range and malformed headers are ignored (RFC 9110 allows it).
    Raises RangeNotSatisfiable if the range starts past the end.
    """
    if not header:
        return None
    m = _RANGE_RE.fullmatch(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # suffix range: the last N bytes
        n = int(last)
        if n == 0:
            raise RangeNotSatisfiable(header)
        return max(0, total - n), total
    start = int(first)
    end = total if not last else min(int(last) + 1, total)
    if last and int(last) < start:
        return None
    if start >= total:
        raise RangeNotSatisfiable(header)
    return start, end


def _error(status: int, code: str, message: str) -> web.Response:
    return web.Response(status=status, text=s3_error(code, message), content_type="application/xml")


def _paced(chunks: Iterator[memoryview], rate: int | None) -> Iterator[memoryview]:
    """Split ``chunks`` into the write size of ``rate`` (unchanged when not paced)."""
    if rate is None:
        yield from chunks
        return
    size = write_size(rate)
    for chunk in chunks:
        for i in range(0, len(chunk), size):
            yield chunk[i : i + size]


def _find_video(
    state: State, api_key: str, archive_id: str, name: str
) -> tuple[HashKey, FlvVideo] | None:
    """Map a storage path to the video it names (or the archive's stitched file).

    The key is (archive id, video id) as ``Emulator.video_digest`` uses it, so a digest
    computed there serves as this file's ETag too.
    """
    archive = state.archives.get(archive_id)
    if api_key != state.api_key or archive is None or archive.deleted:
        return None
    if name == STITCHED_NAME:
        if archive.stitched is None:
            total = sum(v.size for v in archive.videos)
            archive.stitched = FlvVideo(archive.id, STITCHED_NAME, total)
        return (archive.id, name), archive.stitched
    if not name.endswith(".flv"):
        return None
    video = archive.video(name[: -len(".flv")])
    return None if video is None else ((archive.id, video.id), video.flv)


async def handle_storage(request: web.Request, state: State) -> web.StreamResponse:
    """Serve GET/HEAD of a signed storage URL with Range support and the storage faults."""
    faults = state.faults
    reason = state.check_url(request.path, request.query)
    if reason is not None:
        return _error(403, "AccessDenied", reason)
    if faults.storage_403 > 0:
        faults.storage_403 -= 1
        return _error(403, "AccessDenied", "Request has expired")
    info = request.match_info
    found = _find_video(state, info["api_key"], info["archive_id"], info["name"])
    if found is None:
        return _error(404, "NoSuchKey", "The specified key does not exist.")
    key, flv = found
    total = flv.size
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": await etag(state, key, flv),
        "Content-Type": "video/mp4" if info["name"] == STITCHED_NAME else "video/x-flv",
    }
    try:
        rng = parse_range(request.headers.get("Range"), total)
    except RangeNotSatisfiable:
        headers["Content-Range"] = f"bytes */{total}"
        return web.Response(status=416, headers=headers)
    start, end = rng if rng is not None else (0, total)
    status = 200 if rng is None else 206
    if rng is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
    resp = web.StreamResponse(status=status, headers=headers)
    if faults.chunked_storage and request.method != "HEAD":
        resp.enable_chunked_encoding()
    else:
        resp.content_length = end - start
    if faults.first_byte_delay > 0:
        await asyncio.sleep(faults.first_byte_delay)  # S3's time to first byte
    try:
        await resp.prepare(request)
    except ConnectionError:
        return resp  # the client hung up (a timeout, a cancel) before the headers went out
    if request.method == "HEAD":
        return resp

    # cut_body_after: once per (path, range start), so a resuming client makes progress.
    cut = faults.cut_body_after
    cut_key = (request.path, start)
    if cut is not None and (cut >= end - start or cut_key in state.cut_done):
        cut = None
    if cut is not None:
        state.cut_done.add(cut_key)
    signature = request.query.get("Signature", "")
    sent = 0
    rate = faults.storage_rate  # read once: a reply keeps the rate it started with
    loop = asyncio.get_running_loop()
    bucket = None if rate is None else TokenBucket(rate, write_size(rate), loop.time())
    try:
        for chunk in _paced(flv.iter_range(start, end), rate):
            if bucket is not None:
                wait = bucket.take(len(chunk), loop.time())
                if wait > 0:
                    await asyncio.sleep(wait)
            if cut is not None and sent + len(chunk) > cut:
                chunk = chunk[: cut - sent]
            await resp.write(chunk)
            sent += len(chunk)
            state.url_bytes[signature] = state.url_bytes.get(signature, 0) + len(chunk)
            if cut is not None and sent >= cut:
                if request.transport is not None:
                    request.transport.close()  # close() flushes what was written, then drops
                return resp
    except ConnectionError:
        pass  # the client went away; nothing to tell it
    return resp
