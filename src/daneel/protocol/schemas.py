"""JSON Schemas (draft 2020-12, as OpenAPI 3.1 uses them) of both protocols' wire messages.

They are built from the same tables the codecs check requests against (the datatypes, the
content types, Seldon's error body), so the OpenAPI document says what the decoders accept.
References point into an OpenAPI document's `components.schemas`.
"""

from __future__ import annotations

from typing import Any

from daneel.protocol import v1
from daneel.protocol.codecs import CONTENT_TYPES
from daneel.protocol.datatypes import DATATYPES

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def element(datatype: str, response: bool = False) -> Schema:
    """One element of a tensor of `datatype`, as JSON carries it; a response writes NaN and infinities as null."""
    if datatype == "BOOL":
        return {"type": "boolean"}
    if datatype == "BYTES":
        return {"type": "string"}
    if datatype.startswith("UINT"):
        return {"type": "integer", "minimum": 0}
    if datatype.startswith("INT"):
        return {"type": "integer"}
    return {"type": ["number", "null"]} if response else {"type": "number"}


def nested(item: Schema, depth: int) -> Schema:
    """A list of `item`, flat or nested up to `depth` levels: V2's `data` may be either."""
    schema: Schema = {"type": "array", "items": item}
    for _ in range(depth - 1):
        schema = {"type": "array", "items": {"anyOf": [item, schema]}}
    return schema


def shape(dims: list[int] | None = None) -> Schema:
    """A request's shape: non-negative integers, or where metadata knows them, its dimensions (-1: any)."""
    if dims is None:
        return {"type": "array", "items": {"type": "integer", "minimum": 0}}
    fixed = [{"type": "integer", "minimum": 0} if d < 0 else {"const": d} for d in dims]
    return {"type": "array", "prefixItems": fixed, "minItems": len(dims), "maxItems": len(dims)}


def _scalar() -> Schema:
    return {"type": ["number", "boolean", "string"]}


def _tensor_parameters() -> Schema:
    return {
        "type": "object",
        "properties": {
            "content_type": {"enum": list(CONTENT_TYPES)},
            "binary_data_size": {"type": "integer", "minimum": 0},
            "binary_data": {"type": "boolean"},
        },
    }


def request_input(name: str | None = None, datatype: str | None = None, dims: list[int] | None = None) -> Schema:
    """An input tensor; `name`, `datatype` and `dims` narrow it to what a model's metadata declares."""
    depth = max(len(dims), 1) if dims is not None else 4
    return {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"const": name} if name else {"type": "string", "minLength": 1},
            "shape": shape(dims),
            "datatype": {"const": datatype} if datatype else {"enum": list(DATATYPES)},
            "data": nested(element(datatype) if datatype else _scalar(), depth),
            "parameters": ref("TensorParameters"),
        },
    }


_ZERO: dict[str, Any] = {"BOOL": False, "BYTES": ""}


def example_input(name: str, datatype: str, dims: list[int]) -> dict[str, Any]:
    """An input of one row (a dimension of any size taken as 1) holding zeros: a request that fits the metadata."""
    shape = [1 if d < 0 else d for d in dims]
    size = 1
    for d in shape:
        size *= d
    return {"name": name, "shape": shape, "datatype": datatype, "data": [_ZERO.get(datatype, 0)] * size}


def inference_request(inputs: Schema) -> Schema:
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": ref("RequestParameters"),
            "inputs": {"type": "array", "minItems": 1, "items": inputs},
            "outputs": {"type": "array", "items": ref("RequestedOutput")},
        },
    }


def response_output(name: str | None = None, datatype: str | None = None) -> Schema:
    """An output tensor: its data flat, or absent when it travels as binary after the JSON."""
    return {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"const": name} if name else {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"const": datatype} if datatype else {"enum": list(DATATYPES)},
            "data": {"type": "array", "items": element(datatype, True) if datatype else {}},
            "parameters": ref("TensorParameters"),
        },
    }


def inference_response(outputs: Schema) -> Schema:
    return {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "outputs": {"type": "array", "items": outputs},
        },
    }


def _tensor_metadata() -> Schema:
    return {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": -1}, "description": "-1: any size"},
        },
    }


def _v2() -> dict[str, Schema]:
    strings = {"type": "array", "items": {"type": "string"}}
    return {
        "V2Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "TensorParameters": _tensor_parameters(),
        "RequestParameters": {
            "type": "object",
            "properties": {"content_type": {"enum": list(CONTENT_TYPES)}, "binary_data_output": {"type": "boolean"}},
        },
        "RequestedOutput": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "parameters": ref("TensorParameters")},
        },
        "RequestInput": request_input(),
        "InferenceRequest": {
            **inference_request(ref("RequestInput")),
            "examples": [{"inputs": [example_input("input-0", "FP64", [1, 4])]}],
        },
        "ResponseOutput": response_output(),
        "InferenceResponse": inference_response(ref("ResponseOutput")),
        "TensorMetadata": _tensor_metadata(),
        "ServerMetadata": {
            "type": "object",
            "required": ["name", "version", "extensions"],
            "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "extensions": strings},
        },
        "ModelMetadata": {
            "type": "object",
            "required": ["name", "versions", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": strings,
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": ref("TensorMetadata")},
                "outputs": {"type": "array", "items": ref("TensorMetadata")},
                "parameters": {"type": "object"},
            },
        },
        "RepositoryIndexRequest": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        "RepositoryIndex": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "state", "reason"],
                "properties": {
                    "name": {"type": "string"},
                    "state": {"enum": ["LOADING", "READY", "UNAVAILABLE"]},
                    "reason": {"type": "string"},
                },
            },
        },
    }


def _seldon_error() -> Schema:
    """Seldon's error body, its fields and the constant `status` taken from the one function that writes it."""
    sample = v1.error_body(400, "", "")["status"]
    types = {"code": {"type": "integer"}, "info": {"type": "string"}, "reason": {"type": "string"}}
    fields = {key: types.get(key, {"const": value}) for key, value in sample.items()}
    status = {"type": "object", "required": list(sample), "properties": fields}
    return {"type": "object", "required": ["status"], "properties": {"status": status}}


def _seldon() -> dict[str, Schema]:
    # A response's meta carries the request's as it came, so only what the decoder checks is constrained.
    meta = {
        "type": "object",
        "properties": {
            "puid": {"description": "the request's id: the request's own, or one made up for it"},
            "tags": {"type": "object"},
            "routing": {"description": "each router's choice, by node name"},
            "requestPath": {"description": "each node's implementation, by node name"},
            "metrics": {"description": "the custom metrics the model reported"},
        },
    }
    tensor = {
        "type": "object",
        "required": ["shape", "values"],
        "properties": {
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "values": {"type": "array", "items": {"type": ["number", "null"]}},
        },
    }
    data = {
        "type": "object",
        "properties": {
            "names": {"type": "array", "items": {"type": "string"}},
            "ndarray": {"type": "array", "description": "a (nested) list, rectangular"},
            "tensor": ref("SeldonTensor"),
        },
    }
    kinds = ("data", "strData", "jsonData", "binData")
    one = {"data": {"ndarray": [[0.0, 0.0, 0.0, 0.0]]}}
    message: Schema = {
        "type": "object",
        "description": f"holds one of {', '.join(kinds)}, and an optional meta",
        "anyOf": [{"required": [kind]} for kind in kinds],
        "properties": {
            "data": ref("SeldonData"),
            "strData": {"type": "string"},
            "jsonData": {},
            "binData": {"type": "string", "contentEncoding": "base64"},
            "meta": ref("SeldonMeta"),
        },
        "examples": [one],
    }
    feedback: Schema = {
        "type": "object",
        "properties": {
            "request": ref("SeldonMessage"),
            "response": ref("SeldonMessage"),
            "truth": ref("SeldonMessage"),
            "reward": {"type": "number"},
        },
        "examples": [{"request": one, "reward": 1.0}],
    }
    messages = {"type": "array", "minItems": 1, "items": ref("SeldonMessage")}
    return {
        "SeldonError": _seldon_error(),
        "SeldonMeta": meta,
        "SeldonTensor": tensor,
        "SeldonData": data,
        "SeldonMessage": message,
        "Feedback": feedback,
        "SeldonMessageList": {
            "type": "object",
            "required": ["seldonMessages"],
            "properties": {"seldonMessages": messages},
            "examples": [{"seldonMessages": [one, one]}],
        },
        "SeldonMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": {"type": "object"}},
                "outputs": {"type": "array", "items": {"type": "object"}},
            },
        },
    }


def components() -> dict[str, Schema]:
    """Every named schema both protocols' documents refer to."""
    return {**_v2(), **_seldon()}
