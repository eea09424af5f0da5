"""Triton's binary tensor data extension on /v2/models/{m}/infer, with Triton's HTTP client and by hand."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from tritonclient.utils import np_to_triton_dtype

from . import tensors

ECHO = """
    class Echo:
        seen = []

        def predict(self, X, names, meta):
            self.seen = sorted(meta.get("parameters", {}))
            return X

        def tags(self):
            return {"parameters": self.seen}
"""

ARRAYS = {
    name: tensors.ARRAYS[name]
    for name in ("BOOL", "UINT8", "UINT64", "INT8", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES")
}


@pytest.fixture(scope="module")
def echo(module_serve: Any, make_model: Any) -> Any:
    return module_serve(make_model(ECHO, "echo"))


@pytest.fixture(scope="module")
def client(echo: Any) -> Any:
    client = triton.InferenceServerClient(echo.url.removeprefix("http://"), network_timeout=120)
    yield client
    client.close()


def triton_input(name: str, array: np.ndarray, binary: bool = True) -> triton.InferInput:
    datatype = "BYTES" if array.dtype == object else np_to_triton_dtype(array.dtype)
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def test_the_extension_is_advertised(client: Any) -> None:
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]


@pytest.mark.parametrize("datatype", list(ARRAYS))
def test_every_datatype_round_trips_as_binary_data(client: Any, datatype: str) -> None:
    array = ARRAYS[datatype]
    output = triton.InferRequestedOutput("output-0", binary_data=True)
    result = client.infer("echo", [triton_input("x", array)], outputs=[output])
    described = result.get_output("output-0")
    assert described["datatype"] == datatype
    assert described["parameters"]["binary_data_size"] > 0
    echoed = result.as_numpy("output-0")
    assert echoed.dtype == array.dtype
    np.testing.assert_array_equal(echoed, array)


def test_a_20_megabyte_tensor_round_trips_in_binary(client: Any) -> None:
    array = np.random.default_rng(0).random((5_000, 1_000), dtype=np.float32)  # 20 MB
    result = client.infer("echo", [triton_input("x", array)])  # binary outputs by default
    np.testing.assert_array_equal(result.as_numpy("output-0"), array)


def test_iris_with_tritons_defaults(module_serve: Any, iris: Any) -> None:
    server = module_serve(iris.path)
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        result = client.infer("iris", [triton_input("x", iris.X)])
    finally:
        client.close()
    assert result.get_output("predict_proba")["parameters"]["binary_data_size"] == iris.X.shape[0] * 3 * 8
    np.testing.assert_allclose(result.as_numpy("predict_proba"), iris.model.predict_proba(iris.X))


def test_binary_input_with_a_json_output(client: Any) -> None:
    array = np.array([1.5, 2.5], dtype=np.float32)
    output = triton.InferRequestedOutput("output-0", binary_data=False)
    result = client.infer("echo", [triton_input("x", array)], outputs=[output])
    assert result.get_output("output-0")["data"] == [1.5, 2.5]


def test_json_inputs_with_binary_outputs(client: Any) -> None:
    array = np.array([[1, 2, 3]], dtype=np.int64)
    result = client.infer("echo", [triton_input("x", array, binary=False)], parameters={"mine": 1})
    np.testing.assert_array_equal(result.as_numpy("output-0"), array)
    # the extension's own request parameter (binary_data_output) is not the model's business
    assert result.get_response()["parameters"]["tags"]["parameters"] == ["mine"]


def post(url: str, header: dict[str, Any], blob: bytes, length: int | None = None) -> requests.Response:
    head = json.dumps(header).encode()
    size = len(head) if length is None else length
    headers = {"Inference-Header-Content-Length": str(size), "Content-Type": "application/octet-stream"}
    return requests.post(f"{url}/v2/models/echo/infer", data=head + blob, headers=headers, timeout=30)


def test_the_wire_format_by_hand(echo: Any) -> None:
    a = np.array([1.0, -2.0], dtype=np.float32)
    header = {
        "id": "bin-1",
        "inputs": [
            {"name": "a", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}},
            {"name": "b", "datatype": "INT32", "shape": [1], "data": [7]},
        ],
        "outputs": [{"name": "a", "parameters": {"binary_data": True}}, {"name": "b"}],
    }
    response = post(echo.url, header, a.tobytes())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers["inference-header-content-length"])
    body = json.loads(response.content[:length])
    assert body["id"] == "bin-1"
    first, second = body["outputs"]
    assert first == {"name": "a", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}}
    assert second["data"] == [7]
    assert response.content[length:] == a.tobytes()


def test_a_request_without_binary_outputs_gets_plain_json(echo: Any) -> None:
    header = {"inputs": [{"name": "a", "datatype": "INT64", "shape": [1], "parameters": {"binary_data_size": 8}}]}
    response = post(echo.url, header, np.array([5], dtype="<i8").tobytes())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert "inference-header-content-length" not in response.headers
    assert response.json()["outputs"][0]["data"] == [5]


@pytest.mark.parametrize(
    ("blob", "length", "message"),
    [
        (b"\x00" * 4, None, "inputs[0].parameters.binary_data_size: is 8 but only 4 bytes are left"),
        (b"\x00" * 12, None, "body: 4 bytes after the JSON header belong to no input's binary_data_size"),
        (b"\x00" * 8, 10**6, "Inference-Header-Content-Length: says 1000000 bytes"),
    ],
)
def test_bad_binary_requests_are_400_naming_the_field(echo: Any, blob: bytes, length: int | None, message: str) -> None:
    header = {"inputs": [{"name": "a", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}}]}
    response = post(echo.url, header, blob, length)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)
