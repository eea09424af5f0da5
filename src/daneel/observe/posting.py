"""A small HTTP/1.1 client that POSTs bodies to one URL over a pool of kept-alive connections.

Request logging sends one POST per event (CloudEvents' binary mode), so the cost
of a POST is the cost of logging: a general client (httpx) spends some hundreds
of microseconds of CPU on each, this one some tens. It does what a CloudEvents
sink needs and no more: plain HTTP or TLS, `Content-Length` or chunked answers,
kept-alive connections, and a fresh connection when a kept one turns out closed.
It follows no redirects and uses no proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

from daneel.errors import LoadError

_NO_BODY = frozenset({204, 304})

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Poster:
    """POSTs to `url`; at most as many connections as callers at once, each kept for the next POST."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise LoadError(f"request log: expected an http:// or https:// URL; got {url!r}")
        self.host = parts.hostname
        self.port = port or (443 if parts.scheme == "https" else 80)
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.timeout_s = timeout_s
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = parts.netloc.rpartition("@")[2]
        self._start = f"POST {target} HTTP/1.1\r\nhost: {authority}\r\n".encode("latin-1")
        self._idle: list[Connection] = []

    async def post(self, body: bytes, headers: dict[str, str]) -> int:
        """The answer's status code; raises OSError (or TimeoutError) when there is none."""
        request = self._request(body, headers)
        async with asyncio.timeout(self.timeout_s):
            while self._idle:  # a kept connection the server may have closed since: then try the next
                connection = self._idle.pop()
                with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                    return await self._exchange(connection, request)
            return await self._exchange(await self._connect(), request)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
        for _, writer in idle:
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _request(self, body: bytes, headers: dict[str, str]) -> bytes:
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return b"".join((self._start, lines.encode("latin-1"), b"content-length: %d\r\n\r\n" % len(body), body))

    async def _connect(self) -> Connection:
        server_hostname = self.host if self.tls is not None else None
        return await asyncio.open_connection(self.host, self.port, ssl=self.tls, server_hostname=server_hostname)

    async def _exchange(self, connection: Connection, request: bytes) -> int:
        reader, writer = connection
        try:
            writer.write(request)
            await writer.drain()
            status, keep = await _answer(reader)
        except BaseException:
            writer.close()
            raise
        if keep:
            self._idle.append(connection)
        else:
            writer.close()
        return status


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one answer, skipping interim (1xx) ones; its status, and whether the connection can be kept."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")  # at most the reader's limit, 64 KiB
        status_line, _, rest = head.decode("latin-1").partition("\r\n")
        version, _, tail = status_line.partition(" ")
        status = int(tail[:3])
        if not 100 <= status < 200:
            break
    headers = dict(_header(line) for line in rest.split("\r\n") if ":" in line)
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if status in _NO_BODY:
        return status, keep
    if headers.get("transfer-encoding", "").lower() == "chunked":
        await _skip_chunks(reader)
    elif "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    else:
        await reader.read()  # the body runs to the end of the connection
        keep = False
    return status, keep


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()


async def _skip_chunks(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, up to the blank line
                pass
            return
        await reader.readexactly(size + 2)
