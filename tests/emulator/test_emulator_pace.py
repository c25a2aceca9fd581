"""Storage shaped like S3: the per-connection rate cap, the first-byte delay, the MD5 ETag."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import sys
import time

import aiohttp
import pytest
from emulator_helpers import KEY, SECRET, build_token

from aioopentok.emulator import Emulator, Faults, _hashes
from aioopentok.emulator._cli import build_parser
from aioopentok.emulator._pace import TokenBucket, write_size


async def _url(emu: Emulator, http: aiohttp.ClientSession, size: int) -> tuple[str, str, str]:
    sid = emu.create_session_id()
    aid = emu.add_archive(sid, [size])
    vid = emu.archives[aid].videos[0].id
    headers = {"X-TB-TOKEN-AUTH": build_token(sid)}
    async with http.get(f"{emu.url}/archive/url/{aid}/{vid}", headers=headers) as r:
        return await r.text(), aid, vid


def test_token_bucket_paces_and_pays_back_oversleep() -> None:
    bucket = TokenBucket(1000, 100, now=0.0)
    assert bucket.take(100, 0.0) == 0  # starts full
    assert bucket.take(100, 0.0) == pytest.approx(0.1)
    assert bucket.take(100, 0.1) == pytest.approx(0.1)
    # Woken 50 ms late: the next wait is 50 ms shorter, so the average rate holds.
    assert bucket.take(100, 0.25) == pytest.approx(0.05)
    # Idle for long: no more than one burst of catch-up.
    assert bucket.take(100, 10.0) == 0
    assert bucket.take(100, 10.0) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        TokenBucket(0, 100, now=0.0)


def test_write_size_is_64_to_256_kib_at_s3_rates() -> None:
    assert write_size(32_000_000) == 256 * 1024
    assert 64 * 1024 <= write_size(2_500_000) <= 256 * 1024
    assert write_size(1) == 4096


@pytest.mark.parametrize(
    ("name", "value"),
    [("storage_rate", 0), ("storage_rate", -5), ("storage_rate", 1.5), ("storage_rate", True),
     ("first_byte_delay", -1), ("first_byte_delay", math.nan), ("first_byte_delay", "1")],
)  # fmt: skip
def test_bad_knob_values_are_refused(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        Faults(**{name: value})  # type: ignore[arg-type]
    faults = Faults()
    with pytest.raises(ValueError, match=name):
        setattr(faults, name, value)


async def test_rate_cap_is_per_connection(emu: Emulator, http: aiohttp.ClientSession) -> None:
    size, rate, conns = 4_000_000, 4_000_000, 4
    url, aid, vid = await _url(emu, http, size)
    part = size // conns
    emu.faults.storage_rate = rate

    async def fetch(i: int) -> tuple[bytes, str]:
        rng = f"bytes={i * part}-{(i + 1) * part - 1}"
        async with http.get(url, headers={"Range": rng}) as r:
            assert r.status == 206
            assert r.headers["Content-Range"] == f"bytes {i * part}-{(i + 1) * part - 1}/{size}"
            return await r.read(), r.headers["ETag"]

    started = time.perf_counter()
    one, _ = await fetch(0)
    single = time.perf_counter() - started
    started = time.perf_counter()
    results = await asyncio.gather(*(fetch(i) for i in range(conns)))
    parallel = time.perf_counter() - started
    # One burst (one write) goes out unpaced; the rest at the rate. Pacing is never faster.
    floor = (part - write_size(rate)) / rate
    assert single >= floor * 0.95, single
    assert parallel >= floor * 0.95, parallel
    # Each connection has its own cap: 4 in parallel take about as long as one, not 4 times.
    assert parallel < 2.5 * max(single, floor), (single, parallel)
    whole = b"".join(data for data, _ in results)
    assert one == emu.video_bytes(aid, vid, 0, part)
    assert whole == emu.video_bytes(aid, vid)
    assert {etag for _, etag in results} == {f'"{hashlib.md5(whole).hexdigest()}"'}


async def test_first_byte_delay_holds_the_headers(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    url, aid, vid = await _url(emu, http, 50_000)
    emu.faults.first_byte_delay = 0.6  # wide apart from an API reply's few ms, even when loaded
    started = time.perf_counter()
    async with http.get(url, headers={"Range": "bytes=10-"}) as r:
        waited = time.perf_counter() - started
        assert r.status == 206
        assert await r.read() == emu.video_bytes(aid, vid, 10)
    assert waited >= 0.59
    started = time.perf_counter()
    async with http.post(f"{emu.url}/session/create", headers={"X-TB-PARTNER-AUTH": "x:y"}) as r:
        await r.read()
    assert time.perf_counter() - started < 0.5  # API replies are not storage replies


async def test_etag_is_quoted_md5_of_the_bytes(emu: Emulator, http: aiohttp.ClientSession) -> None:
    url, aid, vid = await _url(emu, http, 300_000)
    md5 = hashlib.md5(emu.video_bytes(aid, vid)).hexdigest()
    for method, headers in [("GET", {}), ("HEAD", {}), ("GET", {"Range": "bytes=5-9"})]:
        async with http.request(method, url, headers=headers) as r:
            assert r.headers["ETag"] == f'"{md5}"'
    assert emu.video_md5(aid, vid) == md5
    # The stitched file too.
    async with http.post(
        f"{emu.url}/archive/{aid}/stitch", headers={"X-TB-PARTNER-AUTH": f"{KEY}:{SECRET}"}
    ) as r:
        assert r.status == 202
    async with http.post(
        f"{emu.url}/archive/{aid}/stitch", headers={"X-TB-PARTNER-AUTH": f"{KEY}:{SECRET}"}
    ) as r:
        location = r.headers["Location"]
    async with http.get(location) as r:
        assert r.headers["ETag"] == f'"{hashlib.md5(await r.read()).hexdigest()}"'


async def test_md5_is_computed_once_for_concurrent_first_requests(
    emu: Emulator, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = _hashes.md5_hex

    def counting(flv: object) -> str:
        calls.append("x")
        time.sleep(0.05)  # in the worker thread: the other requests arrive meanwhile
        return real(flv)  # type: ignore[arg-type]

    monkeypatch.setattr(_hashes, "md5_hex", counting)
    url, _, _ = await _url(emu, http, 100_000)

    async def etag() -> str:
        async with http.head(url) as r:
            return r.headers["ETag"]

    etags = await asyncio.gather(*(etag() for _ in range(5)))
    assert len(set(etags)) == 1 and await etag() == etags[0]
    assert calls == ["x"]


def test_cli_options_set_the_knobs() -> None:
    args = build_parser().parse_args(["--storage-rate", "32000000", "--first-byte-delay", "0.05"])
    assert (args.storage_rate, args.first_byte_delay) == (32_000_000, 0.05)
    args = build_parser().parse_args([])
    assert (args.storage_rate, args.first_byte_delay) == (None, 0.0)
    for bad in (["--storage-rate", "0"], ["--storage-rate", "x"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad)


async def test_cli_serves_paced_storage(http: aiohttp.ClientSession) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aioopentok.emulator", "--api-key", KEY, "--api-secret", SECRET,
        "--seed-archives", "1", "--video-size", "600000",
        "--storage-rate", "2000000", "--first-byte-delay", "0.2",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        url = re.search(r"url=(\S+)", (await proc.stdout.readline()).decode())
        line = (await proc.stdout.readline()).decode()
        m = re.fullmatch(r"archive_id=(\S+) session_id=(\S+) videos=(\S+) \S+\n", line)
        assert url is not None and m is not None, line
        headers = {"X-TB-TOKEN-AUTH": build_token(m[2])}
        async with http.get(f"{url.group(1)}/archive/url/{m[1]}/{m[3]}", headers=headers) as r:
            storage = await r.text()
        started = time.perf_counter()
        async with http.get(storage) as r:
            assert len(await r.read()) == 600_000
        # 0.2 s first-byte delay + (600000 - one write) / 2 MB/s
        assert time.perf_counter() - started >= 0.2 + (600_000 - write_size(2_000_000)) / 2e6
    finally:
        proc.terminate()
        await proc.wait()
