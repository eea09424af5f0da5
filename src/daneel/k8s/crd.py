"""The ModelDeployment CustomResourceDefinition: the spec's schema, a status, printer columns and CEL rules.

The spec's structural schema is generated from the deployment model
(:func:`daneel.spec.schema.open_api_schema`), never written by hand. What a
schema cannot say, the API server checks with CEL rules: the traffic of the
predictors that are not shadows sums to 100 (a lone predictor may leave it
out), and there is one shadow at most. The API server refuses a CRD whose rules
might cost too much to evaluate, and it estimates a list without `maxItems` as
large as a request could make it, so the predictors are bounded.
"""

from __future__ import annotations

import copy
from typing import Any

from daneel.spec.model import API_VERSION, KIND
from daneel.spec.schema import GRAPH_DEPTH, open_api_schema

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "modeldeployments"
SHORT_NAME = "mdep"
NAME = f"{PLURAL}.{GROUP}"
#: Most predictors a ModelDeployment may have on a cluster (bounds the cost of the CEL rules).
MAX_PREDICTORS = 32
CONDITIONS = ("Ready", "Progressing", "Failed")

Schema = dict[str, Any]

_SERVED = "!(has(p.shadow) && p.shadow)"
RULES: list[Schema] = [
    {
        "rule": "self.predictors.filter(p, has(p.shadow) && p.shadow).size() <= 1",
        "message": "one shadow predictor at most",
        "fieldPath": ".predictors",
    },
    {
        "rule": (
            f"self.predictors.filter(p, {_SERVED}).size() == 1"
            f" ? self.predictors.exists(p, {_SERVED} && (!has(p.traffic) || p.traffic == 0 || p.traffic == 100))"
            f" : self.predictors.filter(p, {_SERVED}).map(p, has(p.traffic) ? p.traffic : 0).sum() == 100"
        ),
        "message": (
            "the traffic of the predictors that are not shadows sums to 100, and at least one is not a shadow; "
            "a single predictor may leave traffic out"
        ),
        "fieldPath": ".predictors",
    },
]

PRINTER_COLUMNS: list[Schema] = [
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Predictors", "type": "string", "jsonPath": ".status.traffic", "description": "Predictors and traffic."},
    {"name": "URL", "type": "string", "jsonPath": ".status.url", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _integer(description: str) -> Schema:
    return {"type": "integer", "format": "int64", "description": description}


def _string(description: str) -> Schema:
    return {"type": "string", "description": description}


def status_schema() -> Schema:
    """What the operator writes: conditions, per-predictor replicas, the generation seen, the URL."""
    predictor = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": _string("The predictor's name."),
            "traffic": _integer("Percent of requests it answers; 0 for a shadow."),
            "shadow": {"type": "boolean", "description": "Whether it receives copies only."},
            "replicas": _integer("Pods its Deployment wants."),
            "availableReplicas": _integer("Pods ready to take requests."),
        },
    }
    condition = {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string", "enum": list(CONDITIONS)},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": _string("A CamelCase word for programs."),
            "message": _string("What happened, for people."),
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": _integer("The generation the condition describes."),
        },
    }
    return {
        "type": "object",
        "description": "Written by the operator.",
        "properties": {
            "observedGeneration": _integer("The generation of the spec last reconciled."),
            "url": _string("Where the deployment takes requests inside the cluster."),
            "traffic": _string("The predictors and their share of requests, for `kubectl get`."),
            "predictors": _listed(predictor, "name"),
            "conditions": _listed(condition, "type"),
        },
    }


def _listed(items: Schema, key: str) -> Schema:
    return {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key], "items": items}


def schema(depth: int = GRAPH_DEPTH) -> Schema:
    """The openAPIV3Schema of a ModelDeployment: the spec's, with bounds and rules, and the status."""
    root = open_api_schema(depth)
    spec = root["properties"]["spec"]
    predictors = spec["properties"]["predictors"]
    predictors["maxItems"] = MAX_PREDICTORS
    predictors["x-kubernetes-list-type"] = "map"  # predictors merge by name; names are unique
    predictors["x-kubernetes-list-map-keys"] = ["name"]
    spec["x-kubernetes-validations"] = copy.deepcopy(RULES)
    root["properties"]["status"] = status_schema()
    return root


def crd(depth: int = GRAPH_DEPTH) -> Schema:
    """The CustomResourceDefinition of ModelDeployment, with graphs spelled out `depth` nodes deep."""
    names = {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL, "singular": KIND.lower()}
    version = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": copy.deepcopy(PRINTER_COLUMNS),
        "schema": {"openAPIV3Schema": schema(depth)},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": NAME},
        "spec": {
            "group": GROUP,
            "names": names | {"shortNames": [SHORT_NAME], "categories": ["daneel"]},
            "scope": "Namespaced",
            "versions": [version],
        },
    }
