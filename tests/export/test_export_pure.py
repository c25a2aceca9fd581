"""The export's pure parts, values in and values out: LIST lines, shards, pace, verdicts, verify."""

from __future__ import annotations

import errno
import hashlib
import io

import pytest

from aioopentok import (
    AuthError,
    DiskError,
    DownloadError,
    InvalidArgumentError,
    NotFoundError,
    RateLimitedError,
    RequestError,
    ServerError,
)
from aioopentok.export import ListError, Shard, parse_shard, read_list, shard_of
from aioopentok.export._failures import Verdict, classify, describe
from aioopentok.export._list import is_safe_component, parse_line
from aioopentok.export._manifest import FileFacts
from aioopentok.export._pace import DEFAULT_PAUSE, PaceState, after_rate_limit, after_success
from aioopentok.export._verify import etag_md5, judge

UUID = "200567af-0726-4e93-883b-fe0426d6310a"
SID = "1_MX4xMjM0NX4xMjcuMC4wLjF-VHVlIFNlcCAwNCAxNDo1MzowMiBQRFQgMjAxMn4wLjUyMTE4MTN-"


# --- LIST lines ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "pair"),
    [
        (f"{UUID} {SID}\n", (UUID, SID)),
        (f"  {UUID}\t\t{SID}   # from the old export\n", (UUID, SID)),
        ("\n", None),
        ("   \t\n", None),
        ("# ARCHIVE_ID SESSION_ID\n", None),
    ],
)
def test_list_lines_are_pairs_blank_or_comments(line: str, pair: tuple[str, str] | None) -> None:
    assert parse_line(line) == pair


@pytest.mark.parametrize(
    "line", [UUID, f"{UUID} {SID} extra", f"../etc {SID}", f"a/b {SID}", f".hidden {SID}"]
)
def test_malformed_list_lines_are_refused(line: str) -> None:
    with pytest.raises(ValueError):
        parse_line(line)


def test_read_list_names_the_file_and_line_of_the_first_bad_line() -> None:
    stream = io.StringIO(f"# header\n{UUID} {SID}\n\n{UUID}\n{UUID} {SID}\n")
    pairs = read_list(stream, "archives.txt")
    assert next(pairs) == (UUID, SID)
    with pytest.raises(ListError) as info:
        next(pairs)
    assert info.value.where == "archives.txt:4"
    assert str(info.value).startswith("archives.txt:4: ")
    assert isinstance(info.value, InvalidArgumentError)


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        (UUID, True),
        ("a", True),
        ("A.b_c~d-e", True),
        ("..", False),
        ("a..b", False),
        ("", False),
        ("-x", False),
        ("a/b", False),
        ("a\\b", False),
        ("a\x00", False),
        ("x" * 256, False),
        (7, False),
    ],
)
def test_safe_path_components(value: object, safe: bool) -> None:
    assert is_safe_component(value) is safe


# --- shards ----------------------------------------------------------------------------------


def test_shard_of_is_the_documented_hash() -> None:
    # Known answers: computed by the formula in the issue, so any change of it shows here.
    for archive_id in (UUID, "a", "00000000-0000-4000-8000-000000000000"):
        digest = hashlib.sha256(archive_id.encode()).digest()
        for n in (1, 2, 4, 7, 1000):
            assert shard_of(archive_id, n) == int.from_bytes(digest[:8], "big") % n
    # int.from_bytes(sha256(UUID)[:8], "big") == 3220349334151773921, by hand:
    assert shard_of(UUID, 4) == 1
    assert shard_of(UUID, 1000) == 921


def test_shards_split_ids_exactly_once() -> None:
    ids = [f"{k:08x}-0000-4000-8000-000000000000" for k in range(2000)]
    shards = [Shard(k, 4) for k in range(4)]
    owners = [[s.index for s in shards if s.owns(i)] for i in ids]
    assert all(len(o) == 1 for o in owners)
    sizes = [sum(o == [k] for o in owners) for k in range(4)]
    assert all(400 < size < 600 for size in sizes), sizes


@pytest.mark.parametrize(
    ("text", "shard"), [("0/1", Shard(0, 1)), ("3/8", Shard(3, 8)), (" 1 / 2 ", Shard(1, 2))]
)
def test_parse_shard(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(shard) == f"{shard.index}/{shard.count}"


@pytest.mark.parametrize("bad", ["4/4", "-1/4", "1/0", "1", "a/b", "1/2/3", (2, 1), 3, (True, 2)])
def test_bad_shards_are_refused(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        parse_shard(bad)


# --- pace --------------------------------------------------------------------------------------


def test_a_429_halves_the_limit_and_pauses_until_retry_after() -> None:
    state = after_rate_limit(PaceState(16, 16), now=100.0, retry_after=5.0, epoch=0)
    assert (state.limit, state.resume_at, state.epoch) == (8, 105.0, 1)
    # More 429s from requests started under the old limit: the pause extends, no second halving.
    state = after_rate_limit(state, now=101.0, retry_after=7.0, epoch=0)
    assert (state.limit, state.resume_at, state.epoch) == (8, 108.0, 1)
    # A 429 under the new limit halves again; never below 1.
    for _ in range(6):
        state = after_rate_limit(state, now=102.0, retry_after=None, epoch=state.epoch)
    assert state.limit == 1
    assert state.resume_at == 108.0  # a shorter pause never shortens the one in force


def test_a_429_without_retry_after_pauses_the_default() -> None:
    state = after_rate_limit(PaceState(4, 4), now=10.0, retry_after=None, epoch=0)
    assert state.resume_at == 10.0 + DEFAULT_PAUSE


def test_successes_add_one_slot_per_run_as_long_as_the_limit_up_to_the_ceiling() -> None:
    state = PaceState(2, 4)
    state = after_success(state)
    assert (state.limit, state.successes) == (2, 1)
    state = after_success(state)
    assert (state.limit, state.successes) == (3, 0)
    for _ in range(3):
        state = after_success(state)
    assert state.limit == 4
    for _ in range(10):
        state = after_success(state)
    assert state.limit == 4  # the caller's concurrency is the ceiling


def test_a_429_resets_the_run_of_successes() -> None:
    state = after_success(after_success(PaceState(8, 16)))
    assert after_rate_limit(state, 0.0, 0.0, 0).successes == 0


# --- failure verdicts --------------------------------------------------------------------------


def _download_error(status: int | None = None, code: str | None = None) -> DownloadError:
    error = DownloadError("storage refused the download", status=status)
    error.code = code
    return error


def _disk_full() -> DiskError:
    error = DiskError("cannot write x: disk full")
    error.errno = errno.ENOSPC
    return error


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (AuthError("bad", code="403"), Verdict.ABORT),
        (_disk_full(), Verdict.STOP),
        (OSError(errno.ENOSPC, "No space left on device"), Verdict.STOP),
        (RateLimitedError("slow", status=429), Verdict.SLOW_DOWN),
        (_download_error(503, "SlowDown"), Verdict.SLOW_DOWN),
        (_download_error(429), Verdict.SLOW_DOWN),
        (DownloadError("gave up after 4 tries: storage answered HTTP 429"), Verdict.SLOW_DOWN),
        (ServerError("down", status=503), Verdict.RETRY),
        (RequestError("reset"), Verdict.RETRY),
        (_download_error(500, "InternalError"), Verdict.RETRY),
        (DownloadError("gave up after 4 tries: storage answered HTTP 503"), Verdict.RETRY),
        (NotFoundError("gone", code="404"), Verdict.FAIL),
        (InvalidArgumentError("unsafe id"), Verdict.FAIL),
        (_download_error(404, "NoSuchKey"), Verdict.FAIL),
    ],
)
def test_each_failure_has_its_verdict(exc: BaseException, verdict: Verdict) -> None:
    assert classify(exc) is verdict


def test_reasons_keep_status_and_code_but_never_a_signed_query_or_a_token() -> None:
    exc = DownloadError(
        "x.flv: storage refused https://s3.example/b/x.flv?Signature=abc&Expires=1 for "
        "T1==cGFydG5lcl9pZD0xMjM0NSZzaWc9YWJj",
        status=403,
    )
    exc.code = "AccessDenied"
    reason = describe(exc)
    assert "HTTP 403" in reason and "AccessDenied" in reason and "DownloadError" in reason
    assert "Signature" not in reason and "cGFydG5lcl9" not in reason
    assert "https://s3.example/b/x.flv?..." in reason


# --- verify before delete ------------------------------------------------------------------------


def test_only_a_plain_md5_etag_is_compared() -> None:
    md5 = "d41d8cd98f00b204e9800998ecf8427e"
    assert etag_md5(f'"{md5}"') == md5
    assert etag_md5(md5.upper()) == md5
    assert etag_md5(f'"{md5}-12"') is None  # multipart: no digest of the file
    assert etag_md5(f'W/"{md5}"') is None  # weak: not byte-exact
    assert etag_md5(None) is None


def test_judge_compares_size_sha256_and_md5() -> None:
    facts = FileFacts("v", 10, "s" * 64, '"' + "a" * 32 + '"')
    assert judge(facts, 10, "s" * 64, "a" * 32) is None
    assert "bytes" in str(judge(facts, 9, "s" * 64, "a" * 32))
    assert "SHA-256" in str(judge(facts, 10, "t" * 64, "a" * 32))
    assert "ETag" in str(judge(facts, 10, "s" * 64, "b" * 32))
    assert judge(FileFacts("v", 10, "s" * 64, None), 10, "s" * 64, None) is None
