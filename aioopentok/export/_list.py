"""The LIST of archives to export, the shard hash, and safe path components: pure, no I/O.

Strategy: a LIST line is ``ARCHIVE_ID SESSION_ID`` (whitespace between; blank lines and ``#``
comments skipped), the input ``examples/bulk_download.py`` always took. ``parse_line`` judges
one line; ``read_list`` streams a file through it so a 10-million-line LIST never sits in
memory, and ``scan_list`` runs that stream once before any request so that a bad line stops the
job at once, naming ``FILE:LINE``. ``shard_of`` is the stable split of a job over N machines:
the first 8 bytes of SHA-256 of the archive ID, big-endian, modulo N (never ``hash()``, which
is salted per process).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .._errors import InvalidArgumentError

__all__ = [
    "ListError",
    "Shard",
    "aiter_pairs",
    "is_safe_component",
    "parse_line",
    "parse_shard",
    "read_list",
    "scan_list",
    "shard_of",
]

# The IDs the service issues are UUIDs; any ID outside this set could name another directory
# (``..``, ``/``, ``\``, NUL) or a hidden or reserved file, so it is refused, never rewritten.
_SAFE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,254}")


def is_safe_component(value: object) -> bool:
    """Return whether ``value`` is usable as one path component under ``dest`` as it is."""
    return isinstance(value, str) and bool(_SAFE_RE.fullmatch(value)) and ".." not in value


class ListError(InvalidArgumentError):
    """A LIST line that is not ``ARCHIVE_ID SESSION_ID``; ``where`` is ``FILE:LINE``."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where


def parse_line(line: str) -> tuple[str, str] | None:
    """Return the ``(archive_id, session_id)`` of one LIST line, None if blank or a comment.

    Raises:
        ValueError: the line is not two fields, or the archive ID is not a safe path component.
    """
    fields = line.split("#", 1)[0].split()
    if not fields:
        return None
    if len(fields) != 2:
        raise ValueError(f"expected 'ARCHIVE_ID SESSION_ID', got {len(fields)} field(s)")
    archive_id, session_id = fields
    if not is_safe_component(archive_id):
        raise ValueError(f"archive ID {archive_id[:80]!r} is not a safe file name")
    return archive_id, session_id


async def aiter_pairs(
    items: Iterable[Any] | AsyncIterable[Any],
) -> AsyncGenerator[tuple[str, str]]:
    """Yield the ``(archive_id, session_id)`` pairs of any iterable or async iterable, lazily.

    Raises:
        InvalidArgumentError: an item that is not a pair of strings (when it is reached).
    """
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield _pair(item)
    else:
        for item in items:
            yield _pair(item)


def _pair(item: Any) -> tuple[str, str]:
    if (
        not isinstance(item, tuple | list)
        or len(item) != 2
        or not all(isinstance(part, str) for part in item)
    ):
        raise InvalidArgumentError(f"items must be (archive_id, session_id) pairs, not {item!r}")
    return item[0], item[1]


def read_list(stream: IO[str], name: str = "-") -> Iterator[tuple[str, str]]:
    """Yield the pairs of a LIST stream, one line at a time.

    Raises:
        ListError: at the first malformed line (after yielding the lines before it).
    """
    for number, line in enumerate(stream, start=1):
        try:
            pair = parse_line(line)
        except ValueError as exc:
            raise ListError(f"{name}:{number}", str(exc)) from None
        if pair is not None:
            yield pair


def scan_list(path: Path, shard: Shard | None = None) -> int:
    """Check every line of a LIST file before any request; return how many pairs are this shard's.

    Raises:
        ListError: the first malformed line.
        OSError: the file cannot be read.
    """
    count = 0
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as stream:  # BOM: Windows
        for archive_id, _ in read_list(stream, str(path)):
            if shard is None or shard.owns(archive_id):
                count += 1
    return count


def shard_of(archive_id: str, count: int) -> int:
    """Return which of ``count`` shards owns ``archive_id``, the same on every machine."""
    digest = hashlib.sha256(archive_id.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count`` (``0 <= index < count``); checked when made."""

    index: int
    count: int

    def __post_init__(self) -> None:
        for value in (self.index, self.count):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidArgumentError(f"shard index and count must be ints, not {value!r}")
        if not 0 <= self.index < self.count:
            raise InvalidArgumentError(
                f"shard must be K/N with 0 <= K < N, not {self.index}/{self.count}"
            )

    def owns(self, archive_id: str) -> bool:
        """Return whether this shard exports ``archive_id``."""
        return self.count == 1 or shard_of(archive_id, self.count) == self.index

    @property
    def name(self) -> str:
        """The shard's journal name, e.g. ``shard-3-of-8`` (``shard-0-of-1`` unsharded)."""
        return f"shard-{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(value: object) -> Shard:
    """Return the ``Shard`` of ``"K/N"``, a ``(K, N)`` pair, a ``Shard``, or None (``0/1``)."""
    if value is None:
        return Shard(0, 1)
    if isinstance(value, Shard):
        return value
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
        if match is None:
            raise InvalidArgumentError(f"shard must look like K/N (e.g. 3/8), not {value!r}")
        return Shard(int(match[1]), int(match[2]))
    if isinstance(value, tuple) and len(value) == 2:
        return Shard(value[0], value[1])
    raise InvalidArgumentError(f"shard must be 'K/N', (K, N) or None, not {value!r}")
