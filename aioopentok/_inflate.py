"""Bounded reading of API reply bodies: the size cap, and gzip/deflate inflated under it.

Strategy: transports hand us the body as sent (aiohttp's automatic decompression is off), and
this pure accumulator inflates it with ``zlib.decompressobj`` asking for at most the bytes the
cap still allows (``max_length``), so a gzip or deflate bomb is refused after at most
cap + one network chunk in memory, whatever the aiohttp version (3.9-3.13 inflated whole
replies before any cap of ours could act).
"""

from __future__ import annotations

import zlib

from ._errors import ResponseError

__all__ = ["ACCEPT_ENCODING", "BoundedBody"]

#: What API requests accept: exactly the encodings ``BoundedBody`` can inflate.
ACCEPT_ENCODING = "gzip, deflate"


class BoundedBody:
    """Collect a body chunk by chunk, decoding its ``Content-Encoding``, refusing > ``cap``."""

    def __init__(self, content_encoding: str | None, cap: int, where: str, status: int) -> None:
        self._cap = cap
        self._where = where
        self._status = status
        self._size = 0
        self._chunks: list[bytes] = []
        self._first = True
        encoding = (content_encoding or "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
            raise ResponseError(
                f"{where}: reply encoded as {encoding!r}, which we did not ask for", status=status
            )
        self._encoding = encoding
        self._inflater: zlib._Decompress | None = None

    def _over(self) -> ResponseError:
        return ResponseError(
            f"{self._where}: reply is over the {self._cap}-byte cap", status=self._status
        )

    def _keep(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._cap:
            raise self._over()
        if data:
            self._chunks.append(data)

    def _make_inflater(self, chunk: bytes) -> zlib._Decompress:
        if self._encoding == "deflate":
            # "deflate" is zlib-wrapped by the RFC, raw in many servers: the first byte tells.
            wbits = zlib.MAX_WBITS if chunk[:1] and chunk[0] & 0x0F == 8 else -zlib.MAX_WBITS
        else:
            wbits = 16 + zlib.MAX_WBITS
        return zlib.decompressobj(wbits)

    def check_length(self, length: int) -> None:
        """Refuse at once a reply whose ``Content-Length`` is over the cap (nothing read yet)."""
        if length > self._cap:
            raise ResponseError(
                f"{self._where}: reply of {length} bytes is over the {self._cap}-byte cap",
                status=self._status,
            )

    def feed(self, chunk: bytes) -> None:
        """Add the next chunk as received; raise ``ResponseError`` once past the cap."""
        if not chunk:
            return
        if self._encoding == "identity":
            self._keep(chunk)
            return
        if self._inflater is None:
            self._inflater = self._make_inflater(chunk)
        inflater = self._inflater
        data = chunk
        try:
            while data and not inflater.eof:
                # Never more than the cap allows, plus one byte to tell "over" from "exactly".
                out = inflater.decompress(data, self._cap - self._size + 1)
                self._keep(out)
                data = inflater.unconsumed_tail
        except zlib.error as exc:
            raise ResponseError(
                f"{self._where}: reply is not valid {self._encoding} ({exc})", status=self._status
            ) from None

    def finish(self) -> bytes:
        """Return the whole decoded body; raise ``ResponseError`` if it was cut short."""
        if self._inflater is not None:
            try:
                self._keep(self._inflater.flush(self._cap - self._size + 1))
            except zlib.error as exc:  # pragma: no cover - flush after a clean feed
                raise ResponseError(f"{self._where}: {exc}", status=self._status) from None
            if not self._inflater.eof:
                raise ResponseError(
                    f"{self._where}: {self._encoding} reply was cut short", status=self._status
                )
        return b"".join(self._chunks)
