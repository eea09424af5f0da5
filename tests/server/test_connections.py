"""Slow and hostile clients: stalled connections are closed, oversized headers refused, connections capped."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

ECHO = """
    class Echo:
        def predict(self, X, names, meta):
            return X
"""

V2 = b'{"inputs":[{"name":"x","datatype":"FP64","shape":[1,1],"data":[1.0]}]}'


@pytest.fixture(scope="module")
def strict(module_serve: Any, make_model: Any) -> Any:
    """A server with short timeouts and small header limits."""
    return module_serve(
        make_model(ECHO, "echo"),
        "--header-timeout",
        "1",
        "--body-timeout",
        "1",
        "--keep-alive-timeout",
        "1",
        "--max-header-bytes",
        "8192",
        "--max-headers",
        "20",
    )


@contextlib.contextmanager
def connection(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        yield sock
    finally:
        sock.close()


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout fails the test)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def status_and_body(raw: bytes) -> tuple[int, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def test_connections_stalled_mid_headers_get_408_and_are_closed(strict: Any) -> None:
    with contextlib.ExitStack() as stack:
        stalled = [stack.enter_context(connection(strict.port)) for _ in range(5)]
        for sock in stalled:
            sock.sendall(b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: daneel\r\nContent-Type: app")
        for sock in stalled:
            status, body = status_and_body(read_all(sock))
            assert status == 408
            assert "--header-timeout" in body["error"]


def test_a_connection_that_sends_nothing_is_closed(strict: Any) -> None:
    with connection(strict.port) as sock:
        read_all(sock)


def test_a_request_stalled_mid_body_gets_408(strict: Any) -> None:
    with connection(strict.port) as sock:
        head = b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: daneel\r\nContent-Length: %d\r\n\r\n" % len(V2)
        sock.sendall(head + V2[:10])
        status, body = status_and_body(read_all(sock))
        assert status == 408
        assert "body" in body["error"] and "--body-timeout" in body["error"]


def test_an_idle_keep_alive_connection_is_closed(strict: Any) -> None:
    with connection(strict.port) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: daneel\r\n\r\n")
        answer = read_all(sock)  # the answer, then the close once the connection has idled
        assert answer.startswith(b"HTTP/1.1 200")


def test_oversized_headers_get_431(strict: Any) -> None:
    with connection(strict.port) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: daneel\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        status, body = status_and_body(read_all(sock))
        assert status == 431
        assert "--max-header-bytes" in body["error"]


def test_too_many_headers_get_431(strict: Any) -> None:
    headers = {f"x-header-{i}": "1" for i in range(50)}
    response = requests.get(strict.url + "/v2/health/live", headers=headers, timeout=30)
    assert response.status_code == 431
    assert "--max-headers" in response.json()["error"]


def test_requests_succeed_while_stalled_connections_wait_to_be_closed(strict: Any) -> None:
    with contextlib.ExitStack() as stack:
        for _ in range(50):
            stack.enter_context(connection(strict.port)).sendall(b"GET /v2/health/live HTTP/1.1\r\n")
        failed = 0
        for _ in range(20):
            response = requests.post(strict.url + "/v2/models/echo/infer", data=V2, timeout=30)
            failed += response.status_code != 200
        assert failed == 0


def test_connections_beyond_the_limit_get_503_while_open_ones_are_served(serve: Any, make_model: Any) -> None:
    server = serve(make_model(ECHO, "echo"), "--max-connections", "4", "--header-timeout", "60")
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(connection(server.port)) for _ in range(4)]
        for sock in held:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: daneel\r\n")
        v2 = requests.get(server.url + "/v2/health/live", timeout=30)
        assert v2.status_code == 503
        assert "--max-connections" in v2.json()["error"]
        assert v2.headers["retry-after"] == "1"
        seldon = requests.post(server.url + "/api/v1.0/predictions", json={"data": {"ndarray": [[1]]}}, timeout=30)
        assert seldon.status_code == 503
        assert seldon.json()["status"]["code"] == 503
        for sock in held:
            sock.sendall(b"Connection: close\r\n\r\n")
            assert read_all(sock).startswith(b"HTTP/1.1 200")


def test_a_connection_limit_past_the_open_file_limit_is_warned_about(serve: Any, make_model: Any) -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit on open files here")
    server = serve(make_model(ECHO, "echo"), "--max-connections", str(hard + 1))
    assert f"too low for --max-connections {hard + 1}" in server.stderr
