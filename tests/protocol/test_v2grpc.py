"""ModelInferRequest/Response to and from daneel's V2 values, typed and raw, and on the wire as Triton reads it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tritonclient.grpc import service_pb2 as triton_pb

from daneel.errors import InvalidInput
from daneel.protocol import v2, v2grpc
from daneel.protocol.proto import grpc_predict_v2_pb2 as pb

ARRAYS = {
    "BOOL": np.array([[True, False, True]]),
    "UINT8": np.array([[0, 1, 255]], dtype=np.uint8),
    "UINT16": np.array([[0, 1, 65535]], dtype=np.uint16),
    "UINT32": np.array([[0, 1, 2**32 - 1]], dtype=np.uint32),
    "UINT64": np.array([[0, 1, 2**64 - 1]], dtype=np.uint64),
    "INT8": np.array([[-128, 0, 127]], dtype=np.int8),
    "INT16": np.array([[-(2**15), 0, 2**15 - 1]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 0, 2**31 - 1]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 0, 2**63 - 1]], dtype=np.int64),
    "FP16": np.array([[-2.5, 0.125, 65504.0]], dtype=np.float16),
    "FP32": np.array([[-1.5, 0.25, 3.0e38]], dtype=np.float32),
    "FP64": np.array([[-1.0e300, 0.1, 2.5e-300]], dtype=np.float64),
}


def tensor(name: str, datatype: str, data: Any, **parameters: Any) -> dict[str, Any]:
    shape = list(np.shape(data))
    out = {"name": name, "datatype": datatype, "shape": shape, "data": data}
    return out | ({"parameters": parameters} if parameters else {})


def decode(message: pb.ModelInferRequest) -> v2.InferenceRequest:
    """Decode the request as the server receives it: serialised, then parsed."""
    return v2grpc.decode_request(pb.ModelInferRequest.FromString(message.SerializeToString()))


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
@pytest.mark.parametrize("datatype", [d for d in ARRAYS if d != "FP16"])
def test_numeric_inputs_round_trip(datatype: str, raw: bool) -> None:
    array = ARRAYS[datatype]
    message = v2grpc.encode_request("m", [tensor("x", datatype, array)], raw=raw)
    assert bool(message.raw_input_contents) is raw
    (decoded,) = decode(message).inputs
    assert (decoded.name, decoded.datatype, decoded.shape) == ("x", datatype, [1, 3])
    assert decoded.data.dtype == array.dtype
    np.testing.assert_array_equal(decoded.data, array)


def test_fp16_travels_raw_even_when_typed_contents_are_asked_for() -> None:
    message = v2grpc.encode_request("m", [tensor("x", "FP16", ARRAYS["FP16"])], raw=False)
    assert len(message.raw_input_contents) == 1
    np.testing.assert_array_equal(decode(message).inputs[0].data, ARRAYS["FP16"])


def test_fp16_in_typed_contents_is_rejected_naming_the_field() -> None:
    message = pb.ModelInferRequest(model_name="m")
    message.inputs.add(name="x", datatype="FP16", shape=[1]).contents.fp32_contents.append(1.0)
    with pytest.raises(InvalidInput) as caught:
        decode(message)
    assert caught.value.message == "inputs[0].contents: FP16 data can only be sent in raw_input_contents"


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_bytes_inputs_arrive_as_bytes_or_as_text_for_content_type_str(raw: bool) -> None:
    items = np.array([[b"a", b"\xff\x00"]], dtype=object)
    message = v2grpc.encode_request(
        "m", [tensor("b", "BYTES", items), tensor("s", "BYTES", [["wörld"]], content_type="str")], raw=raw
    )
    b, s = decode(message).inputs
    assert b.data.tolist() == [[b"a", b"\xff\x00"]]
    assert s.data == ["wörld"]
    assert s.parameters == {"content_type": "str"}


def test_request_fields_decode_as_rest_has_them() -> None:
    message = v2grpc.encode_request(
        "m",
        [tensor("x", "INT32", [[1, 2]])],
        request_id="req-1",
        parameters={"content_type": "np", "flag": True, "n": 3, "big": 2**64 - 1, "ratio": 0.5},
        outputs=["y"],
    )
    decoded = decode(message)
    assert decoded.id == "req-1"
    assert decoded.outputs == ["y"]
    assert decoded.parameters == {"content_type": "np", "flag": True, "n": 3, "big": 2**64 - 1, "ratio": 0.5}


def test_an_empty_id_and_no_outputs_are_absent() -> None:
    decoded = decode(v2grpc.encode_request("m", [tensor("x", "INT32", [1])]))
    assert (decoded.id, decoded.outputs, decoded.parameters) == (None, None, {})


def invalid(message: pb.ModelInferRequest) -> str:
    with pytest.raises(InvalidInput) as caught:
        decode(message)
    return caught.value.message


def test_errors_name_the_message_fields() -> None:
    typed = v2grpc.encode_request("m", [tensor("x", "FP32", [1.0, 2.0])], raw=False)
    typed.inputs[0].shape[:] = [3]
    assert invalid(typed) == "inputs[0].contents.fp32_contents: has 2 elements but shape [3] needs 3"

    raw = v2grpc.encode_request("m", [tensor("x", "FP32", [1.0, 2.0])])
    raw.raw_input_contents[0] = b"\x00" * 7
    assert invalid(raw) == "raw_input_contents[0]: has 7 bytes but shape [2] of FP32 needs 8"

    raw.raw_input_contents.append(b"")
    assert invalid(raw) == "raw_input_contents: has 2 entries for 1 inputs"

    unknown = v2grpc.encode_request("m", [tensor("x", "FP32", [1.0])])
    unknown.inputs[0].datatype = "FLOAT"
    assert invalid(unknown).startswith("inputs[0].datatype: unknown datatype 'FLOAT'")

    assert invalid(pb.ModelInferRequest(model_name="m")) == "inputs: expected a non-empty list of input tensors"


def test_typed_integers_out_of_range_are_rejected() -> None:
    message = pb.ModelInferRequest(model_name="m")
    message.inputs.add(name="x", datatype="INT8", shape=[1]).contents.int_contents.append(300)
    assert invalid(message) == "inputs[0].contents.int_contents: values out of range for datatype INT8"


def response(*outputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model_name": "m", "model_version": "2", "id": "r", "outputs": list(outputs), **extra}


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_responses_round_trip_every_datatype(raw: bool) -> None:
    outputs = [tensor(datatype, datatype, array.reshape(-1)) for datatype, array in ARRAYS.items()]
    outputs.append(tensor("text", "BYTES", ["wörld", ""], content_type="str"))
    outputs.append(tensor("blob", "BYTES", ["/wA="], content_type="base64"))
    message = v2grpc.encode_response(response(*outputs, parameters={"tags": {"a": 1}}), raw=raw)
    assert len(message.raw_output_contents) == len(outputs)  # FP16 makes a typed response raw
    decoded = v2grpc.decode_response(pb.ModelInferResponse.FromString(message.SerializeToString()))
    assert (decoded["model_name"], decoded["model_version"], decoded["id"]) == ("m", "2", "r")
    assert decoded["parameters"] == {"tags": '{"a":1}'}
    by_name = {output["name"]: output for output in decoded["outputs"]}
    for datatype, array in ARRAYS.items():
        np.testing.assert_array_equal(by_name[datatype]["data"], array.reshape(-1))
        assert by_name[datatype]["data"].dtype == array.dtype
    assert by_name["text"]["data"] == ["wörld", ""]
    assert by_name["blob"]["data"].tolist() == [b"\xff\x00"]
    assert "parameters" not in by_name["blob"]  # raw bytes are no longer base64


def test_typed_responses_fill_the_field_of_each_datatype() -> None:
    outputs = [tensor("i", "INT16", np.array([1, -2], dtype=np.int16)), tensor("b", "BOOL", np.array([True]))]
    outputs.append(tensor("s", "BYTES", ["x"], content_type="str"))
    message = v2grpc.encode_response(response(*outputs), raw=False)
    assert not message.raw_output_contents
    assert list(message.outputs[0].contents.int_contents) == [1, -2]
    assert list(message.outputs[1].contents.bool_contents) == [True]
    assert list(message.outputs[2].contents.bytes_contents) == [b"x"]
    assert message.outputs[2].parameters["content_type"].string_param == "str"


def test_the_wire_format_is_tritons() -> None:
    """Field numbers and types match Triton's own messages, which its client parses."""
    message = v2grpc.encode_request(
        "m", [tensor("x", "FP32", [[1.0, 2.0]])], model_version="3", request_id="i", parameters={"p": 1}, raw=False
    )
    theirs = triton_pb.ModelInferRequest.FromString(message.SerializeToString())
    assert (theirs.model_name, theirs.model_version, theirs.id) == ("m", "3", "i")
    assert theirs.parameters["p"].int64_param == 1
    assert (theirs.inputs[0].name, theirs.inputs[0].datatype, list(theirs.inputs[0].shape)) == ("x", "FP32", [1, 2])
    assert list(theirs.inputs[0].contents.fp32_contents) == [1.0, 2.0]

    answer = v2grpc.encode_response(response(tensor("y", "INT64", [5])), raw=True)
    parsed = triton_pb.ModelInferResponse.FromString(answer.SerializeToString())
    assert np.frombuffer(parsed.raw_output_contents[0], dtype="<i8").tolist() == [5]

    priority = triton_pb.ModelInferRequest(model_name="m")
    priority.parameters["priority"].uint64_param = 7
    priority.parameters["ratio"].double_param = 0.5
    assert v2grpc.parameters_dict(pb.ModelInferRequest.FromString(priority.SerializeToString()).parameters) == {
        "priority": 7,
        "ratio": 0.5,
    }


def test_metadata_becomes_a_message() -> None:
    metadata = {
        "name": "m",
        "versions": ["1"],
        "platform": "sklearn",
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [],
        "parameters": {"ignored": "by gRPC"},
    }
    message = v2grpc.metadata_response(metadata)
    assert (message.name, list(message.versions), message.platform) == ("m", ["1"], "sklearn")
    assert (message.inputs[0].name, message.inputs[0].datatype, list(message.inputs[0].shape)) == ("x", "FP64", [-1, 4])
