"""The deployment schema's helpers: resolved node types, effective traffic, where a node's code comes from."""

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from daneel.spec import Deployment, Node, NodeType, node_type
from daneel.spec.model import (
    Auth,
    Batching,
    ComponentSpec,
    DeploymentSpec,
    Endpoint,
    Logger,
    Parameter,
    Predictor,
    Sticky,
    Tls,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "deployments.md"


def node(**fields: object) -> Node:
    return Node.model_validate({"name": "n", **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, NodeType.MODEL),
        ({"modelUri": "/m"}, NodeType.MODEL),
        ({"type": "TRANSFORMER"}, NodeType.TRANSFORMER),
        ({"type": "OUTPUT_TRANSFORMER"}, NodeType.OUTPUT_TRANSFORMER),
        ({"implementation": "RANDOM_ABTEST"}, NodeType.ROUTER),
        ({"implementation": "EPSILON_GREEDY"}, NodeType.ROUTER),
        ({"implementation": "THOMPSON_SAMPLING"}, NodeType.ROUTER),
        ({"implementation": "AVERAGE_COMBINER"}, NodeType.COMBINER),
        ({"implementation": "MLFLOW_SERVER"}, NodeType.MODEL),
        ({"implementation": "HUGGINGFACE_SERVER", "type": "MODEL"}, NodeType.MODEL),
        ({"implementation": "pkg.mod:Router", "type": "ROUTER"}, NodeType.ROUTER),
        ({"type": "UNKNOWN_TYPE", "methods": ["TRANSFORM_INPUT", "ROUTE"]}, NodeType.ROUTER),
        ({"methods": ["AGGREGATE"]}, NodeType.COMBINER),
        ({"methods": ["TRANSFORM_OUTPUT"]}, NodeType.OUTPUT_TRANSFORMER),
        ({"methods": ["SEND_FEEDBACK"]}, NodeType.MODEL),
    ],
)
def test_node_type(fields: dict[str, object], expected: NodeType) -> None:
    assert node_type(node(**fields)) is expected


def deployment(*predictors: dict[str, object]) -> Deployment:
    return Deployment.model_validate(
        {
            "apiVersion": "daneel.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "d"},
            "spec": {"predictors": list(predictors)},
        }
    )


GRAPH = {"name": "m", "modelUri": "/m"}


def test_a_lone_predictor_without_traffic_takes_all_of_it() -> None:
    assert deployment({"name": "a", "graph": GRAPH}).traffic() == {"a": 100}
    shadowed = deployment({"name": "a", "graph": GRAPH}, {"name": "s", "shadow": True, "traffic": 20, "graph": GRAPH})
    assert shadowed.traffic() == {"a": 100}
    assert shadowed.shadow() is shadowed.spec.predictors[1]


def test_traffic_is_each_predictors_own_when_several_share_it() -> None:
    split = deployment({"name": "a", "traffic": 75, "graph": GRAPH}, {"name": "b", "traffic": 25, "graph": GRAPH})
    assert split.traffic() == {"a": 75, "b": 25}
    assert split.shadow() is None


@pytest.mark.parametrize(
    ("fields", "image_only", "remote"),
    [
        ({}, True, False),
        ({"type": "TRANSFORMER", "endpoint": {"type": "REST"}}, True, False),
        ({"implementation": "pkg.mod:Model"}, False, False),
        ({"modelUri": "s3://b/m"}, False, False),
        ({"endpoint": {"service_host": "h", "service_port": 1}}, False, True),
    ],
)
def test_where_a_nodes_code_comes_from(fields: dict[str, object], image_only: bool, remote: bool) -> None:
    assert (node(**fields).image_only, node(**fields).remote) == (image_only, remote)


def test_parameters_convert_to_keyword_arguments() -> None:
    typed = node(
        parameters=[
            {"name": "n", "value": "3", "type": "INT"},
            {"name": "ratio", "value": "0.25", "type": "FLOAT"},
            {"name": "on", "value": "true", "type": "BOOL"},
            {"name": "layers", "value": "[1, 2]", "type": "JSON"},
            {"name": "label", "value": "x"},
        ]
    ).typed_parameters()
    assert typed == {"n": 3, "ratio": 0.25, "on": True, "layers": [1, 2], "label": "x"}


def test_a_container_is_found_by_name_across_component_specs() -> None:
    predictor = Predictor.model_validate(
        {
            "name": "p",
            "graph": GRAPH,
            "componentSpecs": [
                {"spec": {"containers": [{"name": "a", "image": "a:1"}]}},
                {"spec": {"containers": [{"name": "b", "image": "b:1"}, "junk"]}},
                {"spec": {}},
            ],
        }
    )
    assert predictor.container("b") == {"name": "b", "image": "b:1"}
    assert predictor.container("c") is None


MODELS: list[type[BaseModel]] = [
    Deployment,
    DeploymentSpec,
    Predictor,
    ComponentSpec,
    Node,
    Parameter,
    Endpoint,
    Logger,
    Batching,
    Sticky,
    Auth,
    Tls,
]


@pytest.mark.parametrize("model", MODELS, ids=[model.__name__ for model in MODELS])
def test_every_field_is_documented(model: type[BaseModel]) -> None:
    documented = set(re.findall(r"^\| `([A-Za-z_]+)` \|", DOCS.read_text(), re.MULTILINE))
    fields = {info.alias or name for name, info in model.model_fields.items()}
    assert fields - documented == set()


def test_seldons_unknown_implementation_means_none() -> None:
    seldon_default = node(implementation="UNKNOWN_IMPLEMENTATION", type="TRANSFORMER")
    assert seldon_default.implementation is None
    assert seldon_default.image_only
    assert node_type(seldon_default) is NodeType.TRANSFORMER
