from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from daneel.errors import InvalidInput
from daneel.protocol import v2
from daneel.protocol.payload import Payload

Wire = Callable[[Any], Any]

NUMERIC = {
    "BOOL": [True, False, True, True, False, True],
    "UINT8": [0, 1, 2, 3, 254, 255],
    "UINT16": [0, 1, 2, 3, 4, 65535],
    "UINT32": [0, 1, 2, 3, 4, 2**32 - 1],
    "UINT64": [0, 1, 2, 3, 4, 2**64 - 1],
    "INT8": [-128, -1, 0, 1, 2, 127],
    "INT16": [-32768, -1, 0, 1, 2, 32767],
    "INT32": [-(2**31), -1, 0, 1, 2, 2**31 - 1],
    "INT64": [-(2**63), -1, 0, 1, 2, 2**63 - 1],
    "FP16": [-1.5, 0.0, 0.25, 1.0, 2.5, 65504.0],
    "FP32": [-1.5, 0.0, 0.25, 1.0, 2.5, 1e30],
    "FP64": [-1.5, 0.0, 0.25, 1.0, 2.5, 1e300],
}


def tensor(data: Any, datatype: str = "FP32", shape: list[int] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": "x", "shape": [len(data)] if shape is None else shape, "datatype": datatype, "data": data, **extra}


def decode(*tensors: dict[str, Any], **body: Any) -> v2.InferenceRequest:
    return v2.decode_request({"inputs": list(tensors), **body})


def rejected(body: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        v2.decode_request(body)
    return caught.value


@pytest.mark.parametrize(("datatype", "values"), NUMERIC.items())
def test_every_numeric_datatype_round_trips(datatype: str, values: list[Any], wire: Wire) -> None:
    request = decode(tensor(values, datatype, [2, 3]))
    payload = v2.to_payload(request)
    assert payload.data.shape == (2, 3)
    assert payload.data.dtype == v2.to_numpy(datatype, "")
    [output] = wire(v2.encode_outputs(payload, None))
    assert output == {"name": "output-0", "shape": [2, 3], "datatype": datatype, "data": values}


def test_bytes_round_trip_as_text(wire: Wire) -> None:
    payload = v2.to_payload(decode(tensor(["a", "é", "c", "d"], "BYTES", [2, 2])))
    assert payload.data.dtype == object and payload.data.shape == (2, 2)
    [output] = wire(v2.encode_outputs(payload, None))
    assert output["datatype"] == "BYTES" and output["shape"] == [2, 2]
    assert output["data"] == ["a", "é", "c", "d"]
    assert output["parameters"] == {"content_type": "str"}


def test_nested_and_flat_data_decode_alike() -> None:
    flat = decode(tensor([1, 2, 3, 4, 5, 6], "INT32", [2, 3])).inputs[0].data
    nested = decode(tensor([[1, 2, 3], [4, 5, 6]], "INT32", [2, 3])).inputs[0].data
    np.testing.assert_array_equal(flat, nested)
    assert nested.shape == (2, 3)


@pytest.mark.parametrize("datatype", ["FP32", "BYTES"])
def test_data_that_does_not_fill_the_shape_is_rejected(datatype: str) -> None:
    data = [1.0, 2.0, 3.0] if datatype == "FP32" else ["a", "b", "c"]
    error = rejected({"inputs": [tensor(data, datatype, [2, 2])]})
    assert error.field == "inputs[0].data"
    assert "3 elements" in error.message and "[2, 2]" in error.message


@pytest.mark.parametrize(
    ("data", "datatype"),
    [
        (["a"], "FP32"),
        ([300], "UINT8"),
        ([-1], "UINT32"),
        ([{"a": 1}], "INT64"),
        ([1.5], "INT32"),
        (["1"], "INT32"),
        ([True], "INT8"),
        (["false"], "BOOL"),
        ([1], "BOOL"),
        ([2**64], "UINT64"),
    ],
)
def test_values_that_do_not_fit_the_datatype_are_rejected(data: list[Any], datatype: str) -> None:
    assert rejected({"inputs": [tensor(data, datatype)]}).field == "inputs[0].data"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({}, "inputs"),
        ({"inputs": []}, "inputs"),
        ({"inputs": {"x": 1}}, "inputs"),
        ({"inputs": ["x"]}, "inputs[0]"),
        ({"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}, "inputs[0].name"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "data": [1]}]}, "inputs[0].shape"),
        ({"inputs": [tensor([1], shape=[-1])]}, "inputs[0].shape"),
        ({"inputs": [tensor([1], shape=[True])]}, "inputs[0].shape"),
        ({"inputs": [{"name": "x", "shape": [1], "data": [1]}]}, "inputs[0].datatype"),
        ({"inputs": [tensor([1], "FLOAT")]}, "inputs[0].datatype"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}, "inputs[0].data"),
        ({"inputs": [tensor([1]), {"name": "y", "shape": [1], "datatype": "FP32"}]}, "inputs[1].data"),
        ({"inputs": [tensor([1], parameters=[])]}, "inputs[0].parameters"),
        ({"inputs": [tensor([1])], "id": 7}, "id"),
        ({"inputs": [tensor([1])], "parameters": "x"}, "parameters"),
        ({"inputs": [tensor([1])], "outputs": "y"}, "outputs"),
        ({"inputs": [tensor([1])], "outputs": [{"id": "y"}]}, "outputs[0].name"),
    ],
)
def test_malformed_requests_name_the_field(body: Any, field: str) -> None:
    assert rejected(body).field == field


def test_one_input_reaches_the_component_as_its_array() -> None:
    payload = v2.to_payload(decode(tensor([1.0, 2.0]), id="r1", parameters={"k": 1}))
    np.testing.assert_array_equal(payload.data, [1.0, 2.0])
    assert payload.form == "v2"
    assert payload.meta == {"puid": "r1", "parameters": {"k": 1}}


def test_several_inputs_reach_the_component_as_a_dict() -> None:
    payload = v2.to_payload(decode(tensor([1.0]), {**tensor([2], "INT8"), "name": "y"}))
    assert payload.names == ["x", "y"]
    assert payload.data["y"].dtype == np.int8


def test_pd_content_type_makes_a_dataframe() -> None:
    age = {**tensor([[30], [40]], "INT64", [2, 1]), "name": "age"}
    city = {**tensor(["Oslo", "Rome"], "BYTES"), "name": "city"}
    payload = v2.to_payload(decode(age, city, parameters={"content_type": "pd"}))
    assert isinstance(payload.data, pd.DataFrame)
    assert payload.names == ["age", "city"]
    assert payload.data["city"].tolist() == ["Oslo", "Rome"]


def test_requested_outputs_are_returned_in_the_requested_order() -> None:
    result = Payload({"a": np.array([1]), "b": np.array([2.0]), "c": np.array([3])})
    outputs = v2.encode_outputs(result, ["c", "a"])
    assert [output["name"] for output in outputs] == ["c", "a"]


def test_an_unknown_requested_output_is_rejected_naming_the_known_ones() -> None:
    result = Payload(np.array([1.0]), output_name="predict")
    with pytest.raises(InvalidInput) as caught:
        v2.encode_outputs(result, ["predict", "proba"])
    assert caught.value.field == "outputs[1].name"
    assert "'proba'" in caught.value.message and "predict" in caught.value.message


def test_output_name_names_a_single_array_result() -> None:
    [output] = v2.encode_outputs(Payload(np.array([1.0]), output_name="predict_proba"), None)
    assert output["name"] == "predict_proba"


def test_dataframe_result_gives_one_output_per_column(wire: Wire) -> None:
    frame = pd.DataFrame({"score": [0.5, 0.25], "label": ["a", "b"]})
    outputs = wire(v2.encode_outputs(Payload(frame), None))
    assert [(o["name"], o["datatype"], o["data"]) for o in outputs] == [
        ("score", "FP64", [0.5, 0.25]),
        ("label", "BYTES", ["a", "b"]),
    ]


@pytest.mark.parametrize(
    ("result", "datatype", "shape", "data"),
    [
        ("hello", "BYTES", [1], ["hello"]),
        (b"\xff\x00", "BYTES", [1], ["/wA="]),
        (3, "INT64", [], [3]),
        (np.float32(0.5), "FP32", [], [0.5]),
        ([[1.0, 2.0]], "FP64", [1, 2], [1.0, 2.0]),
        ([True, False], "BOOL", [2], [True, False]),
        (np.arange(6, dtype=np.float16).reshape(2, 3)[:, 1], "FP16", [2], [1.0, 4.0]),
        (np.array([1.5, 2.5], dtype=">f8"), "FP64", [2], [1.5, 2.5]),
    ],
)
def test_results_of_any_shape_serialise(result: Any, datatype: str, shape: list[int], data: Any, wire: Wire) -> None:
    [output] = wire(v2.encode_outputs(Payload(result), None))
    assert (output["datatype"], output["shape"], output["data"]) == (datatype, shape, data)


def test_response_carries_model_version_id_and_parameters(wire: Wire) -> None:
    outputs = v2.encode_outputs(Payload(np.array([1.0], dtype=np.float16)), None)
    response = wire(v2.encode_response("iris", "2", "r1", outputs, {"tags": {"a": 1}}))
    assert response == {
        "model_name": "iris",
        "model_version": "2",
        "id": "r1",
        "parameters": {"tags": {"a": 1}},
        "outputs": [{"name": "output-0", "shape": [1], "datatype": "FP16", "data": [1.0]}],
    }


def test_response_leaves_out_what_is_not_known() -> None:
    assert v2.encode_response("iris", None, None, []) == {"model_name": "iris", "outputs": []}
