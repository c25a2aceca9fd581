"""Deterministic FLV videos of any size, generated on demand and served by byte range.

Strategy: a video of ``size`` bytes is the 13-byte FLV header (with PreviousTagSize0), then
``full_tags`` video tags of exactly ``TAG_SIZE`` bytes each (11-byte tag header, payload,
4-byte PreviousTagSize), then one or two "tail" tags sized so the file ends exactly at
``size``. Tag ``i`` is pieced together when asked for: its header (timestamp ``i * 40`` ms),
a codec byte, a 16-byte stamp of the video's seed, then a slice of one pool of pseudo-random
bytes shared by every video, at an offset that the seed and ``i`` pick. So a video holds no
bytes of its own: an ``FlvVideo`` is a seed and a few integers (O(1) memory, the 4 MiB pool
aside), any byte range is a join of a few slices (no per-byte Python work, the tail of a
2 GiB video costs microseconds), and every request gets the same bytes. The seed is SHA-256
of (archive_id, video_id), so every video has its own bytes and its own digest.

Before this layout each video cached a 1 MiB template of its tags once read, so serving every
video of 2,000 archives x 2 videos of 1 MiB once held 4.2 GB. Measured now (2-core VM, the
CLI with ``--seed-archives 2000 --video-size 1048576``, every video fetched whole over HTTP,
3.9 GiB): peak RSS 68 MB. Generating costs ~0.11 s of CPU per GiB (MD5 for the ETag, ~1.6 s
per GiB, is what a first download pays; see ``_hashes``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

__all__ = [
    "BLOCK_SIZE",
    "FLV_HEADER",
    "FRAME_MS",
    "MIN_SIZE",
    "TAG_SIZE",
    "FlvVideo",
    "tag_count",
]

#: FLV signature, version 1, flags audio+video, header size 9, then PreviousTagSize0.
FLV_HEADER = b"FLV\x01\x05\x00\x00\x00\x09" + b"\x00\x00\x00\x00"
TAG_SIZE = 65536  # bytes per full tag, header and PreviousTagSize included
TAGS_PER_BLOCK = 16  # a keyframe every 16 tags
BLOCK_SIZE = TAG_SIZE * TAGS_PER_BLOCK  # 1 MiB: the default size of the slices yielded
FRAME_MS = 40  # 25 frames per second
_TAG_OVERHEAD = 11 + 4  # tag header + PreviousTagSize
MIN_TAG = _TAG_OVERHEAD + 1  # a tag with a one-byte payload
MIN_SIZE = len(FLV_HEADER) + MIN_TAG
_HEAD = len(FLV_HEADER)
_STAMP = 16  # bytes of the seed at the start of every payload (after the codec byte)
_POOL_SPAN = 1 << 22  # 4 MiB of offsets; the pool is one tag longer, so no slice wraps
_pool: bytes | None = None


def _get_pool() -> memoryview:
    """Return the shared pool of payload bytes (made once per process, the same everywhere)."""
    global _pool
    if _pool is None:
        _pool = hashlib.shake_256(b"aioopentok emulator FLV pool v1").digest(_POOL_SPAN + TAG_SIZE)
    return memoryview(_pool)


def _layout(size: int) -> tuple[int, tuple[int, ...]]:
    """Return (number of full tags, sizes of the tail tags) for a file of ``size`` bytes."""
    if size < MIN_SIZE:
        raise ValueError(f"an FLV video needs at least {MIN_SIZE} bytes, got {size}")
    full, rem = divmod(size - _HEAD, TAG_SIZE)
    if rem == 0:
        return full, ()
    if rem >= MIN_TAG:
        return full, (rem,)
    # Too little left for a tag: merge the last full tag and the rest into two tags.
    first = (TAG_SIZE + rem) // 2
    return full - 1, (first, TAG_SIZE + rem - first)


def tag_count(size: int) -> int:
    """Return how many tags a video of ``size`` bytes has (no FlvVideo needed)."""
    full, tails = _layout(size)
    return full + len(tails)


class FlvVideo:
    """One deterministic FLV file of ``size`` bytes, seeded by (archive_id, video_id)."""

    __slots__ = (
        "_base", "_digest", "_etag", "_full_end", "_seed", "_step", "_tail_sizes",
        "full_tags", "size",
    )  # fmt: skip

    def __init__(self, archive_id: str, video_id: str, size: int) -> None:
        """Lay out the tags; raise ValueError if ``size`` cannot hold the header and a tag."""
        self.full_tags, self._tail_sizes = _layout(size)
        self.size = size
        self._seed = hashlib.sha256(f"{archive_id}/{video_id}".encode()).digest()
        self._full_end = _HEAD + self.full_tags * TAG_SIZE
        # Pool offset of tag i: (base + i * step) mod span; an odd step visits every offset.
        self._base = int.from_bytes(self._seed[16:24], "big") % _POOL_SPAN
        self._step = int.from_bytes(self._seed[24:32], "big") % _POOL_SPAN | 1
        self._digest: str | None = None
        self._etag: str | None = None

    @property
    def tag_count(self) -> int:
        """Number of tags in the file."""
        return self.full_tags + len(self._tail_sizes)

    @property
    def length_ms(self) -> int:
        """Duration in milliseconds, as the manifest reports it."""
        return self.tag_count * FRAME_MS

    def _tag_at(self, pos: int) -> tuple[int, int]:
        """Return (index, start offset) of the tag holding byte ``pos`` (``pos >= 13``)."""
        if pos < self._full_end:
            index = (pos - _HEAD) // TAG_SIZE
            return index, _HEAD + index * TAG_SIZE
        start = self._full_end
        index = self.full_tags
        for tag_size in self._tail_sizes[:-1]:
            if pos < start + tag_size:
                break
            start += tag_size
            index += 1
        return index, start

    def _tag_pieces(self, index: int) -> list[bytes | memoryview]:
        """Return tag ``index`` as pieces: header, codec byte, stamp, pool slice, its size."""
        tag_size = TAG_SIZE if index < self.full_tags else self._tail_sizes[index - self.full_tags]
        n = tag_size - _TAG_OVERHEAD  # payload bytes
        ts = index * FRAME_MS
        head = (
            b"\x09"
            + n.to_bytes(3, "big")
            + (ts & 0xFFFFFF).to_bytes(3, "big")
            + bytes([(ts >> 24) & 0xFF])
            + b"\x00\x00\x00"
        )
        # First payload byte: frame type + codec (0x12 keyframe, 0x22 inter frame, H.263).
        payload_head = (b"\x12" if index % TAGS_PER_BLOCK == 0 else b"\x22") + self._seed[:_STAMP]
        offset = (self._base + index * self._step) % _POOL_SPAN
        rest = max(0, n - len(payload_head))
        return [
            head,
            payload_head[:n],
            _get_pool()[offset : offset + rest],
            (11 + n).to_bytes(4, "big"),
        ]

    def iter_range(
        self, start: int = 0, end: int | None = None, *, chunk: int = BLOCK_SIZE
    ) -> Iterator[memoryview]:
        """Yield the bytes ``[start, end)`` (end exclusive) in slices of ``chunk`` bytes."""
        end = self.size if end is None else min(end, self.size)
        if not 0 <= start <= end:
            raise ValueError(f"bad range {start}-{end} for a {self.size}-byte video")
        pos = start
        while pos < end:
            stop = min(end, pos + chunk)
            out: list[bytes | memoryview] = []
            cur = pos
            if cur < _HEAD:
                out.append(FLV_HEADER[cur : min(stop, _HEAD)])
                cur = min(stop, _HEAD)
            if cur < stop:
                index, off = self._tag_at(cur)
                while cur < stop:
                    for piece in self._tag_pieces(index):
                        lo, hi = max(cur, off), min(stop, off + len(piece))
                        if lo < hi:
                            out.append(piece[lo - off : hi - off])
                        off += len(piece)
                    cur = min(stop, off)
                    index += 1
            yield memoryview(b"".join(out))
            pos = stop

    def read(self, start: int = 0, end: int | None = None) -> bytes:
        """Return the bytes ``[start, end)``; for small videos and tests."""
        return b"".join(self.iter_range(start, end))

    def digest(self) -> str:
        """Return the SHA-256 hex digest of the whole file (streamed once, then cached)."""
        if self._digest is None:
            h = hashlib.sha256()
            for piece in self.iter_range():
                h.update(piece)
            self._digest = h.hexdigest()
        return self._digest

    def etag(self) -> str:
        """Return S3's ETag for this file: the quoted hex MD5 (streamed once, then cached)."""
        if self._etag is None:
            h = hashlib.md5(usedforsecurity=False)
            for piece in self.iter_range():
                h.update(piece)
            self._etag = f'"{h.hexdigest()}"'
        return self._etag
