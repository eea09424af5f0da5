"""The Open Inference Protocol's gRPC messages, to and from the values the REST path uses.

A ModelInferRequest decodes to the same :class:`v2.InferenceRequest` as a JSON body, and a response
is encoded from the same output dicts ({name, datatype, shape, data, parameters?}) that REST sends
as JSON. Tensor data travels either typed (`contents`, one repeated field per datatype) or raw
(`raw_input_contents` / `raw_output_contents`, laid out as in :mod:`daneel.protocol.binary`); FP16
has no typed field, so it is always raw.

Both directions are here, for a server and for a client: :func:`decode_request` and
:func:`encode_response` serve requests, :func:`encode_request` and :func:`decode_response` make them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from daneel.errors import InvalidInput
from daneel.protocol import binary, v2
from daneel.protocol.datatypes import to_numpy
from daneel.protocol.proto import grpc_predict_v2_pb2 as pb

#: The typed `contents` field of each datatype; FP16 has none.
CONTENTS: dict[str, str] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

#: The numpy type of each typed field's elements as they come off the wire.
_WIRE: dict[str, np.dtype] = {
    "bool_contents": np.dtype(np.bool_),
    "int_contents": np.dtype(np.int32),
    "int64_contents": np.dtype(np.int64),
    "uint_contents": np.dtype(np.uint32),
    "uint64_contents": np.dtype(np.uint64),
    "fp32_contents": np.dtype(np.float32),
    "fp64_contents": np.dtype(np.float64),
}

#: Tensor messages: a request's input or a response's output, which have the same fields.
TensorMessage = pb.ModelInferRequest.InferInputTensor | pb.ModelInferResponse.InferOutputTensor


# Parameters


def parameters_dict(parameters: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    """InferParameter values as plain Python values; a parameter with no value set is None."""
    return {key: _parameter_value(value) for key, value in parameters.items()}


def _parameter_value(parameter: pb.InferParameter) -> Any:
    choice = parameter.WhichOneof("parameter_choice")
    return None if choice is None else getattr(parameter, choice)


def fill_parameters(target: Any, values: Mapping[str, Any]) -> None:
    """Set a message's parameters map; values other than bool, int, float and str go as JSON text."""
    for key, value in values.items():
        parameter = target[key]
        if isinstance(value, bool):
            parameter.bool_param = value
        elif isinstance(value, (int, np.integer)):
            _set_int(parameter, int(value))
        elif isinstance(value, (float, np.floating)):
            parameter.double_param = float(value)
        elif isinstance(value, str):
            parameter.string_param = value
        else:
            parameter.string_param = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _set_int(parameter: pb.InferParameter, value: int) -> None:
    if value > np.iinfo(np.int64).max:
        parameter.uint64_param = value
    else:
        parameter.int64_param = value


# Server side


def decode_request(message: pb.ModelInferRequest) -> v2.InferenceRequest:
    """The request as REST would have decoded it; errors name the message's fields."""
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise InvalidInput("raw_input_contents", f"has {len(raw)} entries for {len(message.inputs)} inputs")
    inputs = [_header(tensor, raw, i, "raw_input_contents") for i, tensor in enumerate(message.inputs)]
    body: dict[str, Any] = {"inputs": inputs, "parameters": parameters_dict(message.parameters)}
    if message.id:
        body["id"] = message.id
    if message.outputs:
        body["outputs"] = [{"name": output.name} for output in message.outputs]
    return v2.decode_request(body, _decode_tensor)


def _header(tensor: TensorMessage, raw: Sequence[bytes], index: int, raw_field: str) -> dict[str, Any]:
    """The tensor's header as REST's JSON has it, carrying the message's data along for decoding."""
    return {
        "name": tensor.name,
        "datatype": tensor.datatype,
        "shape": list(tensor.shape),
        "parameters": parameters_dict(tensor.parameters),
        "contents": tensor.contents,
        "raw": raw[index] if raw else None,
        "raw_path": f"{raw_field}[{index}]",
    }


def _decode_tensor(obj: dict[str, Any], path: str) -> v2.Tensor:
    tensor = v2.tensor_header(obj, path)
    if obj["raw"] is not None:
        tensor.data = binary.tensor_data(obj["raw"], tensor, obj["raw_path"])
    else:
        tensor.data = _typed_data(obj["contents"], tensor, f"{path}.contents")
    return tensor


def _typed_data(contents: pb.InferTensorContents, tensor: v2.Tensor, path: str) -> Any:
    field = CONTENTS.get(tensor.datatype)
    if field is None:
        raise InvalidInput(path, f"{tensor.datatype} data can only be sent in raw_input_contents")
    values = getattr(contents, field)
    if tensor.datatype == "BYTES":
        return binary.bytes_data(list(values), tensor.shape, tensor.parameters.get("content_type"), f"{path}.{field}")
    dtype = to_numpy(tensor.datatype, path)
    array = np.array(values, dtype=_WIRE[field])
    if dtype != array.dtype:  # 8- and 16-bit integers travel as 32-bit ones
        info = np.iinfo(dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise InvalidInput(f"{path}.{field}", f"values out of range for datatype {tensor.datatype}")
        array = array.astype(dtype)
    return v2.reshape(array, tensor.shape, f"{path}.{field}")


def encode_response(response: Mapping[str, Any], raw: bool) -> pb.ModelInferResponse:
    """A response from REST's response dict; outputs go raw when asked, or when one is FP16."""
    outputs = response.get("outputs") or []
    message = pb.ModelInferResponse(
        model_name=str(response.get("model_name", "")),
        model_version=str(response.get("model_version") or ""),
        id=str(response.get("id") or ""),
    )
    fill_parameters(message.parameters, response.get("parameters") or {})
    raw = raw or any(output["datatype"] not in CONTENTS for output in outputs)
    for output in outputs:
        _fill_tensor(message.outputs.add(), output, message.raw_output_contents if raw else None)
    return message


def _fill_tensor(target: TensorMessage, tensor: Mapping[str, Any], raw: Any) -> None:
    """Set a tensor message from a tensor dict; its data goes to `raw` (a repeated bytes field) if given."""
    target.name = tensor["name"]
    target.datatype = tensor["datatype"]
    target.shape.extend(tensor["shape"])
    parameters = tensor.get("parameters") or {}
    if raw is not None:
        raw.append(binary.output_bytes(dict(tensor)))
        parameters = binary.raw_parameters(parameters)
    elif tensor["datatype"] == "BYTES":
        target.contents.bytes_contents.extend(binary.bytes_items(dict(tensor)))
        parameters = binary.raw_parameters(parameters)
    else:
        values = np.asarray(tensor["data"], dtype=to_numpy(tensor["datatype"], "datatype")).reshape(-1)
        getattr(target.contents, CONTENTS[tensor["datatype"]]).extend(values.tolist())
    fill_parameters(target.parameters, parameters)


def metadata_response(metadata: Mapping[str, Any]) -> pb.ModelMetadataResponse:
    """Model metadata (REST's JSON) as a message; gRPC's has no `parameters`."""
    return pb.ModelMetadataResponse(
        name=metadata["name"],
        versions=metadata.get("versions", []),
        platform=metadata.get("platform", ""),
        inputs=[_tensor_metadata(spec) for spec in metadata.get("inputs", [])],
        outputs=[_tensor_metadata(spec) for spec in metadata.get("outputs", [])],
    )


def _tensor_metadata(spec: Mapping[str, Any]) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(name=spec["name"], datatype=spec["datatype"], shape=spec["shape"])


# Client side


def encode_request(
    model_name: str,
    inputs: Sequence[Mapping[str, Any]],
    *,
    model_version: str | None = None,
    request_id: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    outputs: Sequence[str] | None = None,
    raw: bool = True,
) -> pb.ModelInferRequest:
    """A request from tensor dicts ({name, datatype, shape, data, parameters?}); raw contents by default.

    Typed contents (`raw=False`) are what clients without the raw layout understand; FP16 inputs
    make the whole request raw.
    """
    message = pb.ModelInferRequest(model_name=model_name, model_version=model_version or "", id=request_id or "")
    fill_parameters(message.parameters, parameters or {})
    raw = raw or any(tensor["datatype"] not in CONTENTS for tensor in inputs)
    for tensor in inputs:
        _fill_tensor(message.inputs.add(), tensor, message.raw_input_contents if raw else None)
    for name in outputs or []:
        message.outputs.add(name=name)
    return message


def decode_response(message: pb.ModelInferResponse) -> dict[str, Any]:
    """A response as REST's JSON has it once decoded, with numpy arrays (BYTES: bytes) as data."""
    raw = message.raw_output_contents
    if raw and len(raw) != len(message.outputs):
        raise InvalidInput("raw_output_contents", f"has {len(raw)} entries for {len(message.outputs)} outputs")
    outputs = []
    for i, tensor in enumerate(message.outputs):
        decoded = _decode_tensor(_header(tensor, raw, i, "raw_output_contents"), f"outputs[{i}]")
        outputs.append(_tensor_dict(decoded))
    response: dict[str, Any] = {"model_name": message.model_name, "outputs": outputs}
    if message.model_version:
        response["model_version"] = message.model_version
    if message.id:
        response["id"] = message.id
    if message.parameters:
        response["parameters"] = parameters_dict(message.parameters)
    return response


def _tensor_dict(tensor: v2.Tensor) -> dict[str, Any]:
    out = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape, "data": tensor.data}
    if tensor.parameters:
        out["parameters"] = tensor.parameters
    return out
