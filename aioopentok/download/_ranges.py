"""Sans-I/O: which byte ranges of a video are done, which are left, and their record on disk.

Strategy: a segmented download splits what is missing into parts of ``part_size`` bytes; as
each part completes it joins a ``RangeSet`` that is persisted beside the ``.part`` file (the
*ranges record*, JSON) together with the size and ETag it belongs to, so a rerun after
``kill -9`` asks only for what is missing, and a record of another size or ETag is ignored.
Everything here is values in, values out; ``_partfile`` does the writing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = ["RECORD_SUFFIX", "RangeSet", "Record", "decode_record", "encode_record", "split"]

RECORD_SUFFIX = ".ranges"
_VERSION = 1


class RangeSet:
    """Disjoint, sorted, merged half-open byte ranges ``[start, end)``."""

    __slots__ = ("_ranges",)

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._ranges: list[tuple[int, int]] = []
        for start, end in ranges:
            self.add(start, end)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self._ranges)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RangeSet) and self._ranges == other._ranges

    def __repr__(self) -> str:
        return f"RangeSet({self._ranges!r})"

    def add(self, start: int, end: int) -> None:
        """Add ``[start, end)``, merging with neighbours it touches or overlaps."""
        if end <= start:
            return
        merged: list[tuple[int, int]] = []
        placed = False
        for lo, hi in self._ranges:
            if hi < start:
                merged.append((lo, hi))
            elif end < lo:
                if not placed:
                    merged.append((start, end))
                    placed = True
                merged.append((lo, hi))
            else:
                start, end = min(lo, start), max(hi, end)
        if not placed:
            merged.append((start, end))
        merged.sort()
        self._ranges = merged

    @property
    def size(self) -> int:
        """Bytes covered."""
        return sum(end - start for start, end in self._ranges)

    def prefix(self) -> int:
        """Return the end of the range that starts at byte 0 (0 if none does)."""
        if self._ranges and self._ranges[0][0] == 0:
            return self._ranges[0][1]
        return 0

    def missing(self, total: int) -> list[tuple[int, int]]:
        """Return the ranges of ``[0, total)`` not covered, in order."""
        gaps = []
        at = 0
        for start, end in self._ranges:
            if start > at:
                gaps.append((at, min(start, total)))
            at = max(at, end)
            if at >= total:
                break
        if at < total:
            gaps.append((at, total))
        return [(s, e) for s, e in gaps if e > s]


def split(ranges: Iterable[tuple[int, int]], part_size: int) -> list[tuple[int, int]]:
    """Cut each range into parts of at most ``part_size`` bytes, in order."""
    parts = []
    for start, end in ranges:
        for at in range(start, end, part_size):
            parts.append((at, min(at + part_size, end)))
    return parts


@dataclass(frozen=True, slots=True)
class Record:
    """The ranges record: the file it describes (size, ETag) and the ranges complete on disk."""

    size: int
    etag: str | None
    done: RangeSet = field(default_factory=RangeSet)


def encode_record(record: Record) -> bytes:
    """Return the record's bytes (small JSON, one line)."""
    return json.dumps(
        {
            "version": _VERSION,
            "size": record.size,
            "etag": record.etag,
            "done": [list(r) for r in record.done],
        },
        separators=(",", ":"),
    ).encode()


def decode_record(data: bytes) -> Record | None:
    """Return the record in ``data``, or None for anything that is not a valid one."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or obj.get("version") != _VERSION:
        return None
    size, etag, done = obj.get("size"), obj.get("etag"), obj.get("done")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return None
    if etag is not None and not isinstance(etag, str):
        return None
    if not isinstance(done, list):
        return None
    ranges = RangeSet()
    for item in done:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in item)
            or not 0 <= item[0] < item[1] <= size
        ):
            return None
        ranges.add(item[0], item[1])
    return Record(size, etag, ranges)
