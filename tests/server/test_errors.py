"""Errors over HTTP: each in its protocol's shape, naming the field; the server keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

FLAKY = """
    import numpy as np


    class Flaky:
        def predict(self, X, names, meta):
            if isinstance(X, np.ndarray) and (X < 0).any():
                raise ValueError(f"negative values are not allowed: got {X.min()}")
            if isinstance(X, str) and X == "unserializable":
                return object()
            return X
"""

MAX_BODY = 2048
SELDON = "/api/v1.0/predictions"
V2 = "/v2/models/flaky/infer"


@pytest.fixture(scope="module")
def url(module_serve: Any, make_model: Any) -> str:
    return str(module_serve(make_model(FLAKY, "flaky"), "--max-body-bytes", str(MAX_BODY)).url)


@pytest.fixture(scope="module")
def iris_url(module_serve: Any, iris: Any) -> str:
    return str(module_serve(iris.path).url)


def seldon_error(response: requests.Response, code: int) -> dict[str, Any]:
    """The Seldon status object of an error response, checked for its shape."""
    assert response.status_code == code, response.text
    body = response.json()
    assert set(body) == {"status"}
    status: dict[str, Any] = body["status"]
    assert status["code"] == code
    assert status["status"] == "FAILURE"
    assert isinstance(status["reason"], str) and status["reason"]
    assert isinstance(status["info"], str)
    return status


def v2_error(response: requests.Response, code: int) -> str:
    """The message of a V2 error response, checked for its shape."""
    assert response.status_code == code, response.text
    body = response.json()
    assert set(body) == {"error"}
    message: str = body["error"]
    return message


def tensor(**overrides: Any) -> dict[str, Any]:
    return {"name": "x", "datatype": "FP32", "shape": [2], "data": [1.0, 2.0], **overrides}


# 400: bad input names the field and what was expected


def test_seldon_invalid_json(url: str) -> None:
    response = requests.post(url + SELDON, data=b'{"data": {"ndarray": [[1, 2]', timeout=30)
    status = seldon_error(response, 400)
    assert status["reason"] == "MICROSERVICE_BAD_DATA"
    assert "body" in status["info"] and "JSON" in status["info"]


def test_v2_invalid_json(url: str) -> None:
    message = v2_error(requests.post(url + V2, data=b'{"inputs": [', timeout=30), 400)
    assert "body" in message and "JSON" in message


@pytest.mark.parametrize("body", [b"", b"   "])
def test_empty_body(url: str, body: bytes) -> None:
    assert "body" in seldon_error(requests.post(url + SELDON, data=body, timeout=30), 400)["info"]
    assert "body" in v2_error(requests.post(url + V2, data=body, timeout=30), 400)


SELDON_BAD = [
    ({"meta": {}}, "data"),
    ([1, 2, 3], "body"),
    ({"data": {"names": ["a"]}}, "ndarray"),
    ({"data": {"ndarray": [[1, 2], [3]]}}, "data.ndarray"),
    ({"data": {"ndarray": 5}}, "data.ndarray"),
    ({"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3]}}}, "data.tensor.values"),
    ({"data": {"tensor": {"shape": [-1], "values": [1]}}}, "data.tensor.shape"),
    ({"data": {"tensor": {"shape": [1], "values": ["a"]}}}, "data.tensor.values"),
    ({"data": {"names": "a", "ndarray": [[1]]}}, "data.names"),
    ({"binData": "this is not base64!"}, "binData"),
    ({"strData": 12}, "strData"),
    ({"meta": "puid", "strData": "x"}, "meta"),
    ({"meta": {"tags": "urgent"}, "strData": "x"}, "meta.tags"),
]


@pytest.mark.parametrize(("body", "field"), SELDON_BAD, ids=[field for _, field in SELDON_BAD])
def test_seldon_bad_message_is_a_400_naming_the_field(url: str, body: Any, field: str) -> None:
    status = seldon_error(requests.post(url + SELDON, json=body, timeout=30), 400)
    assert field in status["info"]
    assert status["reason"] == "MICROSERVICE_BAD_DATA"


def test_seldon_bad_feedback_names_the_field(url: str) -> None:
    response = requests.post(url + "/api/v1.0/feedback", json={"reward": "high"}, timeout=30)
    assert "reward" in seldon_error(response, 400)["info"]


def test_seldon_aggregate_without_messages_names_the_field(url: str) -> None:
    response = requests.post(url + "/aggregate", json={"messages": []}, timeout=30)
    assert "seldonMessages" in seldon_error(response, 400)["info"]


V2_BAD = [
    ([{"name": "x"}], "body", "JSON object"),
    ({}, "inputs", "inputs"),
    ({"inputs": []}, "inputs", "non-empty"),
    ({"inputs": [tensor(data=None)]}, "inputs[0].data", "missing"),
    ({"inputs": [{k: v for k, v in tensor().items() if k != "data"}]}, "inputs[0].data", "missing"),
    ({"inputs": [tensor(name="")]}, "inputs[0].name", "string"),
    ({"inputs": [tensor(shape=[-2])]}, "inputs[0].shape", "non-negative"),
    ({"inputs": [tensor(shape="2")]}, "inputs[0].shape", "list"),
    ({"inputs": [tensor(shape=[2, 2])]}, "inputs[0].data", "shape [2, 2]"),
    ({"inputs": [tensor(datatype="FP128")]}, "inputs[0].datatype", "FP128"),
    ({"inputs": [tensor(data=["a", "b"])]}, "inputs[0].data", "numbers"),
    ({"inputs": [tensor(datatype="BYTES", shape=[1], data=[1])]}, "inputs[0].data", "strings"),
    ({"inputs": [tensor(datatype="INT8", shape=[1], data=[300])]}, "inputs[0].data", "INT8"),
    ({"inputs": [tensor(datatype="INT32", shape=[1], data=[1.5])]}, "inputs[0].data", "integers"),
    ({"inputs": [tensor(datatype="BOOL", shape=[1], data=["false"])]}, "inputs[0].data", "BOOL"),
    (
        {"inputs": [tensor(datatype="BYTES", data=["aGk=", "not base64!"], parameters={"content_type": "base64"})]},
        "inputs[0].data[1]",
        "base64",
    ),
    ({"inputs": [tensor(parameters={"content_type": "xml"})]}, "inputs[0].parameters.content_type", "xml"),
    ({"inputs": [tensor(parameters={"content_type": "str"})]}, "inputs[0].parameters.content_type", "BYTES"),
    ({"inputs": [tensor()], "parameters": {"content_type": "xml"}}, "parameters.content_type", "xml"),
    ({"inputs": [tensor(parameters=[])]}, "inputs[0].parameters", "object"),
    ({"inputs": [tensor()], "id": 7}, "id", "string"),
    ({"inputs": [tensor(), tensor(data=[3.0, 4.0])]}, "inputs[1].name", "duplicate"),
    ({"inputs": [tensor()], "outputs": [{"nom": "y"}]}, "outputs[0].name", "string"),
]


@pytest.mark.parametrize(("body", "field", "expected"), V2_BAD, ids=[f"{f}-{e}" for _, f, e in V2_BAD])
def test_v2_bad_request_is_a_400_naming_the_field(url: str, body: Any, field: str, expected: str) -> None:
    message = v2_error(requests.post(url + V2, json=body, timeout=30), 400)
    assert message.startswith(field + ":"), message
    assert expected in message


def test_sklearn_model_names_the_expected_number_of_features(iris_url: str) -> None:
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 3], "data": [1, 2, 3]}]}
    message = v2_error(requests.post(iris_url + "/v2/models/iris/infer", json=body, timeout=30), 400)
    assert "4 features" in message
    status = seldon_error(requests.post(iris_url + SELDON, json={"data": {"ndarray": [[1, 2, 3]]}}, timeout=30), 400)
    assert "4 features" in status["info"]


# 404


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v2/models/nope"), ("GET", "/v2/models/nope/ready"), ("POST", "/v2/models/nope/infer")],
)
def test_unknown_model_is_a_404(url: str, method: str, path: str) -> None:
    response = requests.request(method, url + path, json={"inputs": [tensor()]}, timeout=30)
    message = v2_error(response, 404)
    assert "nope" in message
    assert "flaky" in message


def test_unknown_paths_are_404_in_each_protocols_shape(url: str) -> None:
    assert "/api/v9/predictions" in seldon_error(requests.post(url + "/api/v9/predictions", timeout=30), 404)["info"]
    assert "/v2/nothing" in v2_error(requests.get(url + "/v2/nothing", timeout=30), 404)


# 500: a model that raises; the server carries on


def test_seldon_model_error_carries_the_message_and_the_server_keeps_serving(url: str) -> None:
    response = requests.post(url + SELDON, json={"data": {"ndarray": [[1.0, -3.0]]}}, timeout=30)
    status = seldon_error(response, 500)
    assert "negative values are not allowed: got -3.0" in status["info"]
    assert "ValueError" in status["info"]
    ok = requests.post(url + SELDON, json={"data": {"ndarray": [[1.0, 3.0]]}}, timeout=30)
    assert ok.status_code == 200
    assert ok.json()["data"]["ndarray"] == [[1.0, 3.0]]


def test_v2_model_error_carries_the_message_and_the_server_keeps_serving(url: str) -> None:
    message = v2_error(requests.post(url + V2, json={"inputs": [tensor(data=[1, -5])]}, timeout=30), 500)
    assert "negative values are not allowed: got -5.0" in message
    ok = requests.post(url + V2, json={"inputs": [tensor()]}, timeout=30)
    assert ok.status_code == 200
    assert ok.json()["outputs"][0]["data"] == [1.0, 2.0]


def test_an_unserializable_result_is_a_500_not_a_crash(url: str) -> None:
    status = seldon_error(requests.post(url + SELDON, json={"strData": "unserializable"}, timeout=30), 500)
    assert "object" in status["info"]
    assert requests.post(url + SELDON, json={"strData": "fine"}, timeout=30).json()["strData"] == "fine"


# 413


def big_seldon_body() -> dict[str, Any]:
    return {"data": {"ndarray": [[float(i) for i in range(MAX_BODY // 4)]]}}


def test_seldon_body_over_the_limit_is_a_413(url: str) -> None:
    status = seldon_error(requests.post(url + SELDON, json=big_seldon_body(), timeout=30), 413)
    assert str(MAX_BODY) in status["info"]
    assert requests.post(url + SELDON, json={"strData": "small"}, timeout=30).status_code == 200


def test_v2_body_over_the_limit_is_a_413(url: str) -> None:
    body = {"inputs": [tensor(shape=[MAX_BODY], data=[0.5] * MAX_BODY)]}
    assert str(MAX_BODY) in v2_error(requests.post(url + V2, json=body, timeout=30), 413)
    assert requests.post(url + V2, json={"inputs": [tensor()]}, timeout=30).status_code == 200


def test_chunked_body_over_the_limit_is_a_413(url: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"strData": "'
        for _ in range(8):
            yield b"x" * (MAX_BODY // 4)
        yield b'"}'

    response = requests.post(url + SELDON, data=chunks(), timeout=30)
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    seldon_error(response, 413)


def test_body_just_under_the_limit_is_served(url: str) -> None:
    text = "y" * (MAX_BODY - len('{"strData": ""}'))
    response = requests.post(url + SELDON, data=f'{{"strData": "{text}"}}'.encode(), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["strData"] == text


# 405


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", V2, "POST"), ("POST", "/v2/health/ready", "GET"), ("DELETE", "/v2/models/flaky", "GET")],
)
def test_wrong_method_on_a_v2_path_is_a_405(url: str, method: str, path: str, allowed: str) -> None:
    response = requests.request(method, url + path, timeout=30)
    message = v2_error(response, 405)
    assert method in message and allowed in message
    assert response.headers["Allow"] == allowed


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", SELDON, "POST"), ("PUT", "/predict", "POST, GET"), ("POST", "/health/ping", "GET")],
)
def test_wrong_method_on_a_seldon_path_is_a_405(url: str, method: str, path: str, allowed: str) -> None:
    response = requests.request(method, url + path, timeout=30)
    status = seldon_error(response, 405)
    assert method in status["info"] and allowed in status["info"]
    assert response.headers["Allow"] == allowed
