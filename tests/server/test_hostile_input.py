"""What a hostile or careless client sends, and what a faulty model does, over a real `daneel serve`.

Each request gets a 4xx in its protocol's shape that names what was wrong, or a 500 that says why;
none gets a 500 by accident, a silently wrong 200, or the server's inner details.
"""

from __future__ import annotations

import json
import re
from typing import Any

import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from daneel.protocol.proto import grpc_predict_v2_pb2 as pb
from daneel.protocol.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from daneel.protocol.shapes import MAX_DIMS
from daneel.server.http import MAX_FORM_FIELDS

# Multiplies its input by ten: 1e308 becomes inf. Asked to, it exits or is interrupted as a careless model might.
SCALER = """
    import sys

    import numpy as np


    class Scaler:
        def predict(self, X, names, meta):
            if isinstance(X, np.ndarray) and X.size and X.flat[0] == -1:
                sys.exit(3)
            if isinstance(X, np.ndarray) and X.size and X.flat[0] == -2:
                raise KeyboardInterrupt
            return X * 10
"""
V2 = "/v2/models/scaler/infer"
SELDON = "/api/v1.0/predictions"


@pytest.fixture(scope="module")
def server(module_serve: Any, make_model: Any) -> Any:
    return module_serve(make_model(SCALER, "scaler"))


def tensor(**overrides: Any) -> dict[str, Any]:
    return {"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [1.0, 2.0], **overrides}


def post(server: Any, path: str, body: Any, **options: Any) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(server.url + path, data=data, timeout=60, **options)


def v2_error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    message: str = body["error"]
    return message


def seldon_error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    info: str = response.json()["status"]["info"]
    return info


# Shapes: checked first and cheaply, whatever their length


LONG_SHAPE = [2] * 120_000


def test_a_long_v2_shape_is_a_400_over_json(server: Any) -> None:
    message = v2_error(post(server, V2, {"inputs": [tensor(shape=LONG_SHAPE)]}), 400)
    assert message == f"inputs[0].shape: has 120000 dimensions; at most {MAX_DIMS} are allowed"


def test_a_long_v2_shape_is_a_400_over_the_binary_extension(server: Any) -> None:
    header = json.dumps(
        {"inputs": [{**tensor(shape=LONG_SHAPE), "data": None, "parameters": {"binary_data_size": 16}}]}
    )
    head = header.replace(', "data": null', "").encode()
    response = post(server, V2, head + bytes(16), headers={"Inference-Header-Content-Length": str(len(head))})
    assert v2_error(response, 400).startswith("inputs[0].shape: has 120000 dimensions")


def test_a_long_v2_shape_is_invalid_argument_over_grpc(server: Any) -> None:
    request = pb.ModelInferRequest(model_name="scaler")
    request.inputs.add(name="x", datatype="FP64", shape=LONG_SHAPE)
    request.raw_input_contents.append(bytes(16))
    with grpc.insecure_channel(server.grpc_target) as channel, pytest.raises(grpc.RpcError) as caught:
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=60)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "has 120000 dimensions" in str(caught.value.details())


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ([1, True], "inputs[0].shape: dimension 1 must be a non-negative integer below 2**63, not true"),
        ([1] * 70, f"inputs[0].shape: has 70 dimensions; at most {MAX_DIMS} are allowed"),
        (
            [2**63, 1],
            "inputs[0].shape: dimension 0 must be a non-negative integer below 2**63, not 9223372036854775808",
        ),
        ([2**32, 2**32], "inputs[0].shape: holds 18446744073709551616 elements, more than 2**63 - 1"),
        ([-1, 2], "inputs[0].shape: dimension 0 must be a non-negative integer below 2**63, not -1"),
    ],
)
def test_odd_v2_shapes_are_400s_naming_the_input(server: Any, shape: list[Any], expected: str) -> None:
    assert v2_error(post(server, V2, {"inputs": [tensor(shape=shape)]}), 400) == expected


def test_data_is_counted_against_the_shape_before_it_is_built(server: Any) -> None:
    message = v2_error(post(server, V2, {"inputs": [tensor(shape=[2**20, 2**20], data=[[1.0, 2.0]])]}), 400)
    assert message == "inputs[0].data: has 2 elements but shape [1048576, 1048576] needs 1099511627776"


def test_a_huge_seldon_tensor_shape_is_a_400(server: Any) -> None:
    body = {"data": {"tensor": {"shape": [4294967296, 4294967296], "values": []}}}
    info = seldon_error(post(server, SELDON, body), 400)
    assert info == "data.tensor.shape: holds 18446744073709551616 elements, more than 2**63 - 1"
    body = {"data": {"tensor": {"shape": [2**31, 2**31], "values": [1.0]}}}
    info = seldon_error(post(server, SELDON, body), 400)
    assert info == "data.tensor.values: has 1 values but shape [2147483648, 2147483648] needs 4611686018427387904"
    info = seldon_error(post(server, SELDON, {"data": {"tensor": {"shape": LONG_SHAPE, "values": [1.0]}}}), 400)
    assert info == f"data.tensor.shape: has 120000 dimensions; at most {MAX_DIMS} are allowed"


def test_an_ndarray_row_holding_an_object_is_a_400(server: Any) -> None:
    info = seldon_error(post(server, SELDON, {"data": {"ndarray": [[{"a": 1}, 1, 1, 1]]}}), 400)
    assert info.startswith("data.ndarray: expected a rectangular nested list of numbers")


@pytest.mark.parametrize("length", [b"\xb2", "٣".encode(), b"1e3", b"-1"])  # ² in latin-1, ٣ in UTF-8
def test_a_header_length_that_is_not_ascii_digits_is_a_400(server: Any, length: bytes) -> None:
    headers = {"Inference-Header-Content-Length": length}
    message = v2_error(post(server, V2, json.dumps({"inputs": [tensor()]}).encode(), headers=headers), 400)
    assert message.startswith("Inference-Header-Content-Length: expected the JSON header's length in bytes")


# Forms: the parts and fields read are capped


def test_a_multipart_form_of_too_many_parts_is_a_400(server: Any) -> None:
    boundary = "b0undary"
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n'
    body = (part * 200_000 + f"--{boundary}--\r\n").encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    info = seldon_error(post(server, SELDON, body, headers=headers), 400)
    assert info == f"body: a multipart form may have at most {MAX_FORM_FIELDS} parts"
    fine = f'--{boundary}\r\nContent-Disposition: form-data; name="json"\r\n\r\n{{"data": {{"ndarray": [[1]]}}}}\r\n'
    response = post(server, SELDON, (part * 10 + fine + f"--{boundary}--\r\n").encode(), headers=headers)
    assert response.status_code == 200, response.text


def test_a_urlencoded_form_of_too_many_fields_is_a_400(server: Any) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    failed = [
        post(server, SELDON, "&".join(f"f{i}=1" for i in range(fields)), headers=headers).status_code
        for fields in (MAX_FORM_FIELDS + 1, 1_000_000)
    ]
    assert failed == [400, 400]
    info = seldon_error(post(server, SELDON, "a=1&" * 5000, headers=headers), 400)
    assert info == f"body: a form may have at most {MAX_FORM_FIELDS} fields"


# Answers: never silently wrong


def test_non_finite_outputs_are_a_500_saying_why_over_v2_json(server: Any) -> None:
    message = v2_error(post(server, V2, {"inputs": [tensor(data=[1e308, 1.0])]}), 500)
    assert message == (
        "scaler returned a result that cannot be encoded: output 'output-0' holds inf or NaN, which JSON cannot"
        " carry; ask for it in binary or over gRPC"
    )
    assert "output 'output-0' holds inf or NaN" in server.stderr  # logged as a model's error


def test_non_finite_outputs_are_a_500_saying_why_over_seldon(server: Any) -> None:
    info = seldon_error(post(server, SELDON, {"data": {"ndarray": [[1e308, 1.0]]}}), 500)
    assert info == "scaler returned a result that cannot be encoded: it holds inf or NaN, which JSON cannot carry"


def test_non_finite_outputs_travel_as_they_are_in_binary_and_over_grpc(server: Any) -> None:
    data = np.array([[1e308, -1e308, 1.0]])
    expected = np.array([[np.inf, -np.inf, 10.0]])
    http_client = triton_http.InferenceServerClient(server.url.removeprefix("http://"))
    tensor_in = triton_http.InferInput("x", [1, 3], "FP64")
    tensor_in.set_data_from_numpy(data, binary_data=False)
    wanted = [triton_http.InferRequestedOutput("output-0", binary_data=True)]
    np.testing.assert_array_equal(
        http_client.infer("scaler", [tensor_in], outputs=wanted).as_numpy("output-0"), expected
    )
    with triton_grpc.InferenceServerClient(server.grpc_target) as grpc_client:
        grpc_in = triton_grpc.InferInput("x", [1, 3], "FP64")
        grpc_in.set_data_from_numpy(data)
        np.testing.assert_array_equal(grpc_client.infer("scaler", [grpc_in]).as_numpy("output-0"), expected)


# Faulty models: an exit or an interrupt in predict ends the request, not the server


@pytest.mark.parametrize(("value", "raised"), [(-1.0, "SystemExit: 3"), (-2.0, "KeyboardInterrupt")])
def test_an_exit_in_predict_is_a_500_in_the_protocols_shape(server: Any, value: float, raised: str) -> None:
    assert v2_error(post(server, V2, {"inputs": [tensor(data=[value, 1.0])]}), 500).startswith(f"scaler: {raised}")
    assert seldon_error(post(server, SELDON, {"data": {"ndarray": [[value, 1.0]]}}), 500).startswith(
        f"scaler: {raised}"
    )
    with triton_grpc.InferenceServerClient(server.grpc_target) as client:
        grpc_in = triton_grpc.InferInput("x", [1, 2], "FP64")
        grpc_in.set_data_from_numpy(np.array([[value, 1.0]]))
        with pytest.raises(InferenceServerException, match=raised):
            client.infer("scaler", [grpc_in])
    assert post(server, V2, {"inputs": [tensor()]}).json()["outputs"][0]["data"] == [10.0, 20.0]
    assert server.returncode is None


# Leaks: no server software named, ids nobody can guess


def test_answers_name_no_server_software(server: Any) -> None:
    for response in (requests.get(server.url + "/v2/health/live", timeout=30), post(server, V2, {"inputs": []})):
        assert "server" not in response.headers


def test_generated_request_ids_are_random_not_counted(server: Any) -> None:
    ids = [post(server, V2, {"inputs": [tensor()]}).json()["id"] for _ in range(3)]
    puids = [post(server, SELDON, {"data": {"ndarray": [[1.0]]}}).json()["meta"]["puid"] for _ in range(3)]
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i) for i in ids)
    assert all(re.fullmatch(r"[0-9a-f]{26}", puid) for puid in puids)
    # Counted ids share all but their last digits; random ones share no prefix of 8 digits, but by a 1 in 4e9 chance.
    assert len({i[:8] for i in ids}) == len({puid[:8] for puid in puids}) == 3


# Readiness follows what can serve; load failures name no paths of the server's disk

BROKEN = """
    class Broken:
        def load(self):
            open("{path}")

        def predict(self, X, names, meta):
            return X
"""


def test_the_server_is_unready_once_its_only_model_is_unloaded(serve: Any, make_model: Any) -> None:
    server = serve(make_model(SCALER, "scaler"), "--no-grpc")
    assert requests.post(server.url + "/v2/repository/models/scaler/unload", timeout=60).status_code == 200
    ready = requests.get(server.url + "/v2/health/ready", timeout=30)
    assert (ready.status_code, ready.json()) == (503, {"error": "not ready: no model is ready to serve"})
    assert requests.post(server.url + "/v2/repository/models/scaler/load", timeout=60).status_code == 200
    assert requests.get(server.url + "/v2/health/ready", timeout=30).status_code == 200


def test_load_failures_name_no_absolute_paths(serve: Any, make_model: Any, tmp_path: Any, wait_for: Any) -> None:
    missing = tmp_path / "secret" / "weights" / "model.bin"
    server = serve(make_model(BROKEN.format(path=missing), "broken"), "--no-grpc", "--keep-going", ready=False)

    def failed() -> bool:
        return "No such file" in requests.get(server.url + "/v2/health/ready", timeout=30).text

    wait_for(failed, "the model's load to fail")
    answers = [
        requests.get(server.url + "/v2/health/ready", timeout=30).text,
        requests.post(server.url + "/v2/repository/index", json={}, timeout=30).text,
        requests.post(server.url + "/v2/models/broken/infer", json={"inputs": [tensor()]}, timeout=30).text,
        requests.post(server.url + "/v2/repository/models/broken/load", timeout=60).text,
    ]
    assert all("No such file" in text and ".../model.bin" in text for text in answers), answers
    assert not any(str(tmp_path) in text for text in answers), answers
    assert str(missing) in server.stderr  # the log keeps the whole reason
