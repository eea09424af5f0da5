"""Named tensors declared in a model folder's `daneel.yaml`, for runtimes whose files do not say them all.

Parameter `inputs` (or `outputs`) is a list of names, or of objects with `name` and, optionally,
`datatype` (a V2 datatype) and `shape` (-1 for any size). A name given alone keeps what the model
file says of its datatype and shape, or nothing where it says nothing.
"""

from __future__ import annotations

from typing import Any

from daneel.errors import LoadError
from daneel.protocol.datatypes import DATATYPES
from daneel.runtime.onnx import Node


def declared(key: str, value: Any) -> list[Node | str]:
    """Parameter `key` as a list: a name alone, or a Node where a datatype was given."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise LoadError(f"parameter {key}: expected a list of names or of {{name, datatype, shape}}, got {value!r}")
    return [_entry(key, item) for item in value]


def _entry(key: str, item: Any) -> Node | str:
    if isinstance(item, str):
        return item
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise LoadError(f"parameter {key}: each entry is a name or an object with a name, got {item!r}")
    unknown = set(item) - {"name", "datatype", "shape"}
    if unknown:
        raise LoadError(f"parameter {key}: {item['name']}: unknown field(s) {', '.join(sorted(unknown))}")
    datatype = item.get("datatype", "FP32")
    if datatype not in DATATYPES or datatype == "BYTES":
        raise LoadError(f"parameter {key}: {item['name']}: datatype {datatype!r} is not a numeric V2 datatype")
    shape = item.get("shape")
    if shape is not None and not (isinstance(shape, list) and all(isinstance(d, int) and d >= -1 for d in shape)):
        raise LoadError(f"parameter {key}: {item['name']}: shape must be a list of sizes (-1 for any), got {shape!r}")
    return Node(item["name"], datatype, shape)


def merge(key: str, declared: list[Node | str], found: list[Node]) -> list[Node]:
    """`found` (what the model file says) renamed, or replaced, by what the parameter declares."""
    if not declared:
        return found
    if found and len(declared) != len(found):
        names = ", ".join(node.name for node in found)
        raise LoadError(f"parameter {key}: {len(declared)} given, but the model has {len(found)} ({names})")
    nodes = []
    for i, entry in enumerate(declared):
        if isinstance(entry, Node):
            nodes.append(entry)
        elif found:
            nodes.append(Node(entry, found[i].datatype, found[i].shape, found[i].symbols))
        else:
            nodes.append(Node(entry, "FP32", None))
    return nodes


def unnamed(prefix: str, count: int, datatype: str = "FP32") -> list[Node]:
    return [Node(f"{prefix}-{i}", datatype, None) for i in range(count)]
