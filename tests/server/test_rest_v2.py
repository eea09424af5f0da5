"""The Open Inference Protocol (V2) over HTTP, with plain requests and with Triton's client."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import numpy as np
import pytest
import requests
import tritonclient.http as triton

ECHO = """
    import numpy as np


    def describe(X):
        if isinstance(X, np.ndarray):
            return f"ndarray:{X.dtype}:{list(X.shape)}"
        if isinstance(X, list):
            return "list:" + ",".join(sorted({type(item).__name__ for item in X}))
        if isinstance(X, dict):
            return "dict:" + ",".join(X)
        return type(X).__name__ + ":" + ",".join(map(str, getattr(X, "columns", [])))


    class Echo:
        def __init__(self):
            self.last = ""

        def predict(self, X, names, meta):
            self.last = describe(X)
            return X

        def tags(self):
            return {"input": self.last}

        def init_metadata(self):
            return {
                "versions": ["1", "2"],
                "platform": "echo",
                "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1]}],
                "outputs": [{"name": "x", "datatype": "FP32", "shape": [-1]}],
            }
"""

DATATYPES = [
    ("BOOL", [True, False, True, True]),
    ("UINT8", [0, 1, 254, 255]),
    ("UINT16", [0, 1, 65534, 65535]),
    ("UINT32", [0, 1, 2**32 - 2, 2**32 - 1]),
    ("UINT64", [0, 1, 2**64 - 2, 2**64 - 1]),
    ("INT8", [-128, -1, 0, 127]),
    ("INT16", [-(2**15), -1, 0, 2**15 - 1]),
    ("INT32", [-(2**31), -1, 0, 2**31 - 1]),
    ("INT64", [-(2**63), -1, 0, 2**63 - 1]),
    ("FP16", [-2.5, 0.0, 0.125, 1024.0]),
    ("FP32", [-1.5, 0.0, 0.25, 3.0e38]),
    ("FP64", [-1.0e300, 0.1, 2.5e-300, 1.0e300]),
    ("BYTES", ["hello", "wörld", "", "a b c"]),
]


@pytest.fixture(scope="module")
def echo(module_serve: Any, make_model: Any) -> str:
    return str(module_serve(make_model(ECHO, "echo")).url)


@pytest.fixture(scope="module")
def iris_url(module_serve: Any, iris: Any) -> str:
    return str(module_serve(iris.path).url)


def infer(url: str, body: Any, model: str = "echo") -> dict[str, Any]:
    response = requests.post(f"{url}/v2/models/{model}/infer", json=body, timeout=30)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def tensor(name: str, datatype: str, shape: list[int], data: Any, **parameters: Any) -> dict[str, Any]:
    found = {"name": name, "datatype": datatype, "shape": shape, "data": data}
    if parameters:
        found["parameters"] = parameters
    return found


# server and model endpoints


def test_server_metadata(echo: str) -> None:
    body = requests.get(echo + "/v2", timeout=30).json()
    assert body["name"] == "daneel"
    assert isinstance(body["version"], str) and body["version"]
    assert isinstance(body["extensions"], list)


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready"])
def test_server_health(echo: str, path: str) -> None:
    response = requests.get(echo + path, timeout=30)
    assert response.status_code == 200
    assert response.json() in ({"live": True}, {"ready": True})


def test_model_metadata_of_a_python_class(echo: str) -> None:
    response = requests.get(echo + "/v2/models/echo", timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "echo"
    assert body["platform"] == "echo"
    assert body["versions"] == ["1", "2"]
    assert body["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1]}]


def test_model_metadata_of_a_sklearn_model(iris_url: str) -> None:
    body = requests.get(iris_url + "/v2/models/iris", timeout=30).json()
    assert body["name"] == "iris"
    assert body["platform"] == "sklearn"
    assert body["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert body["outputs"] == [{"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}]


@pytest.mark.parametrize("path", ["/v2/models/echo/ready", "/v2/models/echo/versions/2/ready"])
def test_model_ready(echo: str, path: str) -> None:
    response = requests.get(echo + path, timeout=30)
    assert response.status_code == 200
    assert response.json()["ready"] is True


def test_versioned_metadata_and_infer(echo: str) -> None:
    assert requests.get(echo + "/v2/models/echo/versions/1", timeout=30).json()["name"] == "echo"
    response = requests.post(
        echo + "/v2/models/echo/versions/1/infer", json={"inputs": [tensor("x", "INT32", [1], [7])]}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == "1"
    assert response.json()["outputs"][0]["data"] == [7]


@pytest.mark.parametrize("path", ["/v2/models/echo/versions/9", "/v2/models/echo/versions/9/ready"])
def test_unknown_version_is_404(echo: str, path: str) -> None:
    response = requests.get(echo + path, timeout=30)
    assert response.status_code == 404
    assert "9" in response.json()["error"]


# inference


@pytest.mark.parametrize(("datatype", "data"), DATATYPES, ids=[d for d, _ in DATATYPES])
def test_every_datatype_round_trips(echo: str, datatype: str, data: list[Any]) -> None:
    body = infer(echo, {"inputs": [tensor("x", datatype, [2, 2], data)]})
    (output,) = body["outputs"]
    assert output["datatype"] == datatype
    assert output["shape"] == [2, 2]
    assert output["data"] == data


def test_nested_and_flat_data_are_the_same_tensor(echo: str) -> None:
    flat = infer(echo, {"inputs": [tensor("x", "FP32", [2, 3], [1, 2, 3, 4, 5, 6])]})
    nested = infer(echo, {"inputs": [tensor("x", "FP32", [2, 3], [[1, 2, 3], [4, 5, 6]])]})
    assert flat["outputs"] == nested["outputs"]
    assert nested["outputs"][0]["data"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert nested["parameters"]["tags"]["input"] == "ndarray:float32:[2, 3]"


def test_request_id_is_echoed(echo: str) -> None:
    body = infer(echo, {"id": "request-17", "inputs": [tensor("x", "INT64", [1], [1])]})
    assert body["id"] == "request-17"
    assert body["model_name"] == "echo"


def test_a_request_without_id_gets_one(echo: str) -> None:
    body = infer(echo, {"inputs": [tensor("x", "INT64", [1], [1])]})
    uuid.UUID(body["id"])


def test_several_inputs_reach_the_model_by_name_and_come_back_as_outputs(echo: str) -> None:
    inputs = [tensor("a", "INT32", [2], [1, 2]), tensor("b", "FP64", [1, 2], [0.5, 1.5])]
    body = infer(echo, {"inputs": inputs})
    assert {o["name"]: o["data"] for o in body["outputs"]} == {"a": [1, 2], "b": [0.5, 1.5]}
    assert body["parameters"]["tags"]["input"] == "dict:a,b"


def test_requested_outputs_are_honoured_in_their_order(echo: str) -> None:
    inputs = [tensor("a", "INT32", [1], [1]), tensor("b", "INT32", [1], [2]), tensor("c", "INT32", [1], [3])]
    body = infer(echo, {"inputs": inputs, "outputs": [{"name": "c"}, {"name": "a"}]})
    assert [o["name"] for o in body["outputs"]] == ["c", "a"]
    assert [o["data"] for o in body["outputs"]] == [[3], [1]]


def test_an_unknown_requested_output_is_a_400_naming_it(echo: str) -> None:
    body = {"inputs": [tensor("a", "INT32", [1], [1])], "outputs": [{"name": "nope"}]}
    response = requests.post(echo + "/v2/models/echo/infer", json=body, timeout=30)
    assert response.status_code == 400
    assert "outputs[0].name" in response.json()["error"]
    assert "nope" in response.json()["error"]


# content types


def test_content_type_np_gives_an_array(echo: str) -> None:
    body = infer(echo, {"inputs": [tensor("x", "INT16", [3], [1, 2, 3], content_type="np")]})
    assert body["parameters"]["tags"]["input"] == "ndarray:int16:[3]"
    assert body["outputs"][0]["data"] == [1, 2, 3]


def test_content_type_pd_gives_a_dataframe(echo: str) -> None:
    inputs = [tensor("age", "INT64", [3], [31, 42, 53]), tensor("city", "BYTES", [3], ["Oslo", "Rome", "Lima"])]
    body = infer(echo, {"parameters": {"content_type": "pd"}, "inputs": inputs})
    assert body["parameters"]["tags"]["input"] == "DataFrame:age,city"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["age"]["data"] == [31, 42, 53]
    assert outputs["city"]["data"] == ["Oslo", "Rome", "Lima"]


def test_content_type_str_gives_strings(echo: str) -> None:
    texts = ["one", "two", "ends in NUL\x00"]
    body = infer(echo, {"inputs": [tensor("x", "BYTES", [3], texts, content_type="str")]})
    assert body["parameters"]["tags"]["input"] == "list:str"
    (output,) = body["outputs"]
    assert output["datatype"] == "BYTES"
    assert output["data"] == texts


def test_content_type_base64_gives_bytes(echo: str) -> None:
    raw = [b"\x00\xff\x10binary", b"ends in NUL\x00", b"\x00\x00"]
    data = [base64.b64encode(item).decode() for item in raw]
    body = infer(echo, {"inputs": [tensor("x", "BYTES", [3], data, content_type="base64")]})
    assert body["parameters"]["tags"]["input"] == "list:bytes"
    (output,) = body["outputs"]
    assert output["datatype"] == "BYTES"
    assert output["parameters"]["content_type"] == "base64"
    assert [base64.b64decode(item) for item in output["data"]] == raw


# the sklearn model over raw HTTP


@pytest.mark.parametrize("name", ["input-0", "features", "anything at all"])
def test_a_single_input_model_accepts_any_input_name(iris_url: str, iris: Any, name: str) -> None:
    rows = iris.X[:5]
    body = infer(iris_url, {"inputs": [tensor(name, "FP64", [5, 4], rows.ravel().tolist())]}, model="iris")
    (output,) = body["outputs"]
    assert output["name"] == "predict_proba"
    assert output["datatype"] == "FP64"
    assert output["shape"] == [5, 3]
    np.testing.assert_allclose(np.reshape(output["data"], (5, 3)), iris.model.predict_proba(rows))


def test_sklearn_model_takes_pd_columns(iris_url: str, iris: Any) -> None:
    rows = iris.X[:6]
    columns = [tensor(f"feature-{i}", "FP64", [6], rows[:, i].tolist()) for i in range(4)]
    body = infer(iris_url, {"parameters": {"content_type": "pd"}, "inputs": columns}, model="iris")
    np.testing.assert_allclose(np.reshape(body["outputs"][0]["data"], (6, 3)), iris.model.predict_proba(rows))


def test_sklearn_model_takes_fp32_rows(iris_url: str, iris: Any) -> None:
    rows = iris.X[:3].astype(np.float32)
    body = infer(iris_url, {"inputs": [tensor("x", "FP32", [3, 4], rows.tolist())]}, model="iris")
    expected = iris.model.predict_proba(rows.astype(np.float64))
    np.testing.assert_allclose(np.reshape(body["outputs"][0]["data"], (3, 3)), expected, rtol=1e-6)


# Triton's HTTP client (JSON tensors; the binary extension is a later issue)


@pytest.fixture(scope="module")
def client(iris_url: str) -> Any:
    client = triton.InferenceServerClient(url=iris_url.removeprefix("http://"), network_timeout=30)
    yield client
    client.close()


def test_triton_client_sees_a_live_ready_server(client: Any) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert not client.is_model_ready("not-a-model")


def test_triton_client_reads_model_metadata(client: Any) -> None:
    metadata = client.get_model_metadata("iris")
    assert metadata["name"] == "iris"
    assert metadata["inputs"][0]["datatype"] == "FP64"
    assert metadata["inputs"][0]["shape"] == [-1, 4]
    assert metadata["outputs"][0]["name"] == "predict_proba"


def test_triton_client_infers_like_the_model(client: Any, iris: Any) -> None:
    X = iris.X
    inputs = [triton.InferInput("input-0", list(X.shape), "FP64")]
    inputs[0].set_data_from_numpy(X, binary_data=False)
    outputs = [triton.InferRequestedOutput("predict_proba", binary_data=False)]
    result = client.infer("iris", inputs, outputs=outputs, request_id="triton-1")
    np.testing.assert_allclose(result.as_numpy("predict_proba"), iris.model.predict_proba(X))
    assert result.get_response()["id"] == "triton-1"


def test_triton_client_round_trips_ints_and_bytes_through_a_python_class(echo: str) -> None:
    client = triton.InferenceServerClient(url=echo.removeprefix("http://"), network_timeout=30)
    try:
        ints = np.array([[1, -2], [3, -4]], dtype=np.int32)
        words = np.array([b"alpha", b"beta"], dtype=np.object_)
        inputs = [triton.InferInput("ints", [2, 2], "INT32"), triton.InferInput("words", [2], "BYTES")]
        inputs[0].set_data_from_numpy(ints, binary_data=False)
        inputs[1].set_data_from_numpy(words, binary_data=False)
        outputs = [triton.InferRequestedOutput(name, binary_data=False) for name in ("ints", "words")]
        result = client.infer("echo", inputs, outputs=outputs)
        np.testing.assert_array_equal(result.as_numpy("ints"), ints)
        assert result.as_numpy("words").tolist() == ["alpha", "beta"]
    finally:
        client.close()
