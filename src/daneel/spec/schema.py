"""The deployment's schema for tools: a JSON Schema for editors, and the structural schema of its CRD.

daneel.k8s.crd builds the CustomResourceDefinition around :func:`open_api_schema`.

Kubernetes wants a *structural* schema: every field typed, no `$ref`, no `anyOf`
with null (it has `nullable`), maps as `additionalProperties`, free-form parts
marked `x-kubernetes-preserve-unknown-fields`. A graph nests without end, a
structural schema cannot, so nodes are spelled out to a fixed depth and kept
as they are below it (daneel validates the whole graph when it loads the file).
"""

from __future__ import annotations

import copy
from typing import Any

from daneel.spec.model import API_VERSION, KIND, SELDON_API_VERSIONS, SELDON_KIND, Deployment

#: Levels of graph nodes the CRD spells out; deeper nodes are kept unchecked by Kubernetes.
GRAPH_DEPTH = 8

_FREE_FORM = "x-kubernetes-preserve-unknown-fields"
_DROPPED = ("title", "default", "$defs")

Schema = dict[str, Any]


def json_schema() -> Schema:
    """The JSON Schema of a deployment file (field names as in the file)."""
    schema = Deployment.model_json_schema(by_alias=True)
    properties = schema["properties"]
    properties["apiVersion"]["enum"] = [API_VERSION, *SELDON_API_VERSIONS]
    properties["kind"]["enum"] = [KIND, SELDON_KIND]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": KIND}


def open_api_schema(depth: int = GRAPH_DEPTH) -> Schema:
    """The structural openAPIV3Schema of a ModelDeployment object."""
    schema = Deployment.model_json_schema(by_alias=True)
    defs = schema["$defs"]
    spec = _structural(schema["properties"]["spec"], defs, (), depth)
    return {
        "type": "object",
        "description": schema.get("description", ""),
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},  # Kubernetes owns metadata's schema
            "spec": spec,
            "status": {"type": "object", _FREE_FORM: True},
        },
        "required": ["spec"],
    }


def _structural(node: Schema, defs: Schema, seen: tuple[str, ...], depth: int) -> Schema:
    if "$ref" in node:
        return _referenced(node, defs, seen, depth)
    if "anyOf" in node:
        return _optional(node, defs, seen, depth)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {name: _structural(field, defs, seen, depth) for name, field in value.items()}
        elif key == "items":
            out[key] = _structural(value, defs, seen, depth)
        elif key == "additionalProperties":
            out.update(_map_values(value, defs, seen, depth))
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            # JSON Schema gives the bound itself; OpenAPI v3.0 a flag beside minimum/maximum
            out[key.replace("exclusiveM", "m")] = value
            out[key] = True
        else:
            out[key] = copy.deepcopy(value)  # no shared lists: YAML would print them as anchors
    if "type" not in out:
        out[_FREE_FORM] = True  # a value of any type, such as a parameter's
    return {"type": out.pop("type"), **out} if "type" in out else out


def _referenced(node: Schema, defs: Schema, seen: tuple[str, ...], depth: int) -> Schema:
    name = node["$ref"].rsplit("/", 1)[-1]
    siblings = {key: value for key, value in node.items() if key != "$ref"}
    if seen.count(name) >= depth:
        return {**_described(siblings), "type": "object", _FREE_FORM: True}
    return _structural({**defs[name], **siblings}, defs, (*seen, name), depth)


def _optional(node: Schema, defs: Schema, seen: tuple[str, ...], depth: int) -> Schema:
    rest = {key: value for key, value in node.items() if key != "anyOf"}
    choices = [choice for choice in node["anyOf"] if choice != {"type": "null"}]
    if len(choices) != 1:
        return {**_described(rest), _FREE_FORM: True}
    out = _structural({**choices[0], **rest}, defs, seen, depth)
    if len(choices) < len(node["anyOf"]):
        out["nullable"] = True
    return out


def _map_values(value: Any, defs: Schema, seen: tuple[str, ...], depth: int) -> Schema:
    if value is False:  # closed objects: Kubernetes prunes unknown fields anyway
        return {}
    if value is True:
        return {_FREE_FORM: True}
    return {"additionalProperties": _structural(value, defs, seen, depth)}


def _described(node: Schema) -> Schema:
    return {"description": node["description"]} if "description" in node else {}
