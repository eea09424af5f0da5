"""Tensors as raw bytes: Triton's binary tensor data extension over REST, and gRPC's raw contents.

A tensor's raw form is its elements in row-major order, little-endian, without padding; a BOOL
is one byte (0 or 1); a BYTES element is its length as a 4-byte little-endian unsigned integer
followed by that many bytes.

Over REST the binary parts follow the request's JSON header in the body: the
`Inference-Header-Content-Length` HTTP header gives the JSON's length, and each input sent in
binary gives its size in `parameters.binary_data_size`, in the order of `inputs`. A response puts
the outputs the request asked for in binary (`parameters.binary_data_output: true` for all,
`outputs[i].parameters.binary_data` for one) after its JSON in the same way.
"""

from __future__ import annotations

import base64
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from daneel.errors import InvalidInput
from daneel.protocol import codecs, v2
from daneel.protocol.datatypes import to_numpy

#: The name servers report in their metadata's `extensions` for this extension.
EXTENSION = "binary_tensor_data"

_LENGTH = struct.Struct("<I")


# Raw tensors, shared by REST's binary parts and gRPC's raw contents


def tensor_data(raw: bytes | memoryview, tensor: v2.Tensor, path: str) -> Any:
    """The data of `tensor` (checked header, no data yet) from its raw bytes; errors name `path`."""
    if tensor.datatype == "BYTES":
        return bytes_data(split_bytes(raw, path), tensor.shape, tensor.parameters.get("content_type"), path)
    dtype = to_numpy(tensor.datatype, path)
    expected = math.prod(tensor.shape) * dtype.itemsize
    if len(raw) != expected:
        shape = tensor.shape
        raise InvalidInput(path, f"has {len(raw)} bytes but shape {shape} of {tensor.datatype} needs {expected}")
    # A copy: it is writable and native-endian, as arrays decoded from JSON are.
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(tensor.shape)


def split_bytes(raw: bytes | memoryview, path: str) -> list[bytes]:
    """The elements of a raw BYTES tensor, each stored after its 4-byte length."""
    view = memoryview(raw)
    items: list[bytes] = []
    offset = 0
    while offset < len(view):
        if offset + _LENGTH.size > len(view):
            raise InvalidInput(path, f"BYTES element {len(items)} has a cut-off 4-byte length")
        (size,) = _LENGTH.unpack_from(view, offset)
        offset += _LENGTH.size
        if offset + size > len(view):
            raise InvalidInput(path, f"BYTES element {len(items)} says {size} bytes but {len(view) - offset} follow")
        items.append(bytes(view[offset : offset + size]))
        offset += size
    return items


def bytes_data(items: list[bytes], shape: list[int], content_type: str | None, path: str) -> Any:
    """BYTES elements as the model sees them: str for content type `str`, else bytes.

    `base64` gives a list of bytes, as the same tensor sent as JSON does once decoded; without a
    content type, an object array of the tensor's shape.
    """
    codecs.check_count(items, shape, path)
    if content_type == "str":
        return [_text(item, f"{path}[{i}]") for i, item in enumerate(items)]
    if content_type == "base64":
        return items
    return codecs.object_array(items, shape)


def _text(item: bytes, path: str) -> str:
    try:
        return item.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(path, "expected UTF-8 text for content type 'str'") from None


def output_bytes(output: dict[str, Any]) -> bytes:
    """The raw form of an encoded output tensor ({name, datatype, shape, data, parameters?})."""
    if output["datatype"] == "BYTES":
        return join_bytes(bytes_items(output))
    dtype = to_numpy(output["datatype"], "outputs.datatype")
    array = np.asarray(output["data"], dtype=dtype)
    return array.astype(dtype.newbyteorder("<"), copy=False).tobytes()


def bytes_items(output: dict[str, Any]) -> list[bytes]:
    """A BYTES output's elements as bytes, undoing the base64 that JSON needed."""
    data = output["data"]
    items = data.reshape(-1).tolist() if isinstance(data, np.ndarray) else _flat(data)
    if (output.get("parameters") or {}).get("content_type") == "base64":
        return [base64.b64decode(item) for item in items]
    return [item if isinstance(item, bytes) else str(item).encode() for item in items]


def _flat(data: Any) -> list[Any]:
    if isinstance(data, (str, bytes)):
        return [data]
    flat = np.empty(0, dtype=object) if not data else np.asarray(data, dtype=object).reshape(-1)
    return list(flat)


def join_bytes(items: list[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(item)) + item for item in items)


def raw_parameters(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """An output's parameters once its data is raw: content type `base64` no longer applies."""
    return {k: v for k, v in (parameters or {}).items() if not (k == "content_type" and v == "base64")}


# The REST extension


def split(body: bytes | bytearray, header_length: str | None) -> tuple[bytes | bytearray, memoryview | None]:
    """The JSON header and the binary parts after it; no binary parts without the length header."""
    if header_length is None:
        return body, None
    field_name = "Inference-Header-Content-Length"
    if not (header_length.isascii() and header_length.isdigit()):  # str.isdigit takes '²' and '٣' too
        raise InvalidInput(field_name, f"expected the JSON header's length in bytes, got {header_length!r}")
    length = int(header_length)
    if length > len(body):
        raise InvalidInput(field_name, f"says {length} bytes but the body has {len(body)}")
    view = memoryview(body)
    return bytes(view[:length]), view[length:]


def decode_request(header: Any, blob: bytes | memoryview) -> v2.InferenceRequest:
    """A request whose inputs with `parameters.binary_data_size` take their data from `blob`, in order."""
    parts = _Parts(memoryview(blob))
    request = v2.decode_request(header, parts.decode)
    left = len(parts.blob) - parts.offset
    if left:
        raise InvalidInput("body", f"{left} bytes after the JSON header belong to no input's binary_data_size")
    return request


@dataclass
class _Parts:
    blob: memoryview
    offset: int = 0

    def decode(self, obj: Any, path: str) -> v2.Tensor:
        size = _binary_size(obj, path)
        if size is None:
            return v2.decode_tensor(obj, path)
        tensor = v2.tensor_header(obj, path)
        tensor.parameters = {k: v for k, v in tensor.parameters.items() if k != "binary_data_size"}
        if obj.get("data") is not None:
            raise InvalidInput(f"{path}.data", "must be left out when parameters.binary_data_size is given")
        end = self.offset + size
        if end > len(self.blob):
            left = len(self.blob) - self.offset
            raise InvalidInput(f"{path}.parameters.binary_data_size", f"is {size} but only {left} bytes are left")
        tensor.data = tensor_data(self.blob[self.offset : end], tensor, f"{path}.parameters.binary_data_size")
        self.offset = end
        return tensor


def _binary_size(obj: Any, path: str) -> int | None:
    parameters = obj.get("parameters") if isinstance(obj, dict) else None
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(f"{path}.parameters.binary_data_size", "expected a size in bytes")
    return size


@dataclass(slots=True)
class BinaryOutputs:
    """Which outputs a request wants in binary: all by default, or each by name."""

    default: bool = False
    named: dict[str, bool] = field(default_factory=dict)

    def wants(self, name: str) -> bool:
        return self.named.get(name, self.default)


def binary_outputs(header: Any) -> BinaryOutputs:
    """Read, and take out of the request's parameters, which outputs it wants in binary."""
    if not isinstance(header, dict):
        return BinaryOutputs()
    parameters = header.get("parameters")
    default = parameters.pop("binary_data_output", False) if isinstance(parameters, dict) else False
    wanted = BinaryOutputs(_flag(default, "parameters.binary_data_output"))
    outputs = header.get("outputs")
    for i, output in enumerate(outputs if isinstance(outputs, list) else []):
        options = output.get("parameters") if isinstance(output, dict) else None
        if isinstance(options, dict) and "binary_data" in options and isinstance(output.get("name"), str):
            wanted.named[output["name"]] = _flag(options["binary_data"], f"outputs[{i}].parameters.binary_data")
    return wanted


def _flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(path, "expected true or false")
    return value


def encode_response(response: Any, wanted: BinaryOutputs) -> tuple[Any, list[bytes]]:
    """The JSON header and the binary parts of a response; no parts when no output is wanted in binary."""
    outputs = response.get("outputs") if isinstance(response, dict) else None
    if not isinstance(outputs, list) or not any(_binary(output, wanted) for output in outputs):
        return response, []
    parts: list[bytes] = []
    header_outputs = []
    for output in outputs:
        if not _binary(output, wanted):
            header_outputs.append(output)
            continue
        raw = output_bytes(output)
        parts.append(raw)
        parameters = {**raw_parameters(output.get("parameters")), "binary_data_size": len(raw)}
        described = {k: v for k, v in output.items() if k not in ("data", "parameters")}
        header_outputs.append({**described, "parameters": parameters})
    return {**response, "outputs": header_outputs}, parts


def _binary(output: Any, wanted: BinaryOutputs) -> bool:
    return isinstance(output, dict) and isinstance(output.get("name"), str) and wanted.wants(output["name"])
