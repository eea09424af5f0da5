"""V2 content types: `np` (the default), `pd`, `str` and `base64`."""

from __future__ import annotations

import base64
import binascii
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from daneel.errors import InvalidInput

if TYPE_CHECKING:
    from daneel.protocol.v2 import Tensor

CONTENT_TYPES = ("np", "pd", "str", "base64")
_BYTES_ONLY = ("str", "base64")


def check_content_type(value: Any, datatype: str | None, path: str) -> str | None:
    """Validate `parameters.content_type` of a tensor against its datatype, or of a request (no datatype)."""
    if value is None:
        return None
    field = f"{path}.parameters.content_type" if path else "parameters.content_type"
    if value not in CONTENT_TYPES:
        raise InvalidInput(field, f"unknown content type {value!r}; expected one of {', '.join(CONTENT_TYPES)}")
    if value in _BYTES_ONLY and datatype is not None and datatype != "BYTES":
        raise InvalidInput(field, f"content type {value!r} needs datatype BYTES, got {datatype}")
    return str(value)


def decode_bytes(data: Any, shape: list[int], content_type: str | None, path: str) -> Any:
    """BYTES data: a list of str (`str`), of bytes (`base64`), or an object array."""
    items = _flatten(data)
    if not all(isinstance(item, str) for item in items):
        raise InvalidInput(path, "expected strings for datatype BYTES")
    check_count(items, shape, path)
    if content_type == "base64":
        return [_b64decode(item, f"{path}[{i}]") for i, item in enumerate(items)]
    if content_type == "str":
        return items
    return object_array(items, shape)


def check_count(items: list[Any], shape: list[int], path: str) -> None:
    """A tensor's elements must be as many as its shape holds."""
    expected = math.prod(shape)
    if len(items) != expected:
        raise InvalidInput(path, f"has {len(items)} elements but shape {shape} needs {expected}")


def object_array(items: list[Any], shape: list[int]) -> np.ndarray:
    """BYTES elements (str or bytes) as an object array of the tensor's shape, each element kept as it is."""
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array.reshape(shape)


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item))
    return flat


def _b64decode(text: str, path: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(path, "expected base64-encoded bytes") from None


def bytes_output(name: str, items: list[Any], shape: list[int]) -> dict[str, Any]:
    """A BYTES output: text stays text; bytes that are not UTF-8 go out as base64."""
    texts = [_as_text(item) for item in items]
    if all(text is not None for text in texts):
        content_type, data = "str", texts
    else:
        content_type, data = "base64", [_b64(item) for item in items]
    return {
        "name": name,
        "shape": shape,
        "datatype": "BYTES",
        "parameters": {"content_type": content_type},
        "data": data,
    }


def _as_text(item: Any) -> str | None:
    if isinstance(item, (bytes, bytearray)):
        try:
            return bytes(item).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return item if isinstance(item, str) else str(item)


def _b64(item: Any) -> str:
    raw = item if isinstance(item, (bytes, bytearray)) else str(item).encode()
    return base64.b64encode(raw).decode("ascii")


def is_dataframe(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns")


def to_dataframe(inputs: list[Tensor]) -> Any:
    """Inputs as the columns of a pandas DataFrame (request content type `pd`)."""
    try:
        import pandas as pd
    except ImportError:
        raise InvalidInput(
            "parameters.content_type", "content type 'pd' needs pandas installed (pip install 'daneel[pandas]')"
        ) from None
    columns = {}
    for i, tensor in enumerate(inputs):
        data = np.asarray(tensor.data, dtype=object if tensor.datatype == "BYTES" else None)
        if data.ndim > 1 and data.shape[1] == 1:
            data = data.reshape(-1)
        if data.ndim != 1:
            raise InvalidInput(f"inputs[{i}].shape", "a 'pd' column must be 1-D or of shape [n, 1]")
        columns[tensor.name] = data
    lengths = {len(column) for column in columns.values()}
    if len(lengths) > 1:
        raise InvalidInput("inputs", "all columns of a 'pd' request need the same length")
    return pd.DataFrame(columns)
