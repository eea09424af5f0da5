"""Large bodies are decoded aside: the server keeps answering others meanwhile, and answers them right."""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import requests

SUMS = """
    class Sums:
        def predict(self, X, names, meta):
            return X.sum(axis=1)
"""
ROWS = 2_500_000  # 10 million one-digit numbers: 20 MB of JSON, cheap to send, slow to parse


@pytest.fixture(scope="module")
def server(module_serve: Any, make_model: Any) -> Any:
    return module_serve(make_model(SUMS, "sums"), "--no-grpc", "--max-body-bytes", str(2**27))


def large_body() -> bytes:
    rows = ",".join(["[1,2,3,4]"] * ROWS)
    # The shape says five columns: the request fails once decoded, so that nothing but decoding takes time.
    return b'{"inputs":[{"name":"x","datatype":"INT64","shape":[%d,5],"data":[%s]}]}' % (ROWS, rows.encode())


def test_health_answers_while_a_large_body_is_decoded(server: Any) -> None:
    """Health checks sent once the body's last byte is are answered before the large request's 400 is.

    All but that byte go first, and the server reads them (health checks wait for it, not the clock).
    Then the count, not the time, is what is checked: parsed on the event loop, the body kept every
    health check waiting until it was decoded, so that hardly any came back before the large answer.
    """
    body = large_body()
    head = f"POST /v2/models/sums/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port)) as sock, requests.Session() as health:
        sock.sendall(head.encode() + body[:-1])
        client = sock.getsockname()[1]
        while _unread(server.port, client):  # what the kernel holds for the server to read
            health.get(server.url + "/v2/health/live", timeout=60)
        sock.sendall(body[-1:])
        sock.setblocking(False)
        answered = 0
        while not _answered(sock):
            assert health.get(server.url + "/v2/health/live", timeout=60).status_code == 200
            answered += 1
        sock.setblocking(True)
        answer = _read_response(sock)
    assert answered >= 10, f"only {answered} health checks were answered while the large request was decoded"
    assert b" 400 " in answer.split(b"\r\n", 1)[0]


def test_a_large_body_is_answered_as_a_small_one_is(server: Any) -> None:
    rows = np.arange(400_000 * 4, dtype=np.float32).reshape(-1, 4)
    tensor = {"name": "x", "datatype": "FP32", "shape": list(rows.shape), "data": rows.tolist()}
    response = requests.post(server.url + "/v2/models/sums/infer", json={"inputs": [tensor]}, timeout=300)
    assert response.status_code == 200, response.text[:300]
    np.testing.assert_array_equal(response.json()["outputs"][0]["data"], rows.sum(axis=1))
    bad = {"inputs": [{**tensor, "shape": [400_000, 5]}]}
    response = requests.post(server.url + "/v2/models/sums/infer", json=bad, timeout=300)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "inputs[0].data: has 1600000 elements but shape [400000, 5] needs 2000000"},
    )


def _unread(server: int, client: int) -> int:
    """Bytes the server has not read yet on its side of the connection from port `client` (Linux's /proc/net/tcp)."""
    local, remote = f"0100007F:{server:04X}", f"0100007F:{client:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"no connection from port {client} to port {server} in /proc/net/tcp")


def _answered(sock: socket.socket) -> bool:
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False


def _read_response(sock: socket.socket) -> bytes:
    sock.settimeout(300)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    return data


def test_workers_with_helpers_stop_whole_on_sigterm(serve: Any, make_model: Any) -> None:
    server = serve(make_model(SUMS, "sums"), "--no-grpc", "--workers", "2")
    rows = np.ones((100_000, 4)).tolist()
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [100_000, 4], "data": rows}]}
    for _ in range(4):  # new connections: each worker is likely to start its helper
        assert requests.post(server.url + "/v2/models/sums/infer", json=body, timeout=300).status_code == 200
    assert len(_session(server.proc.pid)) > 3  # the supervisor, two workers, and at least one helper
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 0, server.stderr
    assert _session(server.proc.pid) == []


def _session(sid: int) -> list[int]:
    """The processes still alive in the session `sid` leads (the server's: tests start it in a new one)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def test_tensor_bytes_are_decoded_in_process_however_many(serve: Any, make_model: Any) -> None:
    """Only a large JSON part goes to the helper: the binary extension's tensor bytes cost next to nothing
    to read, and would cost a copy each way to send to another process."""
    server = serve(make_model(SUMS, "sums"), "--no-grpc")
    rows = np.ones((400_000, 4), dtype=np.float32)  # 6.4 MB of tensor bytes
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": list(rows.shape),
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ]
        }
    )
    response = requests.post(
        server.url + "/v2/models/sums/infer",
        data=head + rows.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(head))},
        timeout=300,
    )
    assert response.status_code == 200, response.text[:300]
    assert response.json()["outputs"][0]["data"][:2] == [4.0, 4.0]
    assert _session(server.proc.pid) == [server.proc.pid]  # no helper process was started
