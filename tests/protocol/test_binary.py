"""Raw tensors and Triton's binary tensor data extension, checked against Triton's own client encoders."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from daneel.errors import InvalidInput
from daneel.protocol import binary, v2

ARRAYS = {
    "BOOL": np.array([[True, False], [False, True]]),
    "UINT8": np.array([[0, 255], [1, 2]], dtype=np.uint8),
    "UINT16": np.array([[0, 65535], [1, 2]], dtype=np.uint16),
    "UINT32": np.array([[0, 2**32 - 1], [1, 2]], dtype=np.uint32),
    "UINT64": np.array([[0, 2**64 - 1], [1, 2]], dtype=np.uint64),
    "INT8": np.array([[-128, 127], [0, 1]], dtype=np.int8),
    "INT16": np.array([[-(2**15), 2**15 - 1], [0, 1]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 2**31 - 1], [0, 1]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 2**63 - 1], [0, 1]], dtype=np.int64),
    "FP16": np.array([[-2.5, 0.125], [1024.0, 65504.0]], dtype=np.float16),
    "FP32": np.array([[-1.5, 0.25], [3.0e38, 0.0]], dtype=np.float32),
    "FP64": np.array([[-1.0e300, 0.1], [2.5e-300, 0.0]], dtype=np.float64),
}


def header(datatype: str, shape: list[int], **parameters: Any) -> v2.Tensor:
    return v2.tensor_header({"name": "x", "datatype": datatype, "shape": shape, "parameters": parameters}, "inputs[0]")


def request(inputs: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"inputs": inputs, **extra}


def binary_input(name: str, datatype: str, shape: list[int], size: int) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": size}}


@pytest.mark.parametrize("datatype", list(ARRAYS))
def test_numeric_tensors_read_their_little_endian_bytes(datatype: str) -> None:
    array = ARRAYS[datatype]
    raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
    data = binary.tensor_data(raw, header(datatype, [2, 2]), "inputs[0]")
    assert data.dtype == array.dtype
    assert data.dtype.isnative
    np.testing.assert_array_equal(data, array)
    data[0, 0] = array[1, 1]  # writable, like arrays decoded from JSON


@pytest.mark.parametrize("datatype", list(ARRAYS))
def test_numeric_outputs_write_their_little_endian_bytes(datatype: str) -> None:
    array = ARRAYS[datatype]
    output = {"name": "y", "datatype": datatype, "shape": [2, 2], "data": array.astype(array.dtype.newbyteorder(">"))}
    assert binary.output_bytes(output) == array.astype(array.dtype.newbyteorder("<")).tobytes()


def test_bytes_elements_carry_a_four_byte_length_as_tritons_client_writes_them() -> None:
    items = [b"hello", b"", "wörld".encode(), b"\xff\x00\x01"]
    raw = serialize_byte_tensor(np.array(items, dtype=object)).item()
    assert raw[:9] == struct.pack("<I", 5) + b"hello"
    data = binary.tensor_data(raw, header("BYTES", [2, 2]), "inputs[0]")
    assert data.shape == (2, 2)
    assert data.reshape(-1).tolist() == items


def test_bytes_outputs_undo_json_base64_and_triton_reads_them() -> None:
    output = {"name": "y", "datatype": "BYTES", "shape": [2], "data": ["/wA=", "aGk="]}
    output["parameters"] = {"content_type": "base64"}
    raw = binary.output_bytes(output)
    assert deserialize_bytes_tensor(raw).tolist() == [b"\xff\x00", b"hi"]
    text = {
        "name": "y",
        "datatype": "BYTES",
        "shape": [2],
        "data": ["wörld", ""],
        "parameters": {"content_type": "str"},
    }
    assert deserialize_bytes_tensor(binary.output_bytes(text)).tolist() == ["wörld".encode(), b""]


def test_bytes_with_content_type_str_are_text_and_must_be_utf8() -> None:
    raw = binary.join_bytes([b"a", "é".encode()])
    assert binary.tensor_data(raw, header("BYTES", [2], content_type="str"), "p") == ["a", "é"]
    with pytest.raises(InvalidInput, match=r"^p\[1\]: expected UTF-8 text"):
        binary.tensor_data(binary.join_bytes([b"a", b"\xff"]), header("BYTES", [2], content_type="str"), "p")


def test_bytes_with_content_type_base64_are_the_bytes_json_would_decode_to() -> None:
    raw = binary.join_bytes([b"\xff", b"x"])
    assert binary.tensor_data(raw, header("BYTES", [2], content_type="base64"), "p") == [b"\xff", b"x"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x05\x00\x00\x00abc", "BYTES element 0 says 5 bytes but 3 follow"),
        (b"\x01\x00\x00\x00a\x01\x00", "BYTES element 1 has a cut-off 4-byte length"),
        (b"\x01\x00\x00\x00a", "has 1 elements but shape [2] needs 2"),
    ],
)
def test_malformed_bytes_name_the_field(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        binary.tensor_data(raw, header("BYTES", [2]), "raw_input_contents[0]")
    assert caught.value.message == f"raw_input_contents[0]: {message}"


def test_a_size_that_does_not_fit_the_shape_names_both() -> None:
    with pytest.raises(InvalidInput) as caught:
        binary.tensor_data(b"\x00" * 12, header("FP32", [2, 2]), "raw_input_contents[0]")
    assert caught.value.message == "raw_input_contents[0]: has 12 bytes but shape [2, 2] of FP32 needs 16"


def test_split_takes_the_json_header_by_its_length() -> None:
    head, blob = binary.split(b'{"a":1}BINARY', "7")
    assert head == b'{"a":1}'
    assert blob is not None
    assert bytes(blob) == b"BINARY"
    assert binary.split(b'{"a":1}', None) == (b'{"a":1}', None)


@pytest.mark.parametrize(("length", "message"), [("x", "expected the JSON header's length"), ("99", "says 99 bytes")])
def test_a_bad_header_length_names_the_http_header(length: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=f"^Inference-Header-Content-Length: {message}"):
        binary.split(b"{}", length)


def test_binary_and_json_inputs_mix_in_one_request() -> None:
    a = np.array([1.5, -2.0], dtype=np.float32)
    c = np.array([7, 8, 9], dtype=np.int64)
    inputs = [
        binary_input("a", "FP32", [2], 8),
        {"name": "b", "datatype": "INT32", "shape": [1], "data": [3]},
        binary_input("c", "INT64", [3], 24),
    ]
    decoded = binary.decode_request(request(inputs), a.tobytes() + c.tobytes())
    np.testing.assert_array_equal(decoded.inputs[0].data, a)
    np.testing.assert_array_equal(decoded.inputs[1].data, [3])
    np.testing.assert_array_equal(decoded.inputs[2].data, c)
    assert decoded.inputs[0].parameters == {}


def test_binary_data_must_be_claimed_exactly() -> None:
    inputs = [binary_input("a", "FP32", [2], 8)]
    with pytest.raises(InvalidInput, match=r"^body: 4 bytes after the JSON header belong to no input"):
        binary.decode_request(request(inputs), b"\x00" * 12)
    with pytest.raises(InvalidInput, match=r"^inputs\[0\]\.parameters\.binary_data_size: is 8 but only 4 bytes"):
        binary.decode_request(request(inputs), b"\x00" * 4)


@pytest.mark.parametrize(
    ("tensor", "field"),
    [
        ({**binary_input("a", "FP32", [1], 4), "data": [1.0]}, "inputs[0].data"),
        (binary_input("a", "FP32", [1], -4), "inputs[0].parameters.binary_data_size"),
        (binary_input("a", "FP32", [1], 4) | {"datatype": "FP128"}, "inputs[0].datatype"),
    ],
)
def test_bad_binary_inputs_name_the_field(tensor: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        binary.decode_request(request([tensor]), b"\x00" * 4)
    assert caught.value.field == field


def test_binary_outputs_default_to_the_request_parameter_and_each_output_overrides_it() -> None:
    body = request(
        [],
        parameters={"binary_data_output": True, "keep": 1},
        outputs=[{"name": "a", "parameters": {"binary_data": False}}, {"name": "b"}],
    )
    wanted = binary.binary_outputs(body)
    assert (wanted.wants("a"), wanted.wants("b"), wanted.wants("c")) == (False, True, True)
    assert body["parameters"] == {"keep": 1}  # the model does not see the extension's parameters
    only = binary.binary_outputs(request([], outputs=[{"name": "a", "parameters": {"binary_data": True}}]))
    assert (only.wants("a"), only.wants("b")) == (True, False)


def test_binary_output_flags_must_be_booleans() -> None:
    with pytest.raises(InvalidInput, match=r"^parameters\.binary_data_output: expected true or false"):
        binary.binary_outputs(request([], parameters={"binary_data_output": "yes"}))
    with pytest.raises(InvalidInput, match=r"^outputs\[0\]\.parameters\.binary_data: expected true or false"):
        binary.binary_outputs(request([], outputs=[{"name": "a", "parameters": {"binary_data": 1}}]))


def test_a_response_puts_binary_outputs_after_its_json_in_order() -> None:
    a = np.array([1.0, 2.0], dtype=np.float32)
    b = np.array([3, 4], dtype=np.int64)
    response = {
        "model_name": "m",
        "outputs": [
            {"name": "a", "datatype": "FP32", "shape": [2], "data": a},
            {"name": "s", "datatype": "BYTES", "shape": [1], "data": ["hi"], "parameters": {"content_type": "str"}},
            {"name": "b", "datatype": "INT64", "shape": [2], "data": b},
        ],
    }
    head, parts = binary.encode_response(response, binary.BinaryOutputs(True, {"s": False}))
    assert parts == [a.tobytes(), b.tobytes()]
    assert head["outputs"][0] == {"name": "a", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}}
    assert head["outputs"][1] == response["outputs"][1]
    assert head["outputs"][2]["parameters"] == {"binary_data_size": 16}
    assert orjson.loads(orjson.dumps(head))["model_name"] == "m"


def test_a_response_without_binary_outputs_stays_as_it_is() -> None:
    response = {"model_name": "m", "outputs": [{"name": "a", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
    assert binary.encode_response(response, binary.BinaryOutputs()) == (response, [])
    assert binary.encode_response(["raw", "answer"], binary.BinaryOutputs(True)) == (["raw", "answer"], [])
