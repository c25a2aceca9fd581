"""Pure: the bounded, bounded-inflating reply reader (``_inflate``)."""

from __future__ import annotations

import gzip
import zlib

import pytest

from aioopentok import ResponseError
from aioopentok._inflate import BoundedBody


def _feed(body: BoundedBody, data: bytes, step: int = 1000) -> bytes:
    for at in range(0, len(data), step):
        body.feed(data[at : at + step])
    return body.finish()


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [(None, bytes), ("identity", bytes), ("gzip", gzip.compress), ("x-gzip", gzip.compress),
     ("deflate", zlib.compress), ("deflate", _raw_deflate)],
)  # fmt: skip
def test_each_encoding_is_read_back_exactly(encoding, pack) -> None:
    data = b"<Sessions>" + bytes(range(256)) * 40 + b"</Sessions>"
    assert _feed(BoundedBody(encoding, 1 << 20, "GET x", 200), pack(data)) == data


def test_exactly_the_cap_is_accepted_one_more_byte_is_not() -> None:
    assert len(_feed(BoundedBody("gzip", 5000, "x", 200), gzip.compress(b"a" * 5000))) == 5000
    with pytest.raises(ResponseError, match="5000-byte cap"):
        _feed(BoundedBody("gzip", 5000, "x", 200), gzip.compress(b"a" * 5001))
    with pytest.raises(ResponseError, match="cap"):
        _feed(BoundedBody(None, 5000, "x", 200), b"a" * 5001)


def test_a_bomb_is_refused_after_inflating_no_more_than_the_cap() -> None:
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))
    body = BoundedBody("gzip", 1024 * 1024, "x", 200)
    with pytest.raises(ResponseError):
        body.feed(bomb)  # one network chunk of it: refused within the call
    assert body._size <= 1024 * 1024 + 1


@pytest.mark.parametrize("encoding", ["br", "compress", "gzip, br"])
def test_an_encoding_we_did_not_ask_for_is_refused(encoding: str) -> None:
    with pytest.raises(ResponseError, match="did not ask for"):
        BoundedBody(encoding, 100, "x", 200)


def test_a_cut_or_corrupt_stream_is_a_response_error() -> None:
    packed = gzip.compress(b"x" * 10000)
    with pytest.raises(ResponseError, match="cut short"):
        _feed(BoundedBody("gzip", 1 << 20, "x", 200), packed[: len(packed) // 2])
    with pytest.raises(ResponseError, match="not valid"):
        _feed(BoundedBody("gzip", 1 << 20, "x", 200), b"\x1f\x8b" + b"garbage" * 10)
