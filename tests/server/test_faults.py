"""Models that raise, hang, exit and crash: the server answers the other requests, and health, throughout."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import textwrap
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests

from daneel.protocol.proto import grpc_predict_v2_pb2 as pb
from daneel.protocol.proto import grpc_predict_v2_pb2_grpc as pb_grpc

from .test_workers import gone

# The first value of the request picks what predict does: 0 answers, 1 raises, 2 hangs (until the process
# ends), 3 calls os._exit(1), 4 reads address 0 (a segfault). Each worker leaves a file named by its pid
# in `markers` once loaded, and a file `hanging` once a call hangs.
FAULTY = """
    import ctypes
    import os
    import threading
    from pathlib import Path


    class Faulty:
        def __init__(self, markers):
            self.markers = markers

        def load(self):
            Path(self.markers, str(os.getpid())).touch()

        def predict(self, X, names, meta):
            what = int(X[0][0])
            if what == 1:
                raise RuntimeError("asked to fail")
            if what == 2:
                Path(self.markers, "hanging").touch()
                threading.Event().wait()
            if what == 3:
                os._exit(1)
            if what == 4:
                ctypes.string_at(0)
            return X
"""

DIES_AT_LOAD = """
    import os


    class DiesAtLoad:
        def load(self):
            os._exit(7)

        def predict(self, X, names, meta):
            return X
"""


def seldon(server: Any, what: int, **headers: str) -> requests.Response:
    return requests.post(
        server.url + "/api/v1.0/predictions",
        json={"data": {"ndarray": [[what]]}},
        headers={"Connection": "close", **headers},
        timeout=30,
    )


def v2(server: Any, what: int) -> requests.Response:
    body = {"inputs": [{"name": "x", "datatype": "INT64", "shape": [1, 1], "data": [what]}]}
    return requests.post(server.url + "/v2/models/faulty/infer", json=body, timeout=30)


def failures(server: Any, count: int = 20) -> int:
    """How many of `count` ordinary requests, each on a new connection, did not get their answer."""
    failed = 0
    for _ in range(count):
        try:
            failed += seldon(server, 0).json()["data"]["ndarray"] != [[0]]
        except requests.RequestException:
            failed += 1
    return failed


def workers_loaded(markers: Path) -> set[int]:
    return {int(path.name) for path in markers.iterdir() if path.name.isdigit()}


def live(markers: Path) -> set[int]:
    return {pid for pid in workers_loaded(markers) if not gone(pid)}


def health_answers(server: Any) -> None:
    for path in ("/v2/health/live", "/v2/health/ready", "/health/ping"):
        assert requests.get(server.url + path, timeout=5).status_code == 200, path


def in_background(call: Any) -> threading.Thread:
    def run() -> None:
        with contextlib.suppress(requests.RequestException):
            call()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


@pytest.fixture
def two_workers(serve: Any, make_model: Any, markers: Path, wait_for: Any) -> Any:
    server = serve(
        make_model(FAULTY, "faulty"),
        "--workers",
        "2",
        "--shutdown-timeout",
        "1",
        "--parameters",
        json.dumps({"markers": str(markers)}),
    )
    wait_for(lambda: len(live(markers)) == 2, "both workers to load the model")
    return server


def test_a_model_that_raises_fails_its_request_only(two_workers: Any) -> None:
    answer = seldon(two_workers, 1)
    assert answer.status_code == 500
    assert "asked to fail" in answer.json()["status"]["info"]
    assert failures(two_workers) == 0


@pytest.mark.parametrize(
    ("what", "said"), [(3, "exited with code 1"), (4, "was killed by signal 11 (SIGSEGV)")], ids=["exit", "segfault"]
)
def test_a_worker_that_dies_in_predict_is_replaced_and_the_death_logged(
    two_workers: Any, markers: Path, wait_for: Any, what: int, said: str
) -> None:
    before = live(markers)
    with pytest.raises(requests.ConnectionError):
        seldon(two_workers, what, **{"x-request-id": "the-fatal-one"})
    assert failures(two_workers) == 0  # the other worker answers meanwhile
    wait_for(lambda: len(live(markers)) == 2 and live(markers) != before, "a replacement worker")
    wait_for(lambda: said in two_workers.stderr, "the supervisor to log the death")
    assert "(its last request: the-fatal-one)" in two_workers.stderr
    assert two_workers.returncode is None
    assert failures(two_workers) == 0


def test_a_hanging_model_leaves_the_server_serving(two_workers: Any, markers: Path, wait_for: Any) -> None:
    in_background(lambda: seldon(two_workers, 2))
    wait_for(lambda: (markers / "hanging").exists(), "the model to hang")
    health_answers(two_workers)
    assert failures(two_workers) == 0


def test_workers_dying_as_they_load_stop_the_server_with_a_reason(serve: Any, make_model: Any) -> None:
    server = serve.exits(make_model(DIES_AT_LOAD, "dies"), "--workers", "2")
    assert server.returncode == 1
    assert "workers keep dying before their models load" in server.stderr
    assert "exited with code 7" in server.stderr


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_exit_when_the_supervisor_is_killed(two_workers: Any, markers: Path, wait_for: Any) -> None:
    workers = live(markers)
    os.kill(two_workers.proc.pid, signal.SIGKILL)
    wait_for(lambda: all(gone(pid) for pid in workers), "the workers to exit")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", two_workers.port))
        sock.listen()  # nobody holds the port any more


# One process, the default executor: a model that was cheap for many calls, then hangs.


@pytest.fixture
def one_worker(serve: Any, make_model: Any, markers: Path) -> Any:
    return serve(
        make_model(FAULTY, "faulty"),
        "--request-timeout",
        "3",
        "--shutdown-timeout",
        "1",
        "--parameters",
        json.dumps({"markers": str(markers)}),
    )


def test_health_answers_while_a_model_cheap_so_far_hangs(one_worker: Any, markers: Path, wait_for: Any) -> None:
    assert failures(one_worker, 60) == 0  # cheap calls, enough for the executor to judge them
    in_background(lambda: seldon(one_worker, 2))
    wait_for(lambda: (markers / "hanging").exists(), "the model to hang")
    health_answers(one_worker)


def test_a_request_over_the_request_timeout_gets_504_in_each_protocol(one_worker: Any) -> None:
    answer = seldon(one_worker, 2)
    assert answer.status_code == 504
    assert answer.json()["status"]["code"] == 504
    assert "--request-timeout" in answer.json()["status"]["info"]
    answer = v2(one_worker, 2)
    assert answer.status_code == 504
    assert "no answer within 3 s" in answer.json()["error"]
    with grpc.insecure_channel(one_worker.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        tensor = pb.ModelInferRequest.InferInputTensor(name="x", datatype="INT64", shape=[1, 1])
        tensor.contents.int64_contents.append(2)
        with pytest.raises(grpc.RpcError) as raised:
            stub.ModelInfer(pb.ModelInferRequest(model_name="faulty", inputs=[tensor]), timeout=60)
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert one_worker.stderr.count("no answer within 3 s (--request-timeout)") == 3
    assert failures(one_worker) == 0


def test_sigterm_answers_a_request_still_running_503_at_the_shutdown_timeout(
    serve: Any, make_model: Any, markers: Path, wait_for: Any
) -> None:
    server = serve(
        make_model(FAULTY, "faulty"), "--shutdown-timeout", "1", "--parameters", json.dumps({"markers": str(markers)})
    )
    answers: list[requests.Response] = []
    thread = in_background(lambda: answers.append(v2(server, 2)))
    wait_for(lambda: (markers / "hanging").exists(), "the model to hang")
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 0
    thread.join(timeout=60)
    assert answers[0].status_code == 503
    assert "shutting down" in answers[0].json()["error"]


def test_a_graph_node_over_its_timeout_seconds_gets_504_and_is_logged(
    serve: Any, tmp_path: Path, markers: Path
) -> None:
    (tmp_path / "faulty.py").write_text(textwrap.dedent(FAULTY))
    markers_parameter = f"{{name: markers, value: '{markers}', type: STRING}}"
    (tmp_path / "deploy.yaml").write_text(
        textwrap.dedent(
            f"""
            apiVersion: daneel.dev/v1alpha1
            kind: ModelDeployment
            metadata: {{name: timed}}
            spec:
              predictors:
              - name: main
                graph:
                  name: slow
                  implementation: faulty:Faulty
                  timeoutSeconds: 1
                  parameters: [{markers_parameter}]
            """
        )
    )
    server = serve(tmp_path / "deploy.yaml", "--shutdown-timeout", "1", cwd=tmp_path)
    answer = seldon(server, 2)
    assert answer.status_code == 504
    assert answer.json()["status"]["reason"] == "TIMEOUT"
    assert "slow: predict took longer than 1" in answer.json()["status"]["info"]
    assert "slow: predict took longer than 1" in server.stderr
    health_answers(server)
    assert failures(server) == 0
