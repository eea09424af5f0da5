"""Seldon's v1 protocol: SeldonMessage, Feedback and SeldonMessageList as Payloads.

A message holds exactly one of `data` (with `ndarray` or `tensor`, and optional
`names`), `strData`, `jsonData` or `binData`, plus an optional `meta`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import numpy as np

from daneel.errors import InvalidInput
from daneel.protocol import codecs, shapes
from daneel.protocol.payload import Payload, as_array

_KINDS = "data, strData, jsonData or binData"


@dataclass(slots=True)
class Feedback:
    request: Payload | None
    response: Payload | None
    truth: Payload | None
    reward: float
    routing: dict[str, int]


def decode_message(body: Any, path: str = "") -> Payload:
    """Validate a SeldonMessage and decode its data to numpy (or str, bytes, JSON)."""
    where = path or "body"
    if not isinstance(body, dict):
        raise InvalidInput(where, f"expected a JSON object holding {_KINDS}")
    meta = body.get("meta") or {}
    if not isinstance(meta, dict):
        raise InvalidInput(_join(path, "meta"), "expected an object")
    if not isinstance(meta.get("tags", {}), dict):
        raise InvalidInput(_join(path, "meta.tags"), "expected an object")
    if "data" in body:
        return _decode_data(body["data"], _join(path, "data"), meta)
    if "strData" in body:
        text = body["strData"]
        if not isinstance(text, str):
            raise InvalidInput(_join(path, "strData"), "expected a string")
        return Payload(text, [], meta, "strData")
    if "jsonData" in body:
        return Payload(body["jsonData"], [], meta, "jsonData")
    if "binData" in body:
        return Payload(_b64decode(body["binData"], _join(path, "binData")), [], meta, "binData")
    raise InvalidInput(where, f"expected one of {_KINDS}")


def _decode_data(data: Any, path: str, meta: dict[str, Any]) -> Payload:
    if not isinstance(data, dict):
        raise InvalidInput(path, "expected an object with 'ndarray' or 'tensor'")
    names = data.get("names") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInput(f"{path}.names", "expected a list of strings")
    if "ndarray" in data:
        return Payload(_ndarray(data["ndarray"], f"{path}.ndarray"), names, meta, "ndarray")
    if "tensor" in data:
        return Payload(_tensor(data["tensor"], f"{path}.tensor"), names, meta, "tensor")
    raise InvalidInput(path, "expected 'ndarray' or 'tensor'")


def _ndarray(value: Any, path: str) -> np.ndarray:
    if not isinstance(value, list):
        raise InvalidInput(path, "expected a (nested) list")
    try:
        array = np.asarray(value)
    except ValueError:
        raise InvalidInput(path, "expected a rectangular nested list; rows differ in length") from None
    if array.dtype.kind not in _NDARRAY_KINDS:
        raise InvalidInput(path, "expected a rectangular nested list of numbers, strings or true/false values")
    return array


#: numpy's kinds for what a JSON ndarray may hold: booleans, numbers, strings (kind O: objects, nulls, mixtures).
_NDARRAY_KINDS = frozenset("biufU")


def _tensor(value: Any, path: str) -> np.ndarray:
    if not isinstance(value, dict):
        raise InvalidInput(path, "expected an object with 'shape' and 'values'")
    shape = value.get("shape")
    expected = shapes.element_count(shape, f"{path}.shape")
    values = value.get("values")
    if not isinstance(values, list):
        raise InvalidInput(f"{path}.values", "expected a flat list of numbers")
    if len(values) != expected:
        raise InvalidInput(f"{path}.values", f"has {len(values)} values but shape {shape} needs {expected}")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError):
        raise InvalidInput(f"{path}.values", "expected a flat list of numbers") from None
    if array.ndim != 1:
        raise InvalidInput(f"{path}.values", "expected a flat list of numbers")
    return array.reshape(shape)


def _b64decode(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidInput(path, "expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(path, "expected a base64 string") from None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def decode_feedback(body: Any) -> Feedback:
    if not isinstance(body, dict):
        raise InvalidInput("body", "expected a JSON object with request, response, reward and truth")
    reward = body.get("reward", 0.0)
    if not isinstance(reward, (int, float)) or isinstance(reward, bool):
        raise InvalidInput("reward", "expected a number")
    parts = {key: _optional_message(body.get(key), key) for key in ("request", "response", "truth")}
    routing = parts["response"].meta.get("routing", {}) if parts["response"] else {}
    if not isinstance(routing, dict):
        raise InvalidInput("response.meta.routing", "expected an object of node name to child index")
    return Feedback(parts["request"], parts["response"], parts["truth"], float(reward), routing)


def _optional_message(value: Any, path: str) -> Payload | None:
    return None if value is None else decode_message(value, path)


def decode_message_list(body: Any) -> list[Payload]:
    messages = body.get("seldonMessages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        raise InvalidInput("seldonMessages", "expected a non-empty list of SeldonMessages")
    return [decode_message(m, f"seldonMessages[{i}]") for i, m in enumerate(messages)]


def encode_message(result: Payload, form: str) -> dict[str, Any]:
    """A SeldonMessage for `result`, in the request's `form` where the data allows."""
    data = result.data
    if isinstance(data, str):
        body: dict[str, Any] = {"strData": data}
    elif isinstance(data, (bytes, bytearray)):
        body = {"binData": base64.b64encode(data).decode("ascii")}
    elif isinstance(data, dict) or (form == "jsonData" and not isinstance(data, np.ndarray)):
        body = {"jsonData": data}
    else:
        body = {"data": _encode_data(data, result.names, form)}
    body["meta"] = result.meta
    return body


def _encode_data(data: Any, names: list[str], form: str) -> dict[str, Any]:
    if codecs.is_dataframe(data):
        names = names or [str(column) for column in data.columns]
        data = data.to_numpy()
    array = as_array(data)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError("it holds inf or NaN, which JSON cannot carry")
    if not names and array.ndim == 2:
        names = [f"t:{i}" for i in range(array.shape[1])]  # Seldon's names for unnamed columns
    if form == "tensor" and array.dtype.kind in "biuf":
        values = array.reshape(-1).astype(np.float64, copy=False)
        return {"names": names, "tensor": {"shape": list(array.shape), "values": values}}
    return {"names": names, "ndarray": jsonable(array)}


def jsonable(array: np.ndarray) -> Any:
    """What orjson can serialize fast: numeric arrays as they are, the rest as lists."""
    if array.ndim and array.dtype.kind in "biuf" and array.flags.c_contiguous and array.dtype.isnative:
        return array
    return array.tolist()


def error_body(http_code: int, info: str, reason: str) -> dict[str, Any]:
    return {"status": {"code": http_code, "info": info, "reason": reason, "status": "FAILURE"}}
