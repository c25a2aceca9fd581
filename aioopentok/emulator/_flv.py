"""Deterministic FLV videos of any size, generated on demand and served by byte range.

Strategy: a video of ``size`` bytes is the 13-byte FLV header (with PreviousTagSize0), then
``full_tags`` video tags of exactly ``TAG_SIZE`` bytes each (11-byte tag header, payload,
4-byte PreviousTagSize), then one or two "tail" tags sized so the file ends exactly at
``size``. The full tags come in blocks of ``TAGS_PER_BLOCK``: one 1 MiB template per video
holds their headers and seeded pseudo-random payloads; a block is a copy of the template with
16 timestamps patched in (tag k is at k * 40 ms). So any byte range is a slice of a few cheap
blocks: nothing is held whole in memory, and per-byte Python work is nil (a 2 GiB video costs
1 MiB of template). Payloads come from SHAKE-256 of (archive_id, video_id), so every video
has its own bytes and its own digest.
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
]

#: FLV signature, version 1, flags audio+video, header size 9, then PreviousTagSize0.
FLV_HEADER = b"FLV\x01\x05\x00\x00\x00\x09" + b"\x00\x00\x00\x00"
TAG_SIZE = 65536  # bytes per full tag, header and PreviousTagSize included
TAGS_PER_BLOCK = 16
BLOCK_SIZE = TAG_SIZE * TAGS_PER_BLOCK  # 1 MiB: the unit generated and written at once
FRAME_MS = 40  # 25 frames per second
_TAG_OVERHEAD = 11 + 4  # tag header + PreviousTagSize
MIN_TAG = _TAG_OVERHEAD + 1  # a tag with a one-byte payload
MIN_SIZE = len(FLV_HEADER) + MIN_TAG


def _tag(data: bytes, timestamp_ms: int) -> bytes:
    """Frame ``data`` as one FLV video tag (type 9, stream id 0) plus its PreviousTagSize."""
    head = (
        b"\x09"
        + len(data).to_bytes(3, "big")
        + (timestamp_ms & 0xFFFFFF).to_bytes(3, "big")
        + bytes([(timestamp_ms >> 24) & 0xFF])
        + b"\x00\x00\x00"
    )
    return head + data + (11 + len(data)).to_bytes(4, "big")


class FlvVideo:
    """One deterministic FLV file of ``size`` bytes, seeded by (archive_id, video_id)."""

    def __init__(self, archive_id: str, video_id: str, size: int) -> None:
        """Lay out the tags; raise ValueError if ``size`` cannot hold the header and a tag."""
        if size < MIN_SIZE:
            raise ValueError(f"an FLV video needs at least {MIN_SIZE} bytes, got {size}")
        self.size = size
        self._seed = hashlib.sha256(f"{archive_id}/{video_id}".encode()).digest()
        full, rem = divmod(size - len(FLV_HEADER), TAG_SIZE)
        if rem == 0:
            tails: list[int] = []
        elif rem >= MIN_TAG:
            tails = [rem]
        else:
            # Too little left for a tag: merge the last full tag and the rest into two tags.
            full -= 1
            first = (TAG_SIZE + rem) // 2
            tails = [first, TAG_SIZE + rem - first]
        self.full_tags = full
        self._tail_sizes = tails
        self._full_end = len(FLV_HEADER) + full * TAG_SIZE
        self._template: bytes | None = None
        self._tail: bytes | None = None
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

    def _get_template(self) -> bytes:
        """Build (once) the 1 MiB block of full tags with zero timestamps."""
        if self._template is None:
            data_size = TAG_SIZE - _TAG_OVERHEAD
            noise = hashlib.shake_256(self._seed).digest(TAGS_PER_BLOCK * data_size)
            parts = []
            for i in range(TAGS_PER_BLOCK):
                # First payload byte: frame type + codec (0x12 keyframe, 0x22 inter, H.263).
                first = b"\x12" if i == 0 else b"\x22"
                data = first + noise[i * data_size + 1 : (i + 1) * data_size]
                parts.append(_tag(data, 0))
            self._template = b"".join(parts)
        return self._template

    def _get_tail(self) -> bytes:
        """Build (once) the last one or two tags that make the size exact."""
        if self._tail is None:
            noise = hashlib.shake_256(self._seed + b"tail").digest(sum(self._tail_sizes))
            parts, pos = [], 0
            for k, tag_size in enumerate(self._tail_sizes):
                n = tag_size - _TAG_OVERHEAD
                data = b"\x22" + noise[pos + 1 : pos + n]
                pos += n
                parts.append(_tag(data, (self.full_tags + k) * FRAME_MS))
            self._tail = b"".join(parts)
        return self._tail

    def _block(self, index: int) -> bytearray:
        """Return block ``index`` of full tags: the template with its timestamps patched."""
        buf = bytearray(self._get_template())
        first_tag = index * TAGS_PER_BLOCK
        for i in range(TAGS_PER_BLOCK):
            ts = (first_tag + i) * FRAME_MS
            off = i * TAG_SIZE + 4
            buf[off : off + 3] = (ts & 0xFFFFFF).to_bytes(3, "big")
            buf[off + 3] = (ts >> 24) & 0xFF
        return buf

    def iter_range(self, start: int = 0, end: int | None = None) -> Iterator[memoryview]:
        """Yield the bytes ``[start, end)`` (end exclusive) as slices of at most ~1 MiB."""
        end = self.size if end is None else min(end, self.size)
        if not 0 <= start <= end:
            raise ValueError(f"bad range {start}-{end} for a {self.size}-byte video")
        pos = start
        head_len = len(FLV_HEADER)
        if pos < head_len and pos < end:
            yield memoryview(FLV_HEADER)[pos : min(end, head_len)]
            pos = min(end, head_len)
        full_stop = min(end, self._full_end)
        while pos < full_stop:
            index = (pos - head_len) // BLOCK_SIZE
            base = head_len + index * BLOCK_SIZE
            hi = min(full_stop, base + BLOCK_SIZE)
            yield memoryview(self._block(index))[pos - base : hi - base]
            pos = hi
        if pos < end:
            yield memoryview(self._get_tail())[pos - self._full_end : end - self._full_end]

    def read(self, start: int = 0, end: int | None = None) -> bytes:
        """Return the bytes ``[start, end)``; for small videos and tests."""
        return b"".join(self.iter_range(start, end))

    def digest(self) -> str:
        """Return the SHA-256 hex digest of the whole file (streamed once, then cached)."""
        if self._digest is None:
            h = hashlib.sha256()
            for chunk in self.iter_range():
                h.update(chunk)
            self._digest = h.hexdigest()
        return self._digest

    def etag(self) -> str:
        """Return S3's ETag for this file: the quoted hex MD5 (streamed once, then cached)."""
        if self._etag is None:
            h = hashlib.md5(usedforsecurity=False)
            for chunk in self.iter_range():
                h.update(chunk)
            self._etag = f'"{h.hexdigest()}"'
        return self._etag
