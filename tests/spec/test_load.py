"""Loading deployment files: YAML, documents, apiVersion and kind, schema errors with paths and lines."""

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from daneel.errors import LoadError
from daneel.spec import (
    Deployment,
    InvalidDeployment,
    NodeType,
    as_model_deployment,
    load,
    node_type,
    parse,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "deployments").glob("*.yaml"))
Write = Callable[..., Path]
Wrap = Callable[[str], str]

VALID = """\
apiVersion: daneel.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: iris
spec:
  predictors:
  - name: default
    graph:
      name: classifier
      implementation: SKLEARN_SERVER
      modelUri: models/iris
"""


def error_lines(text: str) -> list[str]:
    with pytest.raises(InvalidDeployment) as caught:
        parse(textwrap.dedent(text), "deploy.yaml")
    lines = caught.value.message.splitlines()
    assert len(lines) == len(caught.value.problems)
    return lines


def test_a_valid_file_loads(write: Write) -> None:
    deployment = load(write(VALID))
    assert deployment.name == "iris"
    assert deployment.traffic() == {"default": 100}
    assert deployment.spec.predictors[0].graph.model_uri == "models/iris"


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_example_loads(path: Path) -> None:
    components = path.parent / "components"
    deployment = load(path, components if path.name.startswith("seldon") else None)
    assert deployment.nodes()
    assert sum(deployment.traffic().values()) == 100


def test_the_examples_cover_each_kind_of_deployment() -> None:
    assert {path.name for path in EXAMPLES} >= {
        "abtest.yaml",
        "graph.yaml",
        "seldon-iris.yaml",
        "bandit.yaml",
        "shadow.yaml",
    }
    abtest = load(ROOT / "examples" / "deployments" / "abtest.yaml")
    assert abtest.traffic() == {"main": 75, "candidate": 25}
    assert abtest.base_dir == (ROOT / "examples" / "deployments").resolve()


def test_the_deployment_knows_the_folder_relative_model_uris_start_from(write: Write) -> None:
    path = write(VALID, "sub/deploy.yaml")
    assert load(path).base_dir == path.parent.resolve()


def test_a_missing_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"nope\.yaml: cannot read it: No such file"):
        load(tmp_path / "nope.yaml")


def test_yaml_errors_give_the_line() -> None:
    [line] = error_lines(
        """\
        apiVersion: daneel.dev/v1alpha1
        kind: ModelDeployment
        metadata:
          name: x
           bad: indentation
        """
    )
    assert line.startswith("deploy.yaml:5: invalid YAML, column 7: mapping values are not allowed here")


def test_an_unclosed_bracket_gives_the_line() -> None:
    [line] = error_lines("apiVersion: daneel.dev/v1alpha1\nspec: {predictors: [\n")
    assert line.startswith("deploy.yaml:3: invalid YAML")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "deploy.yaml: empty file; expected a ModelDeployment or SeldonDeployment"),
        ("---\n---\n", "deploy.yaml: empty file; expected a ModelDeployment or SeldonDeployment"),
        ("- a\n- b\n", "deploy.yaml:1: expected a mapping with apiVersion, kind, metadata and spec; got a list"),
        (
            "just text\n",
            "deploy.yaml:1: expected a mapping with apiVersion, kind, metadata and spec; got str 'just text'",
        ),
    ],
)
def test_a_file_without_a_mapping(text: str, message: str) -> None:
    assert error_lines(text) == [message]


def test_the_one_deployment_among_several_documents_is_taken() -> None:
    service = "apiVersion: v1\nkind: Service\nmetadata: {name: front}\n"
    deployment = parse(f"{service}---\n{VALID}---\n{service}")
    assert deployment.name == "iris"


def test_two_deployments_in_one_file_are_an_error() -> None:
    other = VALID.replace("name: iris", "name: other")
    assert error_lines(f"{VALID}---\n{other}") == [
        "deploy.yaml: 2 deployments in one file (at lines 1, 13); expected one per file"
    ]


def test_documents_without_a_deployment_are_an_error() -> None:
    text = "apiVersion: v1\nkind: Service\n---\napiVersion: v1\nkind: ConfigMap\n"
    assert error_lines(text) == [
        "deploy.yaml: none of its 2 documents is a ModelDeployment or SeldonDeployment (kinds: ConfigMap, Service)"
    ]


@pytest.mark.parametrize(
    "api", ["machinelearning.seldon.io/v1", "machinelearning.seldon.io/v1alpha2", "machinelearning.seldon.io/v1alpha3"]
)
def test_seldon_api_versions_load_as_they_are(api: str) -> None:
    text = VALID.replace("daneel.dev/v1alpha1", api).replace("ModelDeployment", "SeldonDeployment")
    assert parse(text).kind == "SeldonDeployment"


def test_an_unknown_api_version_lists_those_accepted() -> None:
    [line] = error_lines(VALID.replace("daneel.dev/v1alpha1", "serving.kserve.io/v1beta1"))
    assert line == (
        "deploy.yaml:1: apiVersion: expected daneel.dev/v1alpha1 (kind ModelDeployment) or one of "
        "machinelearning.seldon.io/v1, machinelearning.seldon.io/v1alpha2, machinelearning.seldon.io/v1alpha3 "
        "(kind SeldonDeployment); got 'serving.kserve.io/v1beta1'"
    )


def test_the_kind_must_go_with_the_api_version() -> None:
    assert error_lines(VALID.replace("kind: ModelDeployment", "kind: SeldonDeployment")) == [
        "deploy.yaml:2: kind: expected ModelDeployment with apiVersion daneel.dev/v1alpha1; got 'SeldonDeployment'"
    ]
    assert error_lines(VALID.replace("kind: ModelDeployment\n", "")) == [
        "deploy.yaml:1: kind: expected ModelDeployment with apiVersion daneel.dev/v1alpha1; it is missing"
    ]


def test_unknown_fields_are_named_by_their_path_and_line(with_spec: Wrap) -> None:
    text = with_spec(
        """
        predictors:
        - name: p
          graph:
            name: t
            type: TRANSFORMER
            modelUri: /t
            children:
            - name: m
              modelUrl: /m
              colour: blue
          trafic: 100
        """
    )
    assert error_lines(text) == [
        "deploy.yaml:14: spec.predictors[0].graph.children[0].modelUrl: unknown field; did you mean modelUri?",
        "deploy.yaml:15: spec.predictors[0].graph.children[0].colour: unknown field; expected one of name, type, "
        "implementation, modelUri, parameters, children, endpoint, methods, logger, envSecretRefName, "
        "serviceAccountName, storageInitializerImage, timeoutSeconds, batching, detectors",
        "deploy.yaml:16: spec.predictors[0].trafic: unknown field; did you mean traffic?",
    ]


def test_python_attribute_names_are_not_field_names(with_graph: Wrap) -> None:
    assert error_lines(with_graph("{name: m, model_uri: /m}")) == [
        "deploy.yaml:9: spec.predictors[0].graph.model_uri: unknown field; did you mean modelUri?"
    ]


def test_wrong_values_say_what_was_expected(with_spec: Wrap) -> None:
    text = with_spec(
        """
        predictors:
        - name: p
          traffic: lots
          replicas: -1
          labels: {seldon.io/team: 7}
          graph:
            name: m
            type: MDOEL
            modelUri: /m
            endpoint: [1]
            parameters:
            - {name: x}
        """
    )
    assert error_lines(text) == [
        "deploy.yaml:8: spec.predictors[0].traffic: expected an integer; got 'lots'",
        "deploy.yaml:9: spec.predictors[0].replicas: expected a number greater than or equal to 0; got -1",
        'deploy.yaml:10: spec.predictors[0].labels["seldon.io/team"]: expected a string; got 7',
        "deploy.yaml:13: spec.predictors[0].graph.type: expected one of 'UNKNOWN_TYPE', 'MODEL', 'TRANSFORMER', "
        "'OUTPUT_TRANSFORMER', 'ROUTER' or 'COMBINER'; got 'MDOEL'",
        "deploy.yaml:15: spec.predictors[0].graph.endpoint: expected a mapping; got a list",
        "deploy.yaml:17: spec.predictors[0].graph.parameters[0].value: required field is missing",
    ]


def test_a_missing_field_points_at_its_parent(with_spec: Wrap) -> None:
    text = with_spec(
        """
        predictors:
        - name: p
          graph:
            modelUri: /m
        """
    )
    assert error_lines(text) == ["deploy.yaml:8: spec.predictors[0].graph.name: required field is missing"]


def test_duplicate_keys_are_errors(with_graph: Wrap) -> None:
    text = with_graph(
        """
        name: m
        modelUri: /a
        modelUri: /b
        """
    )
    assert error_lines(text) == [
        "deploy.yaml:11: spec.predictors[0].graph.modelUri: duplicate key; the first is on line 10"
    ]


def test_schema_and_rule_problems_come_together(with_spec: Wrap) -> None:
    text = with_spec(
        """
        predictors:
        - {name: a, traffic: 60, graph: {name: x, modelUri: /x}}
        - {name: b, traffic: 30, graph: {name: y, modelUri: /y, colour: blue}}
        """
    )
    lines = error_lines(text)
    assert lines[0].startswith("deploy.yaml:6: spec.predictors: traffic of the predictors that are not shadows sums")
    assert lines[1].startswith("deploy.yaml:8: spec.predictors[1].graph.colour: unknown field")


SELDON_EVERYTHING = """\
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: everything
  namespace: models
  labels: {team: fraud}
  annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}
  creationTimestamp: "2023-01-01T00:00:00Z"
  generation: 3
  resourceVersion: "1234"
  uid: 0b7b0d34-1111-2222-3333-444455556666
spec:
  name: everything
  protocol: seldon
  transport: rest
  serverType: rpc
  replicas: 2
  oauth_key: key
  oauth_secret: secret
  annotations:
    seldon.io/rest-timeout: "5000"
    seldon.io/engine-separate-pod: "true"
  predictors:
  - name: main
    traffic: 90
    replicas: 3
    labels: {version: v1}
    annotations: {seldon.io/svc-name: iris}
    progressDeadlineSeconds: 600
    ssl: {certSecretName: tls}
    engineResources:
      requests: {cpu: 100m}
    svcOrchSpec:
      replicas: 1
      env:
      - {name: SELDON_LOG_LEVEL, value: DEBUG}
      resources:
        limits: {cpu: "1"}
    explainer:
      type: AnchorTabular
      modelUri: gs://bucket/explainer
      config: {threshold: "0.95"}
      replicas: 1
    componentSpecs:
    - metadata:
        name: pod
        labels: {tier: model}
      replicas: 2
      spec:
        serviceAccountName: models
        nodeSelector: {gpu: "true"}
        containers:
        - name: transformer
          image: registry.example.com/transformer:1.0
          env: [{name: X, value: "1"}]
          ports: [{name: http, containerPort: 9000}]
      hpaSpec:
        minReplicas: 1
        maxReplicas: 4
        metrics: [{type: Resource, resource: {name: cpu, targetAverageUtilization: 80}}]
      kedaSpec:
        pollingInterval: 15
        minReplicaCount: 1
        maxReplicaCount: 5
        triggers: [{type: prometheus, metadata: {threshold: "10"}}]
      pdbSpec:
        minAvailable: 1
    graph:
      name: transformer
      type: TRANSFORMER
      endpoint: {type: REST, httpPort: 9000, grpcPort: 9500}
      logger: {url: "http://logger.default", mode: all}
      children:
      - name: classifier
        implementation: SKLEARN_SERVER
        modelUri: s3://bucket/iris
        envSecretRefName: s3-credentials
        serviceAccountName: reader
        storageInitializerImage: seldonio/rclone-storage-initializer:1.17.1
        methods: [SEND_FEEDBACK]
        parameters:
        - {name: method, type: STRING, value: predict_proba}
        children: []
  - name: canary
    traffic: 10
    graph:
      name: remote
      type: MODEL
      endpoint: {service_host: canary.models.svc.cluster.local, service_port: 8000, type: GRPC}
  - name: shadow
    shadow: true
    graph: {name: classifier, implementation: SKLEARN_SERVER, modelUri: s3://bucket/iris-next}
status:
  state: Available
  replicas: 3
  deploymentStatus: {everything-main: {replicas: 3, availableReplicas: 3}}
"""


def test_every_field_seldon_files_use_is_accepted() -> None:
    deployment = parse(SELDON_EVERYTHING)
    main = deployment.spec.predictors[0]
    assert deployment.traffic() == {"main": 90, "canary": 10}
    assert deployment.shadow() is deployment.spec.predictors[2]
    assert main.container("transformer") == {
        "name": "transformer",
        "image": "registry.example.com/transformer:1.0",
        "env": [{"name": "X", "value": "1"}],
        "ports": [{"name": "http", "containerPort": 9000}],
    }
    assert main.component_specs[0].hpa_spec == {
        "minReplicas": 1,
        "maxReplicas": 4,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "targetAverageUtilization": 80}}],
    }
    assert main.graph.endpoint is not None and main.graph.endpoint.http_port == 9000
    assert deployment.spec.predictors[1].graph.remote
    assert node_type(main.graph.children[0]) is NodeType.MODEL
    assert main.graph.children[0].typed_parameters() == {"method": "predict_proba"}


def test_a_misspelt_component_spec_field_is_caught() -> None:
    text = SELDON_EVERYTHING.replace("hpaSpec:", "hpaSpecs:")
    assert error_lines(text)[0].endswith(
        "spec.predictors[0].componentSpecs[0].hpaSpecs: unknown field; did you mean hpaSpec?"
    )


def test_seldon_files_convert_keeping_the_spec_and_dropping_status() -> None:
    converted = as_model_deployment(SELDON_EVERYTHING)
    original = yaml.safe_load(SELDON_EVERYTHING)
    assert converted["apiVersion"] == "daneel.dev/v1alpha1"
    assert converted["kind"] == "ModelDeployment"
    assert "status" not in converted
    assert converted["spec"] == original["spec"]
    assert converted["metadata"] == original["metadata"]
    assert list(converted) == ["apiVersion", "kind", "metadata", "spec"]
    assert parse(yaml.safe_dump(converted)).kind == "ModelDeployment"


def test_an_invalid_file_does_not_convert() -> None:
    with pytest.raises(InvalidDeployment, match="trafic: unknown field"):
        as_model_deployment(VALID.replace("  - name: default\n", "  - name: default\n    trafic: 100\n"))


def test_python_code_builds_deployments_by_attribute_name() -> None:
    deployment = Deployment.model_validate(
        {
            "api_version": "daneel.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "x"},
            "spec": {"predictors": [{"name": "p", "graph": {"name": "m", "model_uri": "/m"}}]},
        }
    )
    assert deployment.spec.predictors[0].graph.model_uri == "/m"
