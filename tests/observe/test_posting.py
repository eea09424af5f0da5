"""The request log's HTTP/1.1 client against real servers on loopback, answering in each way HTTP allows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from daneel.errors import LoadError
from daneel.observe.posting import Poster

from .sink import Sink

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


async def serving(answer: Answer, calls: Callable[[Poster], Awaitable[list[int]]]) -> tuple[list[int], int]:
    """Serve `answer` to every request on a loopback port; what `calls` got, and how many connections it made."""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while not reader.at_eof():
                await read_request(reader)
                await answer(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    poster = Poster(f"http://127.0.0.1:{port}/events?x=1")
    try:
        statuses = await calls(poster)
    finally:
        await poster.close()
        server.close()
        await server.wait_closed()
    return statuses, connections


async def three(poster: Poster) -> list[int]:
    return [await poster.post(b'{"a": 1}', {"ce-id": str(i)}) for i in range(3)]


def answering(raw: bytes, close: bool = False) -> Answer:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
        await writer.drain()
        if close:
            writer.close()

    return answer


def test_a_kept_alive_connection_serves_every_post() -> None:
    statuses, connections = asyncio.run(
        serving(answering(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nok"), three)
    )
    assert statuses == [202, 202, 202] and connections == 1


def test_chunked_answers_and_interim_answers_are_read_whole() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    statuses, connections = asyncio.run(serving(answering(raw), three))
    assert statuses == [200, 200, 200] and connections == 1


def test_a_server_that_closes_gets_a_new_connection_each_time() -> None:
    raw = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
    statuses, connections = asyncio.run(serving(answering(raw), three))
    assert statuses == [200, 200, 200] and connections == 3


def test_a_kept_connection_the_server_closed_is_replaced_without_failing() -> None:
    """The server closes each connection after answering without saying so, as an idle timeout would."""
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"

    async def calls(poster: Poster) -> list[int]:
        statuses = []
        for i in range(3):
            statuses.append(await poster.post(b"{}", {"ce-id": str(i)}))
            await asyncio.sleep(0.05)  # the server's close reaches the kept connection
        return statuses

    statuses, connections = asyncio.run(serving(answering(raw, close=True), calls))
    assert statuses == [200, 200, 200] and connections == 3


def test_the_request_carries_the_path_host_headers_and_body() -> None:
    sink = Sink().start()

    async def main() -> int:
        poster = Poster(sink.url + "in?a=b")
        try:
            return await poster.post(b'{"x": [1, 2]}', {"ce-id": "e1", "content-type": "application/json"})
        finally:
            await poster.close()

    try:
        assert asyncio.run(main()) == 200
    finally:
        sink.stop()
    (received,) = sink.events()
    assert received.body == b'{"x": [1, 2]}' and received.headers["ce-id"] == "e1"
    assert received.headers["host"] == f"127.0.0.1:{sink.port}"


def test_no_server_is_an_os_error() -> None:
    sink = Sink().start()
    sink.stop()

    async def main() -> None:
        poster = Poster(sink.url)
        with pytest.raises(OSError):
            await poster.post(b"{}", {})
        await poster.close()

    asyncio.run(main())


def test_only_http_urls_are_taken() -> None:
    with pytest.raises(LoadError, match="expected an http:// or https:// URL"):
        Poster("ftp://logs/")
