"""Open Inference Protocol (V2) requests and responses as plain Python and numpy.

Validation is hand-written rather than done by a schema library: it runs on the
hot path, and each failure must name the offending field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from daneel.errors import InvalidInput
from daneel.protocol import codecs, shapes
from daneel.protocol.datatypes import DATATYPES, from_numpy, to_numpy
from daneel.protocol.payload import Payload


@dataclass(slots=True)
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    data: Any
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class InferenceRequest:
    inputs: list[Tensor]
    id: str | None = None
    outputs: list[str] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def decode_request(body: Any, decode: Callable[[Any, str], Tensor] | None = None) -> InferenceRequest:
    """Validate a decoded JSON body and turn its inputs into numpy arrays.

    `decode(input, path)` decodes each input instead of :func:`decode_tensor`, for transports whose
    tensor data does not travel in the JSON (binary tensors, gRPC messages).
    """
    decode = decode or decode_tensor
    if not isinstance(body, dict):
        raise InvalidInput("body", "expected a JSON object with an 'inputs' list")
    parameters = _object(body.get("parameters"), "parameters")
    if parameters:
        codecs.check_content_type(parameters.get("content_type"), None, "")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("inputs", "expected a non-empty list of input tensors")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("id", "expected a string")
    tensors = [decode(item, f"inputs[{i}]") for i, item in enumerate(inputs)]
    if len(tensors) > 1:
        _check_unique(tensors)
    outputs = body.get("outputs")
    return InferenceRequest(tensors, request_id, None if outputs is None else _requested_outputs(outputs), parameters)


def _check_unique(tensors: list[Tensor]) -> None:
    seen: set[str] = set()
    for i, tensor in enumerate(tensors):
        if tensor.name in seen:
            raise InvalidInput(f"inputs[{i}].name", f"duplicate input name {tensor.name!r}")
        seen.add(tensor.name)


def decode_tensor(obj: Any, path: str) -> Tensor:
    tensor = tensor_header(obj, path)
    data = obj.get("data")
    if data is None:
        raise InvalidInput(f"{path}.data", "is missing")
    if tensor.datatype == "BYTES":
        content_type = tensor.parameters.get("content_type")
        tensor.data = codecs.decode_bytes(data, tensor.shape, content_type, f"{path}.data")
    else:
        tensor.data = _numeric(data, to_numpy(tensor.datatype, ""), tensor.shape, f"{path}.data")
    return tensor


def tensor_header(obj: Any, path: str) -> Tensor:
    """A tensor's name, shape, datatype and parameters, checked; its `data` is left None."""
    # Field names are put together only for an error: this runs for every tensor of every request.
    if not isinstance(obj, dict):
        raise InvalidInput(path, "expected an object with name, shape, datatype and data")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{path}.name", "expected a non-empty string")
    shape = shapes.checked(obj.get("shape"), f"{path}.shape")
    datatype = obj.get("datatype")
    if not isinstance(datatype, str):
        raise InvalidInput(f"{path}.datatype", "expected a string such as FP32, INT64 or BYTES")
    if datatype not in _DATATYPES:
        to_numpy(datatype, f"{path}.datatype")  # raises, saying which datatypes there are
    parameters = obj.get("parameters")
    if parameters is None:
        return Tensor(name, datatype, shape, None, {})
    parameters = _object(parameters, f"{path}.parameters")
    codecs.check_content_type(parameters.get("content_type"), datatype, path)
    return Tensor(name, datatype, shape, None, parameters)


def _numeric(data: Any, dtype: np.dtype, shape: list[int], path: str) -> np.ndarray:
    found, expected = shapes.flat_length(data), math.prod(shape)
    if found is not None and found != expected:
        raise InvalidInput(path, f"has {found} elements but shape {shape} needs {expected}")
    try:
        parsed = np.asarray(data)
    except ValueError:
        raise InvalidInput(path, "expected a rectangular (flat or nested) list of numbers") from None
    if parsed.dtype.kind != dtype.kind and parsed.size and not _acceptable(parsed, dtype):
        raise InvalidInput(path, f"expected {_NAMES[dtype.kind]} for datatype {from_numpy(dtype)}")
    if dtype.kind not in "iu":
        return reshape(parsed.astype(dtype, copy=False), shape, path)
    try:
        # Converting from the JSON values themselves keeps 64-bit integers exact.
        return reshape(np.asarray(data, dtype=dtype), shape, path)
    except OverflowError:
        raise InvalidInput(path, f"values out of range for datatype {from_numpy(dtype)}") from None


_NAMES = {"b": "true/false values", "i": "integers", "u": "integers", "f": "numbers"}
_DATATYPES = frozenset(DATATYPES)


def _acceptable(parsed: np.ndarray, dtype: np.dtype) -> bool:
    """Whether the JSON values suit the datatype: no strings for numbers, no fractions for integers."""
    kind = parsed.dtype.kind
    if dtype.kind == "b":
        return kind == "b"
    if dtype.kind == "f":
        return kind in "biuf"
    if kind == "f":
        # Large integers mixed with small ones parse as floats; they are still whole numbers.
        return bool(np.all(np.mod(parsed, 1) == 0)) and _fits(parsed, dtype)
    return kind in "iu"


def _fits(values: np.ndarray, dtype: np.dtype) -> bool:
    info = np.iinfo(dtype)
    return bool(values.min() >= info.min and values.max() <= info.max)


def reshape(array: np.ndarray, shape: list[int], path: str) -> np.ndarray:
    expected = math.prod(shape)
    if array.size != expected:
        raise InvalidInput(path, f"has {array.size} elements but shape {shape} needs {expected}")
    return array.reshape(shape)


def _object(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(path, "expected an object")
    return value


def _requested_outputs(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidInput("outputs", "expected a list of objects with a 'name'")
    names = []
    for i, item in enumerate(value):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise InvalidInput(f"outputs[{i}].name", "expected a string")
        names.append(name)
    return names


def to_payload(request: InferenceRequest) -> Payload:
    """The component-facing view: one input is its array, several a dict or a DataFrame."""
    meta: dict[str, Any] = {"puid": request.id} if request.id else {}
    if request.parameters:
        meta["parameters"] = request.parameters
    if request.parameters.get("content_type") == "pd":
        frame = codecs.to_dataframe(request.inputs)
        return Payload(frame, list(map(str, frame.columns)), meta, "v2")
    if len(request.inputs) == 1:
        return Payload(request.inputs[0].data, [], meta, "v2")
    data = {tensor.name: tensor.data for tensor in request.inputs}
    return Payload(data, list(data), meta, "v2")


def encode_outputs(result: Payload, requested: list[str] | None) -> list[dict[str, Any]]:
    """Turn a component's result into V2 output tensors, keeping only `requested`."""
    outputs = [_encode_output(name, value) for name, value in _named_results(result)]
    if requested is None or (len(outputs) == 1 and requested == [outputs[0]["name"]]):
        return outputs
    by_name = {output["name"]: output for output in outputs}
    for i, name in enumerate(requested):
        if name not in by_name:
            known = ", ".join(by_name)
            raise InvalidInput(f"outputs[{i}].name", f"unknown output {name!r}; the model produces {known}")
    return [by_name[name] for name in requested]


def _named_results(result: Payload) -> list[tuple[str, Any]]:
    data = result.data
    if isinstance(data, np.ndarray):
        return [(result.output_name or "output-0", data)]
    if isinstance(data, dict):
        return list(data.items())
    if codecs.is_dataframe(data):
        return [(str(column), data[column].to_numpy()) for column in data.columns]
    return [(result.output_name or "output-0", data)]


def _encode_output(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return codecs.bytes_output(name, [value], [1])
    if isinstance(value, (bytes, bytearray)):
        return codecs.bytes_output(name, [bytes(value)], [1])
    if isinstance(value, np.ndarray):
        array = value
    else:
        array = np.asarray(value)
        if array.dtype.kind in "SU":
            array = np.asarray(value, dtype=object)  # numpy's fixed-width strings drop trailing NUL bytes
    datatype = from_numpy(array.dtype)
    if datatype == "BYTES":
        return codecs.bytes_output(name, array.reshape(-1).tolist(), list(array.shape))
    if not array.flags.c_contiguous or not array.dtype.isnative:
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": array.reshape(-1)}


def non_finite_output(response: Any, in_binary: Callable[[str], bool]) -> str | None:
    """The name of the first output that holds inf or NaN and would go as JSON, which cannot carry them.

    Outputs sent in binary (and gRPC's) carry IEEE floats as they are, so `in_binary` ones pass.
    """
    outputs = response.get("outputs") if isinstance(response, dict) else None
    for output in outputs if isinstance(outputs, list) else ():
        data = output.get("data") if isinstance(output, dict) else None
        if not isinstance(data, np.ndarray) or data.dtype.kind != "f" or in_binary(str(output.get("name"))):
            continue
        if not np.isfinite(data).all():
            return str(output.get("name"))
    return None


def encode_response(
    model_name: str,
    model_version: str | None,
    request_id: str | None,
    outputs: list[dict[str, Any]],
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response: dict[str, Any] = {"model_name": model_name}
    if model_version:
        response["model_version"] = model_version
    if request_id is not None:
        response["id"] = request_id
    if parameters:
        response["parameters"] = parameters
    response["outputs"] = outputs
    return response


def as_body(request: InferenceRequest) -> dict[str, Any]:
    """A decoded request as its JSON body, for components that take the request as it came (`predict_raw`)."""
    body: dict[str, Any] = {"inputs": [_tensor_body(tensor) for tensor in request.inputs]}
    if request.id is not None:
        body["id"] = request.id
    if request.parameters:
        body["parameters"] = request.parameters
    if request.outputs is not None:
        body["outputs"] = [{"name": name} for name in request.outputs]
    return body


def _tensor_body(tensor: Tensor) -> dict[str, Any]:
    data = tensor.data.reshape(-1).tolist() if isinstance(tensor.data, np.ndarray) else list(tensor.data)
    body: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape, "data": data}
    if tensor.parameters:
        body["parameters"] = tensor.parameters
    return body
