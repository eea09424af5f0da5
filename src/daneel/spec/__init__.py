"""The deployment file: its schema (a pydantic model), loading and validating it, and its JSON Schema and CRD."""

from daneel.spec.load import as_model_deployment, load, parse
from daneel.spec.model import (
    BUILTIN_TYPES,
    LANGUAGE_SERVERS,
    PREPACKAGED_SERVERS,
    Deployment,
    Detector,
    Node,
    NodeType,
    Parameter,
    Predictor,
    node_type,
)
from daneel.spec.problems import InvalidDeployment, Problem
from daneel.spec.schema import json_schema
from daneel.spec.validate import check, image_nodes

__all__ = [
    "BUILTIN_TYPES",
    "Deployment",
    "Detector",
    "InvalidDeployment",
    "LANGUAGE_SERVERS",
    "Node",
    "NodeType",
    "PREPACKAGED_SERVERS",
    "Parameter",
    "Predictor",
    "Problem",
    "as_model_deployment",
    "check",
    "image_nodes",
    "json_schema",
    "load",
    "node_type",
    "parse",
]
