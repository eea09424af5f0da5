"""The ModelDeployment CRD: its names and status, the committed copies, its schema and its CEL rules.

No API server runs here, so the CEL rules are evaluated with cel-python (CEL's Python
implementation), given Kubernetes' list function `sum()`, on the example deployments and on
deployments the rules must refuse.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pytest
import yaml
from celpy import celtypes

from daneel.k8s import crd, yamltext
from daneel.spec import as_model_deployment

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "deployments").glob("*.yaml"))
COMMITTED = [
    ROOT / "deploy" / "crd" / "modeldeployments.daneel.dev.yaml",
    ROOT / "deploy" / "helm" / "daneel-operator" / "crds" / "modeldeployments.daneel.dev.yaml",
]


def as_resources() -> list[tuple[str, dict[str, Any]]]:
    """Every example as the ModelDeployment a user applies (Seldon's converted as `daneel convert` does)."""
    return [(path.name, as_model_deployment(path.read_text(), str(path))) for path in EXAMPLES]


def test_the_crd_defines_model_deployments() -> None:
    resource = crd.crd()
    assert resource["metadata"]["name"] == "modeldeployments.daneel.dev"
    spec = resource["spec"]
    assert (spec["group"], spec["scope"]) == ("daneel.dev", "Namespaced")
    assert spec["names"]["kind"] == "ModelDeployment"
    assert spec["names"]["plural"] == "modeldeployments"
    assert spec["names"]["shortNames"] == ["mdep"]
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Ready": '.status.conditions[?(@.type=="Ready")].status',
        "Predictors": ".status.traffic",
        "URL": ".status.url",
        "Age": ".metadata.creationTimestamp",
    }


def test_the_status_has_conditions_replicas_generation_and_url() -> None:
    status = crd.schema()["properties"]["status"]["properties"]
    assert set(status) == {"observedGeneration", "url", "traffic", "predictors", "conditions"}
    condition = status["conditions"]["items"]["properties"]
    assert condition["type"]["enum"] == ["Ready", "Progressing", "Failed"]
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert "availableReplicas" in status["predictors"]["items"]["properties"]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_committed_crd_is_the_generated_one(path: Path) -> None:
    # regenerate with `make crd`
    assert path.read_text() == yamltext.dump(crd.crd()), f"{path} is stale: run `make crd`"


def test_daneel_schema_crd_prints_the_committed_file(daneel_cli: Any) -> None:
    result = daneel_cli("schema", "--crd")
    assert result.returncode == 0, result.stderr
    assert result.stdout == COMMITTED[0].read_text()


@pytest.mark.parametrize(("name", "resource"), as_resources(), ids=[name for name, _ in as_resources()])
def test_the_crd_schema_accepts_every_example(name: str, resource: dict[str, Any]) -> None:
    # an OpenAPI v3.0 schema reads as JSON Schema draft 4 (boolean exclusiveMinimum; x- keys ignored)
    validator = jsonschema.Draft4Validator(crd.schema())
    assert [error.message for error in validator.iter_errors(resource)] == []


def test_the_crd_schema_refuses_a_wrong_type() -> None:
    resource = as_resources()[0][1]
    resource["spec"]["predictors"][0]["traffic"] = "most"
    messages = [error.message for error in jsonschema.Draft4Validator(crd.schema()).iter_errors(resource)]
    assert messages == ["'most' is not of type 'integer'"]


def _sum(values: Any) -> celtypes.IntType:
    return celtypes.IntType(sum(int(value) for value in values))


def rules_pass(spec: dict[str, Any]) -> list[bool]:
    environment = celpy.Environment()
    results = []
    for rule in crd.RULES:
        program = environment.program(environment.compile(rule["rule"]), functions={"sum": _sum})
        results.append(bool(program.evaluate({"self": celpy.json_to_cel(spec)})))
    return results


@pytest.mark.parametrize(("name", "resource"), as_resources(), ids=[name for name, _ in as_resources()])
def test_the_cel_rules_accept_every_example(name: str, resource: dict[str, Any]) -> None:
    assert rules_pass(resource["spec"]) == [True, True]


def predictors(*shares: tuple[int | None, bool]) -> dict[str, Any]:
    out = []
    for i, (traffic, shadow) in enumerate(shares):
        predictor: dict[str, Any] = {"name": f"p{i}", "graph": {"name": "m", "modelUri": "s3://b/m"}}
        if traffic is not None:
            predictor["traffic"] = traffic
        if shadow:
            predictor["shadow"] = True
        out.append(predictor)
    return {"predictors": out}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (predictors((None, False)), [True, True]),  # a lone predictor may leave traffic out
        (predictors((100, False)), [True, True]),
        (predictors((50, False)), [True, False]),
        (predictors((90, False), (10, False), (None, True)), [True, True]),
        (predictors((80, False), (10, False)), [True, False]),
        (predictors((None, False), (None, True), (None, True)), [False, True]),
        (predictors((None, True)), [True, False]),  # every predictor a shadow
    ],
)
def test_the_cel_rules_say_what_the_schema_cannot(spec: dict[str, Any], expected: list[bool]) -> None:
    assert rules_pass(spec) == expected


def test_the_rules_bound_the_predictors_so_the_api_server_can_cost_them() -> None:
    predictors_schema = crd.schema()["properties"]["spec"]["properties"]["predictors"]
    assert predictors_schema["maxItems"] == crd.MAX_PREDICTORS
    assert predictors_schema["x-kubernetes-list-map-keys"] == ["name"]
    assert "name" in predictors_schema["items"]["required"]


def test_the_crd_is_copied_not_shared() -> None:
    crd.schema()["properties"]["spec"]["x-kubernetes-validations"].clear()
    assert crd.schema()["properties"]["spec"]["x-kubernetes-validations"] == crd.RULES
    assert yaml.safe_load(yamltext.dump(copy.deepcopy(crd.crd()))) == crd.crd()
