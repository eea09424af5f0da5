"""Seldon's protocol over HTTP against real `daneel serve` processes."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

ECHO = """
    import json

    import numpy as np


    class Echo:
        class_names = ["left", "right"]

        def __init__(self, feedback_log=""):
            self.feedback_log = feedback_log
            self.feedbacks = 0
            self.seen_names = []
            self.seen_meta = {}

        def predict(self, X, names, meta):
            self.seen_names = list(names)
            self.seen_meta = dict(meta)
            if isinstance(X, str):
                return X.upper()
            if isinstance(X, bytes):
                return X[::-1]
            if isinstance(X, (dict, list)):
                return {"received": X}
            return X * 2

        def transform_input(self, X, names, meta):
            return X + 1

        def transform_output(self, X, names, meta):
            return X - 1

        def route(self, X, names):
            return 1 if X[0][0] > 0 else 0

        def aggregate(self, features_list, feature_names_list):
            return np.sum([np.asarray(f) for f in features_list], axis=0)

        def send_feedback(self, features, feature_names, reward, truth, routing=None):
            self.feedbacks += 1
            record = {"features": np.asarray(features).tolist(), "reward": reward, "truth": np.asarray(truth).tolist()}
            with open(self.feedback_log, "a") as log:
                log.write(json.dumps(record) + "\\n")

        def tags(self):
            return {"model": "echo", "seen_names": self.seen_names, "feedbacks": self.feedbacks}

        def metrics(self):
            return [{"type": "COUNTER", "key": "echo_calls", "value": 1}]

        def health_status(self):
            return {"healthy": True, "feedbacks": self.feedbacks}

        def init_metadata(self):
            return {
                "name": "echo-model",
                "versions": ["v7"],
                "platform": "tests",
                "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 2]}],
                "outputs": [{"name": "y", "datatype": "FP64", "shape": [-1, 2]}],
                "custom": {"author": "the tests"},
            }
"""

ASYNC = """
    import asyncio


    class Async:
        async def load(self):
            await asyncio.sleep(0)
            self.offset = 0.5

        async def predict(self, X, names, meta):
            await asyncio.sleep(0)
            return X + self.offset

        async def tags(self):
            return {"async": True}
"""

RAW = """
    class Raw:
        def predict_raw(self, message):
            return {"jsonData": {"raw": message}, "meta": {"tags": {"raw": True}}}
"""


@pytest.fixture(scope="module")
def feedback_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feedback") / "feedback.jsonl"


@pytest.fixture(scope="module")
def echo(module_serve: Any, make_model: Any, feedback_log: Path) -> str:
    folder = make_model(ECHO, "echo")
    return str(module_serve(folder, "--parameters", json.dumps({"feedback_log": str(feedback_log)})).url)


@pytest.fixture(scope="module")
def iris_url(module_serve: Any, iris: Any) -> str:
    return str(module_serve(iris.path).url)


def post(url: str, body: Any) -> dict[str, Any]:
    response = requests.post(url, json=body, timeout=30)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# /api/v1.0/predictions: each payload form comes back in the same form


def test_ndarray_predictions_match_the_sklearn_model(iris_url: str, iris: Any) -> None:
    body = post(iris_url + "/api/v1.0/predictions", {"data": {"ndarray": iris.X.tolist()}})
    np.testing.assert_allclose(body["data"]["ndarray"], iris.model.predict_proba(iris.X))
    assert body["data"]["names"] == ["t:0", "t:1", "t:2"]
    assert "tensor" not in body["data"]


def test_tensor_request_gets_a_tensor_response(iris_url: str, iris: Any) -> None:
    rows = iris.X[:2]
    body = post(
        iris_url + "/api/v1.0/predictions", {"data": {"tensor": {"shape": [2, 4], "values": rows.ravel().tolist()}}}
    )
    tensor = body["data"]["tensor"]
    assert tensor["shape"] == [2, 3]
    np.testing.assert_allclose(np.reshape(tensor["values"], (2, 3)), iris.model.predict_proba(rows))
    assert "ndarray" not in body["data"]


def test_names_reach_the_model_and_class_names_name_the_output(echo: str) -> None:
    request = {"data": {"names": ["a", "b"], "ndarray": [[1.0, 2.0], [3.0, 4.0]]}}
    body = post(echo + "/api/v1.0/predictions", request)
    assert body["data"]["ndarray"] == [[2.0, 4.0], [6.0, 8.0]]
    assert body["data"]["names"] == ["left", "right"]
    assert body["meta"]["tags"]["seen_names"] == ["a", "b"]


def test_str_data_comes_back_as_str_data(echo: str) -> None:
    body = post(echo + "/api/v1.0/predictions", {"strData": "hello daneel"})
    assert body["strData"] == "HELLO DANEEL"
    assert "data" not in body


def test_json_data_comes_back_as_json_data(echo: str) -> None:
    payload = {"text": "hi", "values": [1, 2, 3], "nested": {"ok": True}}
    body = post(echo + "/api/v1.0/predictions", {"jsonData": payload})
    assert body["jsonData"] == {"received": payload}


def test_bin_data_comes_back_as_bin_data(echo: str) -> None:
    raw = bytes([0, 1, 2, 250, 255])
    body = post(echo + "/api/v1.0/predictions", {"binData": base64.b64encode(raw).decode()})
    assert base64.b64decode(body["binData"]) == raw[::-1]


def test_meta_carries_puid_tags_and_metrics(echo: str) -> None:
    body = post(echo + "/api/v1.0/predictions", {"data": {"ndarray": [[1.0, 1.0]]}})
    meta = body["meta"]
    assert isinstance(meta["puid"], str) and len(meta["puid"]) >= 16
    assert meta["tags"]["model"] == "echo"
    assert {"type": "COUNTER", "key": "echo_calls", "value": 1} in meta["metrics"]


def test_puid_is_new_for_each_request(echo: str) -> None:
    first = post(echo + "/api/v1.0/predictions", {"data": {"ndarray": [[1.0, 1.0]]}})
    second = post(echo + "/api/v1.0/predictions", {"data": {"ndarray": [[1.0, 1.0]]}})
    assert first["meta"]["puid"] != second["meta"]["puid"]


def test_sent_puid_and_request_tags_are_kept(echo: str) -> None:
    request = {"meta": {"puid": "my-request-42", "tags": {"caller": "tests"}}, "data": {"ndarray": [[1.0, 1.0]]}}
    body = post(echo + "/api/v1.0/predictions", request)
    assert body["meta"]["puid"] == "my-request-42"
    assert body["meta"]["tags"]["caller"] == "tests"
    assert body["meta"]["tags"]["model"] == "echo"


# feedback


def _feedback_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("path", ["/api/v1.0/feedback", "/send-feedback"])
def test_feedback_calls_send_feedback(echo: str, feedback_log: Path, path: str) -> None:
    before = len(_feedback_lines(feedback_log))
    feedback = {
        "request": {"data": {"ndarray": [[1.5, 2.5]]}},
        "response": {"data": {"ndarray": [[3.0, 5.0]]}},
        "reward": 0.75,
        "truth": {"data": {"ndarray": [[1.0, 0.0]]}},
    }
    body = post(echo + path, feedback)
    lines = _feedback_lines(feedback_log)
    assert len(lines) == before + 1
    assert lines[-1] == {"features": [[1.5, 2.5]], "reward": 0.75, "truth": [[1.0, 0.0]]}
    assert body["meta"]["tags"]["feedbacks"] == before + 1


# model-side paths, with a JSON body or the form field `json`

MESSAGE = {"data": {"ndarray": [[1.0, 2.0]]}}
MODEL_SIDE = [
    ("/predict", MESSAGE, [[2.0, 4.0]]),
    ("/transform-input", MESSAGE, [[2.0, 3.0]]),
    ("/transform-output", MESSAGE, [[0.0, 1.0]]),
    ("/route", MESSAGE, [[1]]),
    ("/aggregate", {"seldonMessages": [MESSAGE, {"data": {"ndarray": [[10.0, 20.0]]}}]}, [[11.0, 22.0]]),
]


def _send(url: str, body: Any, encoding: str) -> requests.Response:
    text = json.dumps(body)
    if encoding == "json":
        return requests.post(url, data=text, headers={"Content-Type": "application/json"}, timeout=30)
    if encoding == "urlencoded":
        return requests.post(url, data={"json": text}, timeout=30)
    if encoding == "multipart":
        return requests.post(url, files={"json": (None, text)}, timeout=30)
    return requests.get(url, params={"json": text}, timeout=30)


@pytest.mark.parametrize("encoding", ["json", "urlencoded", "multipart", "query"])
@pytest.mark.parametrize(("path", "body", "expected"), MODEL_SIDE, ids=[p for p, _, _ in MODEL_SIDE])
def test_model_side_paths(echo: str, path: str, body: Any, expected: Any, encoding: str) -> None:
    response = _send(echo + path, body, encoding)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["ndarray"] == expected


def test_urlencoded_form_carries_any_message_kind(echo: str) -> None:
    response = _send(echo + "/predict", {"strData": "form"}, "urlencoded")
    assert response.status_code == 200, response.text
    assert response.json()["strData"] == "FORM"


def test_multipart_form_without_json_field_is_a_400_naming_it(echo: str) -> None:
    response = requests.post(echo + "/predict", files={"other": (None, "{}")}, timeout=30)
    assert response.status_code == 400
    assert "json" in response.json()["status"]["info"]


# gateway paths


@pytest.mark.parametrize("prefix", ["/seldon/default/iris", "/seldon/my-namespace/my-deployment"])
def test_gateway_paths_reach_the_same_endpoints(iris_url: str, iris: Any, prefix: str) -> None:
    body = post(iris_url + prefix + "/api/v1.0/predictions", {"data": {"ndarray": iris.X[:1].tolist()}})
    np.testing.assert_allclose(body["data"]["ndarray"], iris.model.predict_proba(iris.X[:1]))
    metadata = requests.get(iris_url + prefix + "/api/v1.0/metadata", timeout=30)
    assert metadata.status_code == 200
    assert metadata.json()["name"] == "iris"


# metadata and health


def test_metadata_comes_from_init_metadata(echo: str) -> None:
    response = requests.get(echo + "/api/v1.0/metadata", timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "echo-model"
    assert body["versions"] == ["v7"]
    assert body["platform"] == "tests"
    assert body["inputs"] == [{"name": "x", "datatype": "FP64", "shape": [-1, 2]}]
    assert body["custom"] == {"author": "the tests"}


def test_metadata_of_a_sklearn_model(iris_url: str) -> None:
    body = requests.get(iris_url + "/api/v1.0/metadata", timeout=30).json()
    assert body["name"] == "iris"
    assert body["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert body["outputs"] == [{"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}]


def test_health_ping(echo: str) -> None:
    response = requests.get(echo + "/health/ping", timeout=30)
    assert response.status_code == 200
    assert response.text == "pong"


def test_health_status_reports_health_status(echo: str) -> None:
    response = requests.get(echo + "/health/status", timeout=30)
    assert response.status_code == 200
    assert response.json()["jsonData"]["healthy"] is True


# Seldon's *_raw methods receive and return whole messages


def test_predict_raw_gets_the_whole_message(module_serve: Any, make_model: Any) -> None:
    url = module_serve(make_model(RAW, "raw")).url
    request = {"meta": {"puid": "p1"}, "strData": "untouched"}
    body = post(url + "/api/v1.0/predictions", request)
    assert body == {"jsonData": {"raw": request}, "meta": {"tags": {"raw": True}}}


def test_async_methods_are_awaited(module_serve: Any, make_model: Any) -> None:
    url = module_serve(make_model(ASYNC, "asynchronous")).url
    body = post(url + "/api/v1.0/predictions", {"data": {"ndarray": [[1.0, 2.0]]}})
    assert body["data"]["ndarray"] == [[1.5, 2.5]]
    assert body["meta"]["tags"]["async"] is True
