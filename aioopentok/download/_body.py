"""A storage reply's body onto disk, and the small helpers the part loop shares.

Strategy: ``write_body`` gathers network chunks up to ``chunk_size`` and hands them to the
``PartFile`` writer at the part's position, one chunk on its way to disk while the next is
read; the FLV header and the announced size are checked before a byte is written, and bytes
that prove wrong throw the ``.part`` away. After a transport error, what did arrive is written
first and the ``Cursor`` says where the retry starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .._errors import DownloadError, RequestError
from .._http import HTTPResponse
from ._partfile import FLV_HEADER_SIZE, PartFile, flv_prefix_ok

__all__ = ["Cursor", "first_error", "read_capped", "write_body"]

_MAX_PIECES = 256  # network reads gathered per write (an iovec must stay under IOV_MAX)


class Cursor:
    """Where one part's request has written up to (survives the error that ends it)."""

    __slots__ = ("pos",)

    def __init__(self, pos: int) -> None:
        self.pos = pos


async def write_body(
    response: HTTPResponse,
    part: PartFile,
    cursor: Cursor,
    chunk_size: int,
    total: int | None,
    on_bytes: Callable[[int], None],
    name: str,
) -> None:
    """Write the body from ``cursor.pos`` on, moving the cursor past each chunk written."""
    pending: asyncio.Future[None] | None = None
    pieces: list[bytes] = []
    buffered = 0

    async def wrong(problem: str) -> None:
        await part.wait(pending)
        await part.discard()  # these bytes can never verify
        raise DownloadError(f"{name}: {problem}")

    async def flush() -> None:
        nonlocal pending, pieces, buffered
        pos = cursor.pos
        if pos < FLV_HEADER_SIZE:
            head = (part.head[:pos] + b"".join(p[:FLV_HEADER_SIZE] for p in pieces))[
                :FLV_HEADER_SIZE
            ]
            if not flv_prefix_ok(head):
                await wrong(f"not an FLV file (starts with {head!r})")
        if total is not None and pos + buffered > total:
            await wrong(f"storage sent more than the {total} bytes it announced")
        await part.wait(pending)
        pending = part.submit(pos, pieces)
        cursor.pos = pos + buffered
        size, pieces, buffered = buffered, [], 0
        on_bytes(size)

    on_bytes(0)
    try:
        async for piece in response:
            pieces.append(piece)
            buffered += len(piece)
            if buffered >= chunk_size or len(pieces) >= _MAX_PIECES:
                await flush()
    except RequestError:
        if pieces:
            await flush()
        raise
    else:
        if pieces:
            await flush()
    finally:
        await part.wait(pending)


async def read_capped(response: HTTPResponse, cap: int) -> bytes:
    """Read at most ``cap`` bytes of an error body; a cut body still gives what came."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response:
            chunks.append(chunk[: cap - size])
            size += len(chunk)
            if size >= cap:
                break
    except RequestError:
        pass  # the status says enough; the body was only for its reason
    return b"".join(chunks)


def first_error(
    group: BaseExceptionGroup[BaseException], preferred: type[BaseException]
) -> BaseException:
    """Return the first real failure in a task group's exceptions (``preferred`` wins)."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            stack[:0] = list(exc.exceptions)
        else:
            leaves.append(exc)
    for exc in leaves:
        if isinstance(exc, preferred):
            return exc
    return leaves[0]
