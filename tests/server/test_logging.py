"""What a real `daneel serve` writes to its log: a model's errors, JSON lines only, the access log."""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
import requests

from daneel.protocol import v2grpc
from daneel.protocol.proto import grpc_predict_v2_pb2 as pb
from daneel.protocol.proto import grpc_predict_v2_pb2_grpc as pb_grpc

from .components import FAILING, RAGGED

GRAPH_MODELS = """
    class Doubler:
        def transform_input(self, X, names=None, meta=None):
            return X * 2


    class Broken:
        def predict(self, X, names=None, meta=None):
            raise RuntimeError("the second node is broken")
"""

GRAPH = """
    apiVersion: daneel.dev/v1alpha1
    kind: ModelDeployment
    metadata: {name: pipeline}
    spec:
      predictors:
      - name: main
        graph:
          name: double
          implementation: models:Doubler
          type: TRANSFORMER
          children:
          - {name: broken, implementation: models:Broken}
"""

V2_BODY = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]}


def records(text: str) -> list[dict[str, Any]]:
    """The JSON objects among a server's output lines."""
    found = []
    for line in text.splitlines():
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


@pytest.fixture(scope="module")
def failing(module_serve: Any, make_model: Any) -> Any:
    return module_serve(make_model(FAILING, "failing"), "--log-format", "json")


@pytest.fixture(scope="module")
def stub(failing: Any) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(failing.grpc_target) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def errors_of(server: Any, request_id: str) -> list[dict[str, Any]]:
    return [r for r in records(server.stderr) if r.get("request_id") == request_id and r["level"] == "ERROR"]


def assert_logged_once(server: Any, request_id: str) -> None:
    """One ERROR line for the request, naming the model, with the traceback down to the user's raise."""
    [error] = errors_of(server, request_id)
    assert error["model"] == "failing"
    assert "the sensor column is missing" in error["message"]
    assert 'raise ValueError("the sensor column is missing")' in error["exception"]
    assert "in predict" in error["exception"]


def test_a_model_error_over_seldon_rest_is_logged_once(failing: Any) -> None:
    headers = {"X-Request-ID": "seldon-1"}
    body = {"data": {"ndarray": [[1.0]]}}
    response = requests.post(failing.url + "/api/v1.0/predictions", json=body, headers=headers, timeout=30)
    assert response.status_code == 500
    assert_logged_once(failing, "seldon-1")


def test_a_model_error_over_v2_rest_is_logged_once(failing: Any) -> None:
    headers = {"X-Request-ID": "v2-1"}
    response = requests.post(failing.url + "/v2/models/failing/infer", json=V2_BODY, headers=headers, timeout=30)
    assert response.status_code == 500
    assert_logged_once(failing, "v2-1")


def test_a_model_error_over_grpc_is_logged_once(failing: Any, stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    request = v2grpc.encode_request("failing", V2_BODY["inputs"], raw=False)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request, metadata=[("x-request-id", "grpc-1")], timeout=30)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert_logged_once(failing, "grpc-1")


@pytest.mark.parametrize(
    ("path", "body"), [("/v2/models/ragged/infer", V2_BODY), ("/api/v1.0/predictions", {"data": {"ndarray": [[1.0]]}})]
)
def test_a_result_that_cannot_be_encoded_is_logged_once(
    module_serve: Any, make_model: Any, path: str, body: dict[str, Any]
) -> None:
    server = module_serve(make_model(RAGGED, "ragged"), "--log-format", "json")
    response = requests.post(server.url + path, json=body, headers={"X-Request-ID": path}, timeout=30)
    assert response.status_code == 500
    [error] = errors_of(server, path)
    assert error["model"] == "ragged"
    assert "ragged returned a result that cannot be encoded" in error["message"]


def test_a_request_without_an_id_gets_one_back_that_its_error_log_names(failing: Any) -> None:
    response = requests.post(failing.url + "/v2/models/failing/infer", json=V2_BODY, timeout=30)
    assert response.status_code == 500
    made = response.headers["X-Request-ID"]
    assert re.fullmatch("[0-9a-f]{32}", made)
    assert_logged_once(failing, made)


def test_a_clients_request_id_comes_back_as_sent(failing: Any) -> None:
    headers = {"X-Request-ID": "abc"}
    response = requests.post(
        failing.url + "/api/v1.0/predictions", json={"data": {"ndarray": [[1.0]]}}, headers=headers, timeout=30
    )
    assert (response.status_code, response.headers["X-Request-ID"]) == (500, "abc")
    assert_logged_once(failing, "abc")


def test_a_grpc_call_without_an_id_gets_one_back_that_its_error_log_names(
    failing: Any, stub: pb_grpc.GRPCInferenceServiceStub
) -> None:
    request = v2grpc.encode_request("failing", V2_BODY["inputs"], raw=False)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request, timeout=30)
    made = dict(list(caught.value.trailing_metadata()))["x-request-id"]
    assert re.fullmatch("[0-9a-f]{32}", made)
    assert_logged_once(failing, made)


def test_bad_input_is_not_logged_as_an_error(failing: Any) -> None:
    headers = {"X-Request-ID": "bad-1"}
    response = requests.post(failing.url + "/v2/models/failing/infer", json={"inputs": 3}, headers=headers, timeout=30)
    assert response.status_code == 400
    assert errors_of(failing, "bad-1") == []


def test_a_failing_graph_node_is_logged_once_not_once_per_layer(serve: Any, tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(textwrap.dedent(GRAPH_MODELS))
    (tmp_path / "deploy.yaml").write_text(textwrap.dedent(GRAPH))
    server = serve(tmp_path / "deploy.yaml", "--log-format", "json", cwd=tmp_path)
    headers = {"X-Request-ID": "graph-1"}
    body = {"data": {"ndarray": [[1.0]]}}
    response = requests.post(server.url + "/api/v1.0/predictions", json=body, headers=headers, timeout=30)
    assert response.status_code == 500
    [error] = errors_of(server, "graph-1")
    assert error["model"] == "pipeline"
    assert "broken" in error["message"] and "the second node is broken" in error["message"]
    assert 'raise RuntimeError("the second node is broken")' in error["exception"]


TALKER = """
    import sys
    import warnings

    print("printed at import")
    warnings.warn("warned at import")


    class Talker:
        def __init__(self):
            print("printed at init\\nsecond line at init")

        def load(self):
            print("printed at load")
            print("written to stderr at load", file=sys.stderr)
            warnings.warn("warned at load")

        def predict(self, X, names=None, meta=None):
            print("printed in predict")
            warnings.warn("warned in predict")
            return X
"""


@pytest.fixture
def chatty(tmp_path: Path, iris: Any) -> Path:
    """A folder of two models: a class that prints and warns, and iris as if pickled by another scikit-learn."""
    import sklearn

    talker = tmp_path / "chatty" / "talker"
    talker.mkdir(parents=True)
    (talker / "model.py").write_text(textwrap.dedent(TALKER))
    old_iris = tmp_path / "chatty" / "old_iris"
    old_iris.mkdir()
    pickled = (iris.path / "model.joblib").read_bytes()
    version = sklearn.__version__.encode()
    assert pickled.count(version) == 1
    (old_iris / "model.joblib").write_bytes(pickled.replace(version, b"9" * len(version)))
    return tmp_path / "chatty"


def test_json_logs_hold_prints_and_warnings_of_every_worker_as_json_lines(serve: Any, chatty: Path) -> None:
    server = serve(chatty, "--log-format", "json", "--workers", "2")
    response = requests.post(server.url + "/v2/models/talker/infer", json=V2_BODY, timeout=30)
    assert response.status_code == 200, response.text
    server.stop()
    logged = records(server.stderr)
    assert len(logged) == len([line for line in server.stderr.splitlines() if line.strip()]), server.stderr
    messages = [r["message"] for r in logged]
    for text in ("printed at import", "printed at init", "second line at init", "written to stderr at load"):
        assert text in messages
    assert messages.count("printed at load") == 2  # one per worker
    [printed] = [r for r in logged if r["message"] == "printed in predict"]
    assert printed["model"] == "talker"
    warned = [r["message"] for r in logged if r["logger"] == "py.warnings"]
    for text in ("UserWarning: warned at import", "UserWarning: warned at load", "UserWarning: warned in predict"):
        assert any(text in message for message in warned), warned
    assert any("InconsistentVersionWarning" in message for message in warned), warned


def access_records(server: Any) -> list[dict[str, Any]]:
    return [r for r in records(server.stderr) if r["logger"] == "daneel.access"]


def access_of(server: Any, request_id: str) -> list[dict[str, Any]]:
    """The access records naming `request_id`. The line is written once the answer has gone, so it can
    trail the client's return by a moment: ask again for a while before taking none for an answer."""
    deadline = time.monotonic() + 10
    while True:
        found = [r for r in access_records(server) if r.get("request_id") == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_the_access_log_is_off_by_default(failing: Any) -> None:
    headers = {"X-Request-ID": "unlogged-1"}
    assert requests.get(failing.url + "/v2/health/ready", headers=headers, timeout=30).status_code == 200
    assert not [r for r in records(failing.stderr) if r.get("request_id") == "unlogged-1"]
    assert not [r for r in records(failing.stderr) if "access" in r["logger"]]


@pytest.fixture(scope="module")
def logged(module_serve: Any, make_model: Any) -> Any:
    return module_serve(make_model(FAILING, "failing"), "--log-format", "json", "--access-log")


def test_the_access_log_has_a_json_record_per_http_request(logged: Any) -> None:
    headers = {"X-Request-ID": "access-1"}
    assert (
        requests.post(logged.url + "/v2/models/failing/infer", json=V2_BODY, headers=headers, timeout=30).status_code
        == 500
    )
    assert requests.get(logged.url + "/nowhere", headers={"X-Request-ID": "access-2"}, timeout=30).status_code == 404
    [infer] = access_of(logged, "access-1")
    assert {k: infer[k] for k in ("level", "protocol", "method", "path", "status")} == {
        "level": "INFO",
        "protocol": "http",
        "method": "POST",
        "path": "/v2/models/failing/infer",
        "status": 500,
    }
    assert infer["duration_ms"] > 0
    assert infer["client"].startswith("127.0.0.1:")
    assert re.fullmatch(
        r'127\.0\.0\.1:\d+ - "POST /v2/models/failing/infer HTTP/1\.1" 500 [\d.]+ms access-1', infer["message"]
    )
    [missing] = access_of(logged, "access-2")
    assert (missing["path"], missing["status"]) == ("/nowhere", 404)


def test_the_access_log_names_the_request_id_daneel_made(logged: Any) -> None:
    response = requests.post(logged.url + "/v2/models/failing/infer", json=V2_BODY, timeout=30)
    made = response.headers["X-Request-ID"]
    [infer] = access_of(logged, made)
    assert (infer["path"], infer["status"]) == ("/v2/models/failing/infer", 500)
    assert infer["message"].endswith(f"ms {made}")
    assert errors_of(logged, made)


def test_the_access_log_has_a_record_per_grpc_call(logged: Any) -> None:
    request = v2grpc.encode_request("failing", V2_BODY["inputs"], raw=False)
    with grpc.insecure_channel(logged.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError):
            stub.ModelInfer(request, metadata=[("x-request-id", "access-3")], timeout=30)
        stub.ServerLive(pb.ServerLiveRequest(), metadata=[("x-request-id", "access-4")], timeout=30)
    [infer] = access_of(logged, "access-3")
    assert (infer["protocol"], infer["method"], infer["code"]) == (
        "grpc",
        "/inference.GRPCInferenceService/ModelInfer",
        "INTERNAL",
    )
    assert infer["duration_ms"] > 0
    [live] = access_of(logged, "access-4")
    assert (live["method"], live["code"]) == ("/inference.GRPCInferenceService/ServerLive", "OK")


def test_the_grpc_access_log_names_the_request_id_daneel_made(logged: Any) -> None:
    request = v2grpc.encode_request("failing", V2_BODY["inputs"], raw=False)
    with grpc.insecure_channel(logged.grpc_target) as channel, pytest.raises(grpc.RpcError) as caught:
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    made = dict(list(caught.value.trailing_metadata()))["x-request-id"]
    [infer] = access_of(logged, made)
    assert (infer["method"], infer["code"]) == ("/inference.GRPCInferenceService/ModelInfer", "INTERNAL")
