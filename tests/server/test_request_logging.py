"""Request logging end to end: real `daneel serve` processes, a real CloudEvents sink on loopback, real files.

The sink (tests/observe/sink.py) is an HTTP server in this process that records each event's headers and body.
"""

from __future__ import annotations

import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import requests
import tritonclient.grpc as grpcclient
from tests.observe.sink import Sink

REQUEST = "io.seldon.serving.inference.request"
RESPONSE = "io.seldon.serving.inference.response"
FEEDBACK = "io.seldon.serving.feedback"

MODELS = """
class Scale:
    def transform_input(self, X, names=None, meta=None):
        return [[10 * v for v in row] for row in X]


class AddOne:
    def predict(self, X, names=None, meta=None):
        return [[v + 1 for v in row] for row in X]

    def send_feedback(self, features, feature_names, reward, truth, routing=None):
        return []
"""


ADDER = """
class Adder:
    def predict(self, X, names=None, meta=None):
        return [[v + 1 for v in row] for row in X]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def seldon(url: str, rows: list[list[float]], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A Seldon prediction; asked again while a worker answers 503, as one may still load after another is ready."""
    body = {"data": {"ndarray": rows}}
    deadline = time.monotonic() + 60
    while True:
        response = requests.post(f"{url}/api/v1.0/predictions", json=body, headers=headers, timeout=30)
        if response.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def lines(path: Path) -> list[dict[str, Any]]:
    """The events written so far: whole lines only, as the server may be writing the next batch."""
    data = path.read_bytes() if path.exists() else b""
    return [orjson.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]


def wait_lines(path: Path, count: int, wait_for: Callable[..., None]) -> list[dict[str, Any]]:
    wait_for(lambda: len(lines(path)) >= count, f"{count} events in {path.name}")
    return lines(path)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, module_serve: Any) -> tuple[Any, Path]:
    """A deployment logged as a whole, and node by node: the transformer's input, the model's output."""
    folder = tmp_path_factory.mktemp("pipeline")
    (folder / "models.py").write_text(textwrap.dedent(MODELS))
    path = write(
        folder,
        "deploy.yaml",
        """
        apiVersion: daneel.dev/v1alpha1
        kind: ModelDeployment
        metadata: {name: pipeline, namespace: prod}
        spec:
          logger: {file: deployment.jsonl}
          predictors:
          - name: main
            graph:
              name: scale
              type: TRANSFORMER
              implementation: models:Scale
              logger: {file: nodes.jsonl, mode: request}
              children:
              - name: add
                implementation: models:AddOne
                logger: {file: nodes.jsonl, mode: response}
        """,
    )
    server = module_serve(path, cwd=folder, env={"DANEEL_STATE_DIR": str(folder / "state")})
    return server, folder


def events_of(path: Path, request_id: str, count: int, wait_for: Callable[..., None]) -> list[dict[str, Any]]:
    wait_for(lambda: sum(e["requestid"] == request_id for e in lines(path)) >= count, f"{count} events of {request_id}")
    return [event for event in lines(path) if event["requestid"] == request_id]


def test_a_deployment_logs_each_request_and_response_as_a_pair(pipeline: tuple[Any, Path], wait_for: Any) -> None:
    server, folder = pipeline
    answer = seldon(server.url, [[1.0, 2.0]])
    puid = answer["meta"]["puid"]
    request, response = events_of(folder / "deployment.jsonl", puid, 2, wait_for)
    assert (request["type"], response["type"]) == (REQUEST, RESPONSE)
    assert request["id"] != response["id"]
    assert request["data"] == {"data": {"ndarray": [[1.0, 2.0]]}, "meta": {"puid": puid}}
    assert response["data"] == answer
    for event in (request, response):
        assert event["specversion"] == "1.0" and event["source"] == "/daneel/pipeline"
        assert event["deployment"] == event["inferenceservicename"] == event["modelid"] == "pipeline"
        assert event["predictor"] == event["endpoint"] == "main"
        assert (event["namespace"], event["protocol"]) == ("prod", "seldon")
        assert "node" not in event


def test_a_node_logs_its_own_input_or_output(pipeline: tuple[Any, Path], wait_for: Any) -> None:
    server, folder = pipeline
    puid = seldon(server.url, [[1.0, 2.0]])["meta"]["puid"]
    events = events_of(folder / "nodes.jsonl", puid, 2, wait_for)
    by_node = {event["node"]: event for event in events}
    assert sorted(by_node) == ["add", "scale"]
    assert by_node["scale"]["type"] == REQUEST and by_node["scale"]["data"]["data"]["ndarray"] == [[1.0, 2.0]]
    assert by_node["add"]["type"] == RESPONSE and by_node["add"]["data"]["data"]["ndarray"] == [[11.0, 21.0]]
    assert by_node["add"]["source"] == "/daneel/pipeline/main/add" and by_node["add"]["modelid"] == "add"


def test_v2_requests_are_logged_as_v2_bodies_over_rest_and_grpc(pipeline: tuple[Any, Path], wait_for: Any) -> None:
    server, folder = pipeline
    body = {"id": "rest-1", "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
    answer = requests.post(f"{server.url}/v2/models/pipeline/infer", json=body, timeout=30).json()
    request, response = events_of(folder / "deployment.jsonl", "rest-1", 2, wait_for)
    assert request["data"] == body and request["protocol"] == "v2"
    assert response["data"] == answer and response["data"]["outputs"][0]["data"] == [11.0, 21.0]

    client = grpcclient.InferenceServerClient(server.grpc_target)
    tensor = grpcclient.InferInput("x", [1, 2], "FP64")
    tensor.set_data_from_numpy(np.array([[3.0, 4.0]]))
    client.infer("pipeline", [tensor], request_id="grpc-1")
    client.close()
    request, response = events_of(folder / "deployment.jsonl", "grpc-1", 2, wait_for)
    assert request["data"]["inputs"][0] == {"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [3.0, 4.0]}
    assert response["data"]["outputs"][0]["data"] == [31.0, 41.0]


def test_a_v2_request_without_an_id_gets_the_one_its_answer_carries(pipeline: tuple[Any, Path], wait_for: Any) -> None:
    server, folder = pipeline
    body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [5.0]}]}
    answer = requests.post(f"{server.url}/v2/models/pipeline/infer", json=body, timeout=30).json()
    request, response = events_of(folder / "deployment.jsonl", answer["id"], 2, wait_for)
    assert request["data"]["id"] == response["data"]["id"] == answer["id"]


def test_feedback_is_logged_with_the_id_of_the_request_it_rewards(pipeline: tuple[Any, Path], wait_for: Any) -> None:
    server, folder = pipeline
    answer = seldon(server.url, [[1.0]])
    feedback = {"request": {"data": {"ndarray": [[1.0]]}}, "response": answer, "reward": 1.0}
    assert requests.post(f"{server.url}/api/v1.0/feedback", json=feedback, timeout=30).status_code == 200
    events = events_of(folder / "deployment.jsonl", answer["meta"]["puid"], 3, wait_for)
    assert sorted(event["type"] for event in events) == sorted([REQUEST, RESPONSE, FEEDBACK])
    assert next(e for e in events if e["type"] == FEEDBACK)["data"]["reward"] == 1.0


def test_a_header_skips_logging_for_one_request(pipeline: tuple[Any, Path], wait_for: Any) -> None:
    server, folder = pipeline
    skipped = seldon(server.url, [[7.0]], {"X-Daneel-Skip-Logging": "true"})["meta"]["puid"]
    logged = seldon(server.url, [[8.0]])["meta"]["puid"]
    events_of(folder / "deployment.jsonl", logged, 2, wait_for)
    events_of(folder / "nodes.jsonl", logged, 2, wait_for)
    everything = lines(folder / "deployment.jsonl") + lines(folder / "nodes.jsonl")
    assert not [event for event in everything if event["requestid"] == skipped]


def test_sample_and_mode_decide_what_is_logged(serve: Any, tmp_path: Path) -> None:
    """Checked once the server has stopped: stopping sends (or journals) everything it queued."""
    (tmp_path / "models.py").write_text(textwrap.dedent(MODELS))
    path = write(
        tmp_path,
        "deploy.yaml",
        """
        apiVersion: daneel.dev/v1alpha1
        kind: ModelDeployment
        metadata: {name: sampled}
        spec:
          logger: {file: never.jsonl, sample: 0}
          predictors:
          - name: main
            graph:
              name: add
              implementation: models:AddOne
              logger: {file: responses.jsonl, mode: response, sample: 1}
        """,
    )
    server = serve(path, cwd=tmp_path, env={"DANEEL_STATE_DIR": str(tmp_path / "state")})
    puids = {seldon(server.url, [[float(i)]])["meta"]["puid"] for i in range(5)}
    server.stop()
    assert not (tmp_path / "never.jsonl").exists()
    events = lines(tmp_path / "responses.jsonl")
    assert [event["type"] for event in events] == [RESPONSE] * 5
    assert {event["requestid"] for event in events} == puids


def test_request_log_logs_a_model_folder_in_both_protocols(serve: Any, make_model: Any, tmp_path: Path) -> None:
    folder = make_model(ADDER, "adder")
    target = tmp_path / "requests.jsonl"
    server = serve(folder, "--request-log", str(target), env={"DANEEL_STATE_DIR": str(tmp_path)})
    answer = seldon(server.url, [[1.0]])
    body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [2.0]}]}
    v2_answer = requests.post(f"{server.url}/v2/models/adder/infer", json=body, timeout=30).json()
    server.stop()
    events = lines(target)
    assert [(e["type"], e["protocol"]) for e in events] == [
        (REQUEST, "seldon"), (RESPONSE, "seldon"), (REQUEST, "v2"), (RESPONSE, "v2"),
    ]  # fmt: skip
    assert events[1]["data"] == answer and events[1]["requestid"] == answer["meta"]["puid"]
    assert events[3]["data"] == v2_answer and events[3]["requestid"] == v2_answer["id"]
    assert all(e["deployment"] == e["modelid"] == "adder" and "predictor" not in e for e in events)


def test_events_reach_an_http_sink_and_none_are_lost_while_it_is_down(
    serve: Any, tmp_path: Path, wait_for: Any
) -> None:
    """The issue's test: N requests logged; the sink stops while requests go on; daneel restarts; the sink
    comes back; every request and response event arrives (at least once: duplicates are allowed)."""
    sink = Sink().start()
    (tmp_path / "models.py").write_text(textwrap.dedent(MODELS))
    path = write(
        tmp_path,
        "deploy.yaml",
        f"""
        apiVersion: daneel.dev/v1alpha1
        kind: ModelDeployment
        metadata: {{name: logged}}
        spec:
          logger: {{url: "{sink.url}"}}
          predictors:
          - name: main
            graph: {{name: add, implementation: models:AddOne}}
        """,
    )
    env = {"DANEEL_STATE_DIR": str(tmp_path / "state")}
    try:
        server = serve(path, "--workers", "2", cwd=tmp_path, env=env)
        first = [seldon(server.url, [[float(i)]])["meta"]["puid"] for i in range(20)]
        wait_for(lambda: len(sink.events()) >= 40, "40 events")
        received = sink.events()
        assert Counter(event.type for event in received) == {REQUEST: 20, RESPONSE: 20}
        pairs = {(e.headers["ce-requestid"], e.type) for e in received}
        assert pairs == {(puid, kind) for puid in first for kind in (REQUEST, RESPONSE)}
        event = received[0]
        assert event.headers["ce-specversion"] == "1.0" and event.headers["content-type"] == "application/json"
        assert event.headers["ce-deployment"] == event.headers["ce-inferenceservicename"] == "logged"
        assert event.headers["ce-predictor"] == event.headers["ce-endpoint"] == "main"
        assert event.headers["ce-time"].endswith("Z") and event.headers["ce-source"] == "/daneel/logged"

        second = [seldon(server.url, [[float(i)]])["meta"]["puid"] for i in range(10)]
        sink.stop()  # mid-stream: some of those events may still be queued or on their way
        second += [seldon(server.url, [[float(i)]])["meta"]["puid"] for i in range(10)]
        server.stop()  # what could not reach the sink is in the journal now
        assert list((tmp_path / "state" / "request-log").rglob("*.jsonl")), "nothing was journaled"
        restarted = serve(path, "--workers", "2", cwd=tmp_path, env=env)
        third = [seldon(restarted.url, [[float(i)]])["meta"]["puid"] for i in range(5)]
        sink.start()
        expected = {(puid, kind) for puid in first + second + third for kind in (REQUEST, RESPONSE)}
        wait_for(lambda: {(e.headers["ce-requestid"], e.type) for e in sink.events()} >= expected, "every event")
        wait_for(lambda: not list((tmp_path / "state" / "request-log").rglob("*.jsonl")), "an empty journal")
    finally:
        sink.stop()
