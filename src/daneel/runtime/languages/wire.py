"""The frames daneel and a component's child process exchange over their Unix socket.

A frame is `u32 length | u32 id | u32 header length | header | blobs`, integers little-endian,
`length` counting everything after itself. The header is UTF-8 JSON; numeric arrays travel outside
it as blobs of little-endian float64, each described in the header by `{"f64": shape, "blob": i}`.
Any other value goes as `{"json": value}` inside the header. Requests and answers carry the same
id, so that several calls can be in flight on one connection; id 0 is the child's greeting.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson

from daneel.errors import InvalidInput

PREFIX = struct.Struct("<III")
_NUMERIC = "fiub"


class Frame:
    """A decoded frame: its id, its header, and the blobs that followed it."""

    __slots__ = ("blobs", "header", "id")

    def __init__(self, id: int, header: dict[str, Any], blobs: list[bytearray]) -> None:
        self.id = id
        self.header = header
        self.blobs = blobs


def encode(id: int, header: dict[str, Any], blobs: list[bytes]) -> bytes:
    if blobs:
        header["blobs"] = [len(blob) for blob in blobs]
    head = orjson.dumps(header, default=_jsonable, option=orjson.OPT_SERIALIZE_NUMPY)
    size = sum(len(blob) for blob in blobs)
    return b"".join((PREFIX.pack(8 + len(head) + size, id, len(head)), head, *blobs))


def decode(body: bytearray | bytes) -> Frame:
    """A frame from the bytes after its length field."""
    id, size = struct.unpack_from("<II", body)
    header = orjson.loads(bytes(body[8 : 8 + size]))
    blobs, at = [], 8 + size
    for length in header.get("blobs", ()):
        blobs.append(bytearray(body[at : at + length]))
        at += length
    return Frame(id, header, blobs)


def value(data: Any, blobs: list[bytes], field: str = "data") -> dict[str, Any]:
    """`data` as the header describes it; a numeric array's bytes are appended to `blobs`."""
    if isinstance(data, np.ndarray) and data.dtype.kind in _NUMERIC:
        blobs.append(np.ascontiguousarray(data, dtype="<f8").tobytes())
        return {"f64": list(data.shape), "blob": len(blobs) - 1}
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a DataFrame: its columns by name
        return {"json": {str(k): list(v.values()) for k, v in data.to_dict().items()}}
    try:
        orjson.dumps(data, default=_jsonable, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:
        raise InvalidInput(field, f"{type(data).__name__} values cannot be sent to the component's process") from None
    return {"json": data}


def unvalue(described: Any, blobs: list[bytearray]) -> Any:
    """The value a header describes: an array for `f64`, the JSON value otherwise."""
    if not isinstance(described, dict):
        return described
    if "f64" in described:
        return np.frombuffer(blobs[int(described["blob"])], dtype="<f8").reshape(described["f64"])
    return described.get("json")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):  # of strings or bytes (V2's BYTES), or objects
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (bytes, bytearray)):
        return obj.decode("utf-8", "replace")
    raise TypeError(type(obj).__name__)
