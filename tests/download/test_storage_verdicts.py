"""Pure: what a storage reply means (``_storage``), and the ranges record (``download._ranges``).

Values in, values out: no socket, no event loop. S3's error bodies are as S3 sends them.
"""

from __future__ import annotations

import pytest

from aioopentok._storage import Action, Asked, judge, parse_s3_error, plain_md5_etag
from aioopentok.download._ranges import RangeSet, Record, decode_record, encode_record, split

EXPIRED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message><Expires>2012-09-05T00:27:13Z</Expires>"
    b"<ServerTime>2012-09-05T01:30:00Z</ServerTime><RequestId>4442587FB7D0A2F9</RequestId>"
    b"<HostId>abc</HostId></Error>"
)
NO_SUCH_KEY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
    b"<Message>The specified key does not exist.</Message><Key>459782/a/v.flv</Key></Error>"
)
SLOW_DOWN = (
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)
REQUEST_TIMEOUT = (
    b"<Error><Code>RequestTimeout</Code><Message>Your socket connection to the server was not "
    b"read from or written to within the timeout period.</Message></Error>"
)


def test_s3_error_bodies_give_code_and_message() -> None:
    assert parse_s3_error(EXPIRED) == ("AccessDenied", "Request has expired")
    assert parse_s3_error(NO_SUCH_KEY) == ("NoSuchKey", "The specified key does not exist.")


@pytest.mark.parametrize(
    "body",
    [b"", b"<html><body>502 Bad Gateway</body></html>", b"not xml", b"<Error><Code>",
     b'<!DOCTYPE x [<!ENTITY a "b">]><Error><Code>&a;</Code></Error>', b"<Error/>" * 20000],
)  # fmt: skip
def test_bodies_that_are_not_s3_errors_give_nothing_and_never_raise(body: bytes) -> None:
    assert parse_s3_error(body) in ((None, None),)


def test_expired_url_means_refresh_with_the_reason() -> None:
    verdict = judge(403, {}, EXPIRED, Asked(0, 99))
    assert verdict.action is Action.REFRESH
    assert (verdict.status, verdict.code, verdict.message) == (
        403, "AccessDenied", "Request has expired",
    )  # fmt: skip


def test_no_such_key_is_permanent() -> None:
    verdict = judge(404, {}, NO_SUCH_KEY, Asked())
    assert verdict.action is Action.FAIL and verdict.code == "NoSuchKey"


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [(503, SLOW_DOWN, {"Retry-After": "2"}), (500, b"", {}), (400, REQUEST_TIMEOUT, {}),
     (429, b"", {}), (502, b"<html/>", {})],
)  # fmt: skip
def test_transient_replies_are_retried(status: int, body: bytes, headers: dict) -> None:
    verdict = judge(status, headers, body, Asked(10, 99))
    assert verdict.action is Action.RETRY
    assert verdict.retry_after == (2.0 if headers else None)


def test_other_client_errors_fail() -> None:
    body = b"<Error><Code>InvalidArgument</Code><Message>nope</Message></Error>"
    assert judge(400, {}, body, Asked()).action is Action.FAIL


def test_a_206_of_the_range_asked_streams_and_tells_size_and_etag() -> None:
    headers = {"Content-Range": "bytes 100-199/1000", "ETag": '"abc"'}
    verdict = judge(206, headers, b"", Asked(100, 199))
    assert (verdict.action, verdict.total, verdict.etag, verdict.whole) == (
        Action.STREAM, 1000, '"abc"', False,
    )  # fmt: skip


def test_a_206_clipped_at_the_end_of_the_file_is_the_range_asked() -> None:
    verdict = judge(206, {"Content-Range": "bytes 0-49/50"}, b"", Asked(0, 8 * 2**20 - 1))
    assert verdict.action is Action.STREAM and verdict.total == 50


@pytest.mark.parametrize(
    ("content_range", "asked"),
    [("bytes 0-199/1000", Asked(100, 199)), ("bytes 100-150/1000", Asked(100, 199)),
     ("garbage", Asked(100, 199)), ("bytes 100-199/2000", Asked(100, 199, total=1000))],
)  # fmt: skip
def test_a_206_of_another_range_or_size_restarts(content_range: str, asked: Asked) -> None:
    assert judge(206, {"Content-Range": content_range}, b"", asked).action is Action.RESTART


def test_another_etag_means_the_file_changed() -> None:
    headers = {"Content-Range": "bytes 0-9/10", "ETag": '"new"'}
    assert judge(206, headers, b"", Asked(0, 9, 10, '"old"')).action is Action.RESTART


def test_a_200_to_a_range_request_is_the_whole_file() -> None:
    verdict = judge(200, {"Content-Length": "1000"}, b"", Asked(100, 199))
    assert verdict.action is Action.STREAM and verdict.whole and verdict.total == 1000
    assert not judge(200, {}, b"", Asked()).whole  # asked for everything: nothing to fall back


def test_416_at_the_end_means_complete_elsewhere_restart() -> None:
    assert judge(416, {"Content-Range": "bytes */500"}, b"", Asked(500)).action is Action.COMPLETE
    assert judge(416, {"Content-Range": "bytes */400"}, b"", Asked(500)).action is Action.RESTART


def test_416_of_a_file_that_shrank_restarts_when_its_size_was_known() -> None:
    headers = {"Content-Range": "bytes */500"}
    assert judge(416, headers, b"", Asked(500, 599, total=1000)).action is Action.RESTART


def test_range_header_of_a_request() -> None:
    assert Asked().range_header() == {}
    assert Asked(0, 99).range_header() == {"Range": "bytes=0-99"}
    assert Asked(5).range_header() == {"Range": "bytes=5-"}


def test_plain_md5_etags_only() -> None:
    md5 = "9e107d9d372bb6826bd81d3542a419d6"
    assert plain_md5_etag(f'"{md5.upper()}"') == md5
    assert plain_md5_etag('"9e107d9d372bb6826bd81d3542a419d6-12"') is None  # multipart upload
    assert plain_md5_etag(None) is None and plain_md5_etag('W/"x"') is None


# --- the ranges record -------------------------------------------------------------------------


def test_rangeset_merges_and_finds_gaps() -> None:
    done = RangeSet([(10, 20), (0, 5), (20, 30), (40, 50)])
    assert list(done) == [(0, 5), (10, 30), (40, 50)]
    assert done.size == 35 and done.prefix() == 5
    assert done.missing(60) == [(5, 10), (30, 40), (50, 60)]
    done.add(4, 41)
    assert list(done) == [(0, 50)] and done.missing(50) == []


def test_split_cuts_gaps_into_parts() -> None:
    assert split([(0, 25), (30, 31)], 10) == [(0, 10), (10, 20), (20, 25), (30, 31)]


def test_record_round_trips_and_refuses_anything_else() -> None:
    record = Record(100, '"e"', RangeSet([(0, 10), (50, 60)]))
    assert decode_record(encode_record(record)) == record
    for bad in (b"", b"{", b"[]", b'{"version":2,"size":1,"etag":null,"done":[]}',
                b'{"version":1,"size":10,"etag":null,"done":[[0,11]]}',
                b'{"version":1,"size":10,"etag":null,"done":[[5,5]]}',
                b'{"version":1,"size":-1,"etag":null,"done":[]}'):  # fmt: skip
        assert decode_record(bad) is None
