"""Pure protocol tests: recorded bodies in, values or exceptions out. No sockets, no loop."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from aioopentok import (
    APIError,
    AuthError,
    InvalidArgumentError,
    NotFoundError,
    RateLimitedError,
    ResponseError,
    ServerError,
)
from aioopentok import _replies as rep
from aioopentok import _requests as req

SAMPLES = Path(__file__).parent / "samples"
AID = "200567af-0726-4e93-883b-fe0426d6310a"
VID = "bbf108c9-7237-49ae-9057-2ccdb71cf675"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def reply(body: bytes, status: int = 200, **headers: str) -> rep.Reply:
    return rep.Reply(status, headers, body)


def test_sans_io_modules_import_neither_aiohttp_nor_asyncio() -> None:
    # Importing a submodule runs the package __init__ (which imports the Client), so read the
    # modules' own import statements rather than sys.modules.
    sans_io = (
        "_requests", "_replies", "_tokens", "_xml", "_retry", "_models", "_errors", "_http",
        "_inflate", "_storage", "download/_ranges",
    )  # fmt: skip
    for name in sans_io:
        tree = ast.parse((Path(req.__file__).parent / f"{name}.py").read_text())
        imported = set()
        type_only = {  # imports under ``if TYPE_CHECKING:`` never run
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
        assert not imported & {"aiohttp", "asyncio"}, name


# --- create_session --------------------------------------------------------------------------


def test_production_session_reply_parses() -> None:
    session = rep.parse_session(reply(sample("create_session_production.xml")))
    assert session.session_id == (
        "2_MX40NTk3ODJ-fjIwMTItMDktMDQgMjM6Mjc6MTIuNzY3ODY5KzAwOjAwfjAuNTQzNTEwNTE4NjQxfg"
    )
    assert session.partner_id == "459782"
    assert session.create_dt == datetime(2012, 9, 4, 23, 27, 12, 767869, tzinfo=UTC)
    assert session.session_status == ""


def test_staging_session_reply_with_lowercase_root_and_java_date_parses() -> None:
    session = rep.parse_session(reply(sample("create_session_staging.xml")))
    assert session.session_id.startswith("2_MX40NTk3ODJ-MTI3")
    assert session.create_dt == datetime(
        2012, 8, 16, 9, 49, 56, tzinfo=timezone(timedelta(hours=-7))
    )
    assert session.session_status is None


def test_unknown_date_format_is_kept_as_raw_text() -> None:
    assert rep.parse_create_dt("yesterday at noon") == "yesterday at noon"
    assert rep.parse_create_dt("Thu Aug 16 09:49:56 XYZ 2012") == "Thu Aug 16 09:49:56 XYZ 2012"


def test_session_reply_without_session_id_is_a_response_error() -> None:
    with pytest.raises(ResponseError, match="no session_id"):
        rep.parse_session(
            reply(b"<Sessions><Session><partner_id>1</partner_id></Session></Sessions>")
        )


def test_session_reply_that_is_not_xml_is_a_response_error() -> None:
    with pytest.raises(ResponseError) as info:
        rep.parse_session(reply(b"OK"))
    assert info.value.status == 200
    assert info.value.body_excerpt == "OK"


def test_create_session_request_is_a_form_post_with_partner_auth_only() -> None:
    request = req.create_session_request(
        "12345:secret",
        "192.0.43.10",
        "enabled",
        {"multiplexer.numOutputStreams": "2"},
        api_key="12345",
    )
    assert request.method == "POST"
    assert request.path == "session/create"
    assert request.headers == {
        "X-TB-PARTNER-AUTH": "12345:secret",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    fields = parse_qs(request.body.decode(), keep_blank_values=True)
    assert fields == {
        "location": ["192.0.43.10"],
        "p2p.preference": ["enabled"],
        "multiplexer.numOutputStreams": ["2"],
        "api_key": ["12345"],
    }
    assert request.idempotent is False


def test_location_may_be_empty_and_must_otherwise_be_an_ip_address() -> None:
    request = req.create_session_request("k:s", None, api_key="k")
    assert parse_qs(request.body.decode(), keep_blank_values=True)["location"] == [""]
    assert b"p2p.preference" not in request.body
    ipv6 = req.create_session_request("k:s", "2001:db8::1", api_key="k")
    assert b"location=2001%3Adb8%3A%3A1" in ipv6.body
    with pytest.raises(InvalidArgumentError, match="IP address"):
        req.create_session_request("k:s", "example.com", api_key="k")


@pytest.mark.parametrize("value", ["maybe", "ENABLED", 1])
def test_bad_p2p_preference_is_rejected(value: object) -> None:
    with pytest.raises(InvalidArgumentError, match="p2p_preference"):
        req.create_session_request("k:s", None, value, api_key="k")  # type: ignore[arg-type]


def test_p2p_preference_accepts_bools_and_conflicts_with_properties() -> None:
    request = req.create_session_request("k:s", None, True, api_key="k")
    assert b"p2p.preference=enabled" in request.body
    with pytest.raises(InvalidArgumentError, match="disagree"):
        req.create_session_request(
            "k:s", None, "enabled", {"p2p.preference": "disabled"}, api_key="k"
        )


# --- errors ------------------------------------------------------------------------------------


def test_errors_body_403_at_http_200_is_an_auth_error_with_code_and_message() -> None:
    with pytest.raises(AuthError) as info:
        rep.parse_session(reply(sample("error_403_not_authorized.xml")))
    exc = info.value
    assert (exc.status, exc.code) == (200, "403")
    assert exc.message == "The API secret did not match, Invalid credentials passed"
    assert exc.body_excerpt is not None and exc.body_excerpt.startswith("<Errors>")


def test_errors_body_404_is_not_found_at_any_status() -> None:
    for status in (200, 404, 500):
        with pytest.raises(NotFoundError) as info:
            rep.parse_manifest(reply(sample("error_404_item_not_found.xml"), status))
        assert info.value.message == f"Archive {AID} not found"


def test_error_message_skips_whitespace_text_nodes() -> None:
    body = (
        b'<Errors>\n  <error code="403">\n    <notAuthorized message="nope"/>\n'
        b"  </error>\n</Errors>"
    )
    with pytest.raises(AuthError) as info:
        rep.check_reply(reply(body))
    assert info.value.message == "nope"


def test_bare_error_code_100_is_an_api_error_without_message() -> None:
    with pytest.raises(APIError) as info:
        rep.parse_delete(reply(sample("error_100_bare.xml")))
    assert type(info.value) is APIError
    assert info.value.code == "100"
    assert info.value.message is None


def test_staging_empty_403_is_an_auth_error() -> None:
    with pytest.raises(AuthError) as info:
        rep.parse_session(reply(b"", 403))
    assert info.value.status == 403 and info.value.code is None


def test_nginx_html_404_is_not_found() -> None:
    with pytest.raises(NotFoundError) as info:
        rep.parse_delete(reply(sample("nginx_404.html"), 404))
    assert info.value.status == 404


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthError),
        (429, RateLimitedError),
        (500, ServerError),
        (503, ServerError),
        (400, APIError),
        (302, APIError),
    ],
)
def test_error_statuses_map_to_their_classes(status: int, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        rep.check_reply(reply(b"<html>proxy says no</html>", status))
    assert info.value.status == status  # type: ignore[attr-defined]


def test_rate_limited_carries_retry_after() -> None:
    with pytest.raises(RateLimitedError) as info:
        rep.check_reply(rep.Reply(429, {"Retry-After": "7"}, b""))
    assert info.value.retry_after == 7.0


# --- manifest ----------------------------------------------------------------------------------


def test_recorded_manifest_parses_into_models() -> None:
    archive = rep.parse_manifest(reply(sample("manifest.xml")))
    assert archive.archive_id == AID
    assert archive.title == "1346797109799"
    assert archive.version == "0.1"
    assert [(v.id, v.length, v.name) for v in archive.resources] == [
        (VID, 18734, ""),
        ("3f0d3ec6-4a41-4cc5-9e38-f9e6375ba5fd", 18743, ""),
    ]
    assert [(e.type, e.id, e.offset) for e in archive.timeline] == [
        ("PLAY", "3f0d3ec6-4a41-4cc5-9e38-f9e6375ba5fd", 1255),
        ("PLAY", VID, 1263),
    ]
    assert archive.video(VID).length == 18734
    with pytest.raises(KeyError):
        archive.video("nope")


def test_manifest_with_escaped_title_and_names() -> None:
    body = (
        b'<manifest version="0.1" archiveid="a1" title="Bob &amp; &lt;Alice&gt;">'
        b'<resources><video id="v1" length="5" name="caf\xc3\xa9"/></resources></manifest>'
    )
    archive = rep.parse_manifest(reply(body))
    assert archive.title == "Bob & <Alice>"
    assert archive.resources[0].name == "caf\u00e9"
    assert archive.timeline == ()


@pytest.mark.parametrize(
    "body",
    [
        b'<manifest archiveid="a"><resources><video id="v" length="long"/></resources></manifest>',
        b'<manifest archiveid="a"><resources><video length="5"/></resources></manifest>',
        b"<manifest><resources/></manifest>",
        b"<Sessions/>",
        b"<manifest archiveid='a'><resources>",
    ],
)
def test_malformed_manifests_are_response_errors(body: bytes) -> None:
    with pytest.raises(ResponseError):
        rep.parse_manifest(reply(body))


# --- archive URL, delete, stitch ---------------------------------------------------------------


def test_archive_url_body_is_the_url() -> None:
    url = rep.parse_archive_url(reply(sample("archive_url.txt")))
    assert url == sample("archive_url.txt").decode()
    assert rep.parse_archive_url(reply(b"  http://127.0.0.1:1/x.flv?a=1\r\n")) == (
        "http://127.0.0.1:1/x.flv?a=1"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not a url",
        b"ftp://host/x.flv",
        b"/relative/x.flv",
        b"http://",
        b"<ok/>",
        b"http://host/a b.flv",
        b"\xff\xfe",
    ],
)
def test_archive_url_body_that_is_not_an_absolute_http_url_is_a_response_error(
    body: bytes,
) -> None:
    with pytest.raises(ResponseError):
        rep.parse_archive_url(reply(body))


def test_archive_url_body_with_errors_is_mapped() -> None:
    with pytest.raises(NotFoundError):
        rep.parse_archive_url(reply(sample("error_404_item_not_found.xml")))


def test_delete_accepts_any_non_error_body() -> None:
    assert rep.parse_delete(reply(b"")) is None
    assert rep.parse_delete(reply(b"<deleted/>")) is None
    assert rep.parse_delete(reply(b"OK")) is None


def test_stitch_ready_processing_and_errors() -> None:
    ready = rep.parse_stitch(rep.Reply(201, {"Location": "https://s/x.mp4?sig=1"}, b""))
    assert ready.ready and ready.url == "https://s/x.mp4?sig=1"
    assert rep.parse_stitch(reply(b"", 202)).ready is False
    with pytest.raises(ResponseError, match="Location"):
        rep.parse_stitch(reply(b"", 201))
    with pytest.raises(AuthError):
        rep.parse_stitch(reply(b"", 403))
    with pytest.raises(NotFoundError):
        rep.parse_stitch(reply(b"", 404))


def test_archive_requests_carry_token_auth_and_safe_paths() -> None:
    token = "T1==abc"
    manifest = req.manifest_request(AID, token)
    assert (manifest.method, manifest.path) == ("GET", f"archive/getmanifest/{AID}")
    assert manifest.headers == {"X-TB-TOKEN-AUTH": token}
    url = req.video_url_request(AID, VID, token)
    assert url.path == f"archive/url/{AID}/{VID}"
    delete = req.delete_archive_request(AID, token)
    assert (delete.method, delete.path, delete.body) == ("POST", f"archive/delete/{AID}", b"")
    stitch = req.stitch_request("k:s", AID)
    assert (stitch.method, stitch.path) == ("POST", f"archive/{AID}/stitch")
    assert stitch.headers == {"X-TB-PARTNER-AUTH": "k:s"}


@pytest.mark.parametrize(
    "bad", ["", "../etc", "a/b", "..", ".", "a\r\nX: y", "a b", "a%2F", 5, "x" * 256]
)
def test_ids_that_are_unsafe_in_a_path_are_rejected(bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="archive_id"):
        req.manifest_request(bad, "T1==abc")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "T1==a\r\nX-Evil: 1", "T1== b", "caf\u00e9", None])
def test_tokens_that_are_unsafe_in_a_header_are_rejected_without_echo(bad: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        req.manifest_request(AID, bad)  # type: ignore[arg-type]
    if isinstance(bad, str) and bad:
        assert bad not in str(info.value)


# --- header facts --------------------------------------------------------------------------------


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert rep.retry_after_seconds("5") == 5.0
    assert rep.retry_after_seconds("Mon, 01 Jan 2024 12:00:30 GMT", now=now) == 30.0
    assert rep.retry_after_seconds("Mon, 01 Jan 2024 11:00:00 GMT", now=now) == 0.0
    assert rep.retry_after_seconds("soon") is None
    assert rep.retry_after_seconds(None) is None


def test_retry_after_date_is_measured_from_the_replys_own_date() -> None:
    # The local clock plays no part: a skewed one neither stretches nor cancels the pause.
    headers = {
        "Retry-After": "Mon, 01 Jan 2024 12:00:30 GMT",
        "Date": "Mon, 01 Jan 2024 12:00:00 GMT",
    }
    assert rep.retry_after_of(headers) == 30.0
    assert rep.retry_after_of({"Retry-After": "12"}) == 12.0
    assert rep.retry_after_of({}) is None
    with pytest.raises(ServerError) as info:
        rep.check_reply(rep.Reply(503, headers, b""))
    assert info.value.retry_after == 30.0


def test_clock_offset_from_date_header() -> None:
    local = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert rep.clock_offset("Mon, 01 Jan 2024 12:05:00 GMT", local) == 300.0
    assert rep.clock_offset("garbage", local) is None
    assert rep.clock_offset(None, local) is None


@pytest.mark.parametrize("location", [None, "", "192.0.43.10", "2001:db8::1", "fe80::1%eth0"])
@pytest.mark.parametrize("p2p", [None, "enabled", False])
def test_session_form_fast_path_matches_urlencode(location: str | None, p2p: object) -> None:
    fast = req.create_session_request("k:s", location, p2p, api_key="12345")  # type: ignore[arg-type]
    # A property forces the general path; compare everything but that field.
    slow = req.create_session_request(
        "k:s",
        location,
        p2p,
        {"x": "1"},
        api_key="12345",  # type: ignore[arg-type]
    )
    slow_fields = parse_qs(slow.body.decode(), keep_blank_values=True)
    del slow_fields["x"]
    assert parse_qs(fast.body.decode(), keep_blank_values=True) == slow_fields
    assert fast.headers == slow.headers


@pytest.mark.parametrize("key", ["location", "api_key"])
def test_properties_cannot_override_checked_fields(key: str) -> None:
    with pytest.raises(InvalidArgumentError, match="own argument"):
        req.create_session_request("k:s", None, None, {key: "anything"}, api_key="k")
