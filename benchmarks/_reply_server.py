"""A fast loopback HTTP/1.1 server answering every request with protocol.md's recorded reply.

Strategy: a bare ``asyncio.Protocol`` (no framework) that finds the end of the headers, skips
``Content-Length`` bytes of body, and writes one pre-built reply (only the ``Date`` header is
renewed, once a second); keep-alive and pipelining are honoured. It runs in its own process,
pinned to its own CPU, so it doesn't share a core with the client it serves, and it is cheap
enough per request that the client is the bottleneck (the benchmark checks the server's CPU).

Run: ``python benchmarks/_reply_server.py [cpu]``: prints the port on stdout, serves until
stdin closes (so it never outlives the benchmark that started it).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from email.utils import formatdate

__all__ = ["RECORDED_REPLY", "serve"]

RECORDED_REPLY = b"""<Sessions>
  <Session>
    <session_id>2_MX40NTk3ODJ-fjIwMTItMDktMDQgMjM6Mjc6MTIuNzY3ODY5KzAwOjAwfjAuNTQzNTEwNTE4NjQxfg</session_id>
    <partner_id>459782</partner_id>
    <create_dt>2012-09-04 23:27:12.767869+00:00</create_dt>
    <session_status></session_status>
    </Session>
</Sessions>
"""


class _Reply:
    def __init__(self) -> None:
        self._second = -1
        self._bytes = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._bytes = (
                b"HTTP/1.1 200 OK\r\n"
                b"Content-Type: text/xml; charset=utf-8\r\n"
                + f"Content-Length: {len(RECORDED_REPLY)}\r\n".encode()
                + f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
                + b"Server: nginx\r\n\r\n"
                + RECORDED_REPLY
            )
        return self._bytes


class _Http(asyncio.Protocol):
    reply = _Reply()
    served = 0

    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        out = []
        close = False
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buf[:end].lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                line_end = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : line_end if line_end >= 0 else None])
            if len(self.buf) < end + 4 + length:
                break
            self.buf = self.buf[end + 4 + length :]
            out.append(self.reply.get())
            _Http.served += 1
            if b"\r\nconnection: close" in head:
                close = True
                break
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
            if close:
                self.transport.close()


async def serve(port_out: object = None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Http, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()  # EOF: the benchmark is done (or died)
    server.close()


def main() -> None:
    if len(sys.argv) > 1 and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {int(sys.argv[1])})
    asyncio.run(serve())


if __name__ == "__main__":
    main()
