"""Downloads against a real S3 implementation (moto's server), not our emulator.

moto serves presigned URLs, ranged GETs (206 + Content-Range), S3 ETags (MD5 for a single-part
upload) and S3's XML errors; our emulator agreeing with our client would prove less.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from aioopentok import Client, DownloadError
from aioopentok._storage import plain_md5_etag

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

MiB = 1024 * 1024
BUCKET = "tokbox.com.production"
FLV = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00" + os.urandom(5 * MiB + 321)


@pytest.fixture(scope="module")
def s3() -> Iterator[object]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
        aws_access_key_id="AKIAFAKEFAKEFAKEFAKE", aws_secret_access_key="fake/secret",
    )  # fmt: skip
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="459782/a/v.flv", Body=FLV)
    try:
        yield client
    finally:
        server.stop()


@pytest_asyncio.fixture
async def api(s3) -> AsyncIterator[tuple[Client, list[str]]]:
    """A loopback API whose archive/url answers the next presigned URL of ``urls``."""
    urls: list[str] = []

    async def video_url(request: web.Request) -> web.Response:
        return web.Response(text=urls.pop(0), content_type="text/html")

    app = web.Application()
    app.router.add_get("/hl/archive/url/a/v", video_url)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()

    async def no_sleep(_: float) -> None:
        pass

    try:
        async with Client("459782", "s", api_url=str(server.make_url("/hl")), sleep=no_sleep,
                          part_size=MiB, connections=4) as client:  # fmt: skip
            yield client, urls
    finally:
        await server.close()


def _presign(s3, key: str = "459782/a/v.flv", expires: int = 3600) -> str:
    return s3.generate_presigned_url(  # type: ignore[no-any-return]
        "get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=expires
    )


async def test_a_segmented_download_from_s3_is_byte_exact_and_md5_matches_the_etag(
    s3, api, tmp_path: Path
) -> None:
    client, urls = api
    urls.append(_presign(s3))
    result = await client.download_video("a", "v", "T1==dG9rZW4=", tmp_path)
    assert (tmp_path / "v.flv").read_bytes() == FLV
    assert result.sha256 == hashlib.sha256(FLV).hexdigest()
    assert result.connections == 4  # S3 answered the ranged GETs with 206s
    assert plain_md5_etag(result.etag) == hashlib.md5(FLV).hexdigest()


async def test_s3_no_such_key_is_a_permanent_error_with_its_code(s3, api, tmp_path) -> None:
    client, urls = api
    urls.append(_presign(s3, key="459782/a/missing.flv"))
    with pytest.raises(DownloadError) as info:
        await client.download_video("a", "v", "T1==dG9rZW4=", tmp_path)
    assert (info.value.status, info.value.code) == (404, "NoSuchKey")
    assert "X-Amz-" not in str(info.value) and "Signature" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
