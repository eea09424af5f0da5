"""The JSON Schema for editors and the CustomResourceDefinition for Kubernetes."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from daneel.spec import json_schema
from daneel.spec.schema import GRAPH_DEPTH, open_api_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "deployments").glob("*.yaml"))
FREE_FORM = "x-kubernetes-preserve-unknown-fields"


def examples() -> list[Any]:
    return [yaml.safe_load(path.read_text()) for path in EXAMPLES]


def schemas(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema inside an OpenAPI schema, with where it sits."""
    yield where, node
    for name, child in node.get("properties", {}).items():
        yield from schemas(child, f"{where}.{name}")
    if isinstance(node.get("items"), dict):
        yield from schemas(node["items"], f"{where}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schemas(node["additionalProperties"], f"{where}{{}}")


def test_the_json_schema_is_valid_and_accepts_the_examples() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for document in examples():
        assert list(validator.iter_errors(document)) == []


def test_the_json_schema_rejects_what_loading_rejects() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    document = examples()[0]
    document["spec"]["predictors"][0]["graph"]["modelUrl"] = "x"
    document["kind"] = "Deployment"
    messages = sorted(error.message for error in validator.iter_errors(document))
    assert len(messages) == 2
    assert "'Deployment' is not one of ['ModelDeployment', 'SeldonDeployment']" in messages[0]
    assert "'modelUrl' was unexpected" in messages[1]


def test_the_json_schema_names_fields_as_files_do() -> None:
    node = json_schema()["$defs"]["Node"]["properties"]
    assert {"modelUri", "envSecretRefName", "timeoutSeconds", "children"} <= set(node)
    assert "model_uri" not in node


def test_the_crd_schema_is_structural() -> None:
    root = open_api_schema()
    text = yaml.safe_dump(root)
    for word in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "'null'", "&id"):
        assert word not in text, word
    for where, node in schemas(root):
        assert "type" in node or node.get(FREE_FORM), f"{where} has no type"
        assert "default" not in node, where
        assert node.get("additionalProperties") is not False, where
        assert not ("properties" in node and "additionalProperties" in node), where
        if node.get("type") == "object":
            has_fields = "properties" in node or "additionalProperties" in node or node.get(FREE_FORM)
            assert has_fields or where == ".metadata", f"{where} is an object without properties"
        if node.get("type") == "array":
            assert "items" in node, where


def test_optional_fields_are_nullable_and_maps_have_value_types() -> None:
    spec = open_api_schema()["properties"]["spec"]
    predictor = spec["properties"]["predictors"]["items"]["properties"]
    graph = predictor["graph"]["properties"]
    assert graph["modelUri"] == {
        "type": "string",
        "description": "Where the model files are: a folder, file://, http(s)://, s3://.",
        "nullable": True,
    }
    assert predictor["labels"]["additionalProperties"] == {"type": "string"}
    assert graph["timeoutSeconds"]["minimum"] == 0 and graph["timeoutSeconds"]["exclusiveMinimum"] is True
    assert graph["parameters"]["items"]["properties"]["value"][FREE_FORM] is True


def test_pod_specs_and_status_are_kept_as_they_are() -> None:
    root = open_api_schema()
    component = root["properties"]["spec"]["properties"]["predictors"]["items"]["properties"]["componentSpecs"]
    fields = component["items"]["properties"]
    for name in ("spec", "metadata", "hpaSpec", "kedaSpec", "pdbSpec"):
        assert fields[name]["type"] == "object" and fields[name][FREE_FORM] is True, name
    assert root["properties"]["status"] == {"type": "object", FREE_FORM: True}


@pytest.mark.parametrize("depth", [GRAPH_DEPTH, 3])
def test_graphs_are_spelled_out_to_a_fixed_depth(depth: int) -> None:
    predictor = open_api_schema(depth)["properties"]["spec"]["properties"]["predictors"]["items"]
    node = predictor["properties"]["graph"]
    for _ in range(depth - 1):
        node = node["properties"]["children"]["items"]
        assert "modelUri" in node["properties"]
    below = node["properties"]["children"]["items"]
    assert below["type"] == "object" and below[FREE_FORM] is True
    assert "properties" not in below


def test_the_examples_validate_against_the_crd_schema() -> None:
    # OpenAPI v3.0 schemas read as JSON Schema draft 4: boolean exclusiveMinimum, unknown x- keys ignored
    validator = jsonschema.Draft4Validator(open_api_schema())
    for document in examples():
        assert list(validator.iter_errors(document)) == []
    document = examples()[0]
    document["spec"]["predictors"][0]["traffic"] = "most"
    assert [error.message for error in validator.iter_errors(document)] == ["'most' is not of type 'integer'"]
