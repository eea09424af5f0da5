"""`daneel manifest`'s objects: valid for Kubernetes, byte-stable, and true to the deployment.

No cluster runs here: Kubernetes' own kinds are checked against the official schemas
(kubernetes-validate, Kubernetes 1.32, strict: unknown fields are errors). It has no schemas
for Istio's, KEDA's and the Prometheus Operator's kinds, so their shape is checked here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from daneel.errors import InvalidInput
from daneel.k8s.manifests import Options, manifest, render
from daneel.spec import Deployment, load, parse

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "deployments").glob("*.yaml"))
GOLDEN = ROOT / "examples" / "manifests" / "canary.yaml"
KUBERNETES = "1.32"
CUSTOM_KINDS = {"VirtualService", "DestinationRule", "ScaledObject", "PodMonitor"}


def rendered(path: Path, **options: Any) -> list[dict[str, Any]]:
    return render(load(path), Options(workdir=ROOT, **options))


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def served_file(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(by_kind(objects, "ConfigMap")[name]["data"]["deployment.yaml"])
    return loaded


def deployment(text: str) -> Deployment:
    return parse(text, "test.yaml")


@pytest.mark.parametrize("istio", [False, True], ids=["router", "istio"])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_object_of_every_example_is_valid_for_kubernetes(path: Path, istio: bool) -> None:
    objects = rendered(path, istio=istio, pod_monitor=True)
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {exc.path}: {exc.message}")
    assert {obj["kind"] for obj in objects} >= {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_files_the_pods_serve_are_valid_deployments(path: Path) -> None:
    for config in by_kind(rendered(path), "ConfigMap").values():
        served = deployment(config["data"]["deployment.yaml"])
        assert served.name == load(path).name


def test_the_canary_example_renders_to_its_golden_file() -> None:
    # regenerate with `make manifests`
    text = manifest(load(ROOT / "examples" / "deployments" / "canary.yaml"), Options(workdir=ROOT))
    assert text == GOLDEN.read_text(), "examples/manifests/canary.yaml is stale: run `make manifests`"


def test_the_same_deployment_renders_to_the_same_bytes() -> None:
    path = ROOT / "examples" / "deployments" / "seldon-iris.yaml"
    first = manifest(load(path), Options(workdir=ROOT, istio=True, pod_monitor=True))
    assert manifest(load(path), Options(workdir=ROOT, istio=True, pod_monitor=True)) == first


def test_each_predictor_runs_its_whole_graph_in_one_pod() -> None:
    objects = rendered(ROOT / "examples" / "deployments" / "canary.yaml")
    assert list(by_kind(objects, "Deployment")) == [
        "iris-canary-main",
        "iris-canary-canary",
        "iris-canary-candidate",
        "iris-canary",
    ]
    canary = served_file(objects, "iris-canary-canary")
    [predictor] = canary["spec"]["predictors"]
    assert predictor["graph"]["modelUri"] == "/app/examples/deployments/components/scaler"
    assert predictor["graph"]["children"][0]["modelUri"] == "/app/examples/iris"
    assert "traffic" not in predictor and "shadow" not in predictor
    pod = by_kind(objects, "Deployment")["iris-canary-canary"]["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert container["args"] == ["serve", "/etc/daneel/deployment.yaml", "--http-port", "8080", "--grpc-port", "8081"]
    assert pod["metadata"]["labels"]["daneel.dev/predictor"] == "canary"


def test_without_istio_a_router_splits_by_the_weights_and_mirrors_the_shadow() -> None:
    objects = rendered(ROOT / "examples" / "deployments" / "canary.yaml")
    router = served_file(objects, "iris-canary")
    assert router["spec"]["protocol"] == "seldon"
    shares = [(p["name"], p.get("traffic"), p.get("shadow", False)) for p in router["spec"]["predictors"]]
    assert shares == [("main", 90, False), ("canary", 10, False), ("candidate", None, True)]
    assert router["spec"]["predictors"][1]["graph"]["endpoint"] == {
        "service_host": "iris-canary-canary",
        "service_port": 8080,
        "type": "REST",
    }
    assert by_kind(objects, "Service")["iris-canary"]["spec"]["selector"]["app.kubernetes.io/component"] == "router"
    assert not by_kind(objects, "VirtualService")


def test_with_istio_a_virtual_service_splits_and_mirrors() -> None:
    objects = rendered(ROOT / "examples" / "deployments" / "canary.yaml", istio=True)
    assert "iris-canary" not in by_kind(objects, "Deployment")  # no router
    service = by_kind(objects, "VirtualService")["iris-canary"]
    assert service["apiVersion"] == "networking.istio.io/v1"
    [route] = service["spec"]["http"]
    assert [(r["destination"]["subset"], r["weight"]) for r in route["route"]] == [("main", 90), ("canary", 10)]
    assert route["mirror"] == {"host": "iris-canary", "subset": "candidate"}
    assert route["mirrorPercentage"] == {"value": 100.0}
    rule = by_kind(objects, "DestinationRule")["iris-canary"]
    subsets = {s["name"]: s["labels"] for s in rule["spec"]["subsets"]}
    assert subsets["candidate"] == {"daneel.dev/predictor": "candidate"}
    selector = by_kind(objects, "Service")["iris-canary"]["spec"]["selector"]
    assert selector == {"daneel.dev/deployment": "iris-canary", "app.kubernetes.io/component": "predictor"}


STICKY = """
apiVersion: daneel.dev/v1alpha1
kind: ModelDeployment
metadata: {name: ab}
spec:
  sticky: {header: X-User-Id}
  predictors:
  - {name: a, traffic: 50, graph: {name: m, implementation: SKLEARN_SERVER, modelUri: "s3://models/a"}}
  - {name: b, traffic: 50, graph: {name: m, implementation: SKLEARN_SERVER, modelUri: "s3://models/b"}}
"""


def test_with_istio_sticky_users_are_pinned_by_header_and_hashed_onto_pods() -> None:
    objects = render(deployment(STICKY), Options(istio=True))
    routes = by_kind(objects, "VirtualService")["ab"]["spec"]["http"]
    assert [r["name"] for r in routes] == ["pinned-a", "pinned-b", "traffic"]
    assert routes[1]["match"] == [{"headers": {"x-daneel-predictor": {"exact": "b"}}}]
    policy = by_kind(objects, "DestinationRule")["ab"]["spec"]["trafficPolicy"]
    assert policy == {"loadBalancer": {"consistentHash": {"httpHeaderName": "X-User-Id"}}}
    router = served_file(render(deployment(STICKY)), "ab")
    assert router["spec"]["sticky"] == {"header": "X-User-Id"}


def test_remote_models_are_fetched_by_an_init_container_with_the_secrets_credentials() -> None:
    text = STICKY.replace('modelUri: "s3://models/a"', 'modelUri: "s3://models/a", envSecretRefName: s3-creds')
    objects = render(deployment(text))
    pod = by_kind(objects, "Deployment")["ab-a"]["spec"]["template"]["spec"]
    [fetch] = pod["initContainers"]
    assert fetch["args"] == ["fetch", "s3://models/a", "/mnt/models/m"]
    assert fetch["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert {"name": "models", "mountPath": "/mnt/models"} in fetch["volumeMounts"]
    assert served_file(objects, "ab-a")["spec"]["predictors"][0]["graph"]["modelUri"] == "/mnt/models/m"


DETECTED = """
apiVersion: daneel.dev/v1alpha1
kind: ModelDeployment
metadata: {name: watched}
spec:
  predictors:
  - name: a
    detectors: [{name: shift, kind: drift, modelUri: "s3://detectors/shift"}]
    graph:
      name: m
      implementation: SKLEARN_SERVER
      modelUri: "s3://models/a"
      detectors: [{name: odd, kind: outlier, modelUri: "s3://detectors/odd", action: reject}]
"""


def test_detectors_are_fetched_beside_the_model_and_served_in_its_pod() -> None:
    objects = render(deployment(DETECTED))
    pod = by_kind(objects, "Deployment")["watched-a"]["spec"]["template"]["spec"]
    fetched = sorted(tuple(container["args"][1:]) for container in pod["initContainers"])
    assert fetched == [
        ("s3://detectors/odd", "/mnt/models/m-odd"),
        ("s3://detectors/shift", "/mnt/models/a-shift"),
        ("s3://models/a", "/mnt/models/m"),
    ]
    predictor = served_file(objects, "watched-a")["spec"]["predictors"][0]
    assert predictor["detectors"] == [{"name": "shift", "kind": "drift", "modelUri": "/mnt/models/a-shift"}]
    odd = predictor["graph"]["detectors"][0]
    assert odd == {"name": "odd", "kind": "outlier", "modelUri": "/mnt/models/m-odd", "action": "reject"}


def test_a_local_model_outside_the_image_folder_is_refused_naming_the_field(tmp_path: Path) -> None:
    path = ROOT / "examples" / "deployments" / "abtest.yaml"
    with pytest.raises(InvalidInput) as raised:
        render(load(path), Options(workdir=ROOT / "examples" / "deployments"))
    assert raised.value.field == "spec.predictors[0].graph.modelUri"
    assert "a path inside" in raised.value.message and "got ../iris" in raised.value.message


def test_a_node_with_its_own_image_gets_its_own_pod_and_is_called_remotely() -> None:
    objects = rendered(ROOT / "examples" / "deployments" / "seldon-iris.yaml")
    assert set(by_kind(objects, "Deployment")) == {"seldon-iris-default", "seldon-iris-default-scaler", "seldon-iris"}
    graph = served_file(objects, "seldon-iris-default")["spec"]["predictors"][0]["graph"]
    assert graph["endpoint"] == {"service_host": "seldon-iris-default-scaler", "service_port": 9000, "type": "REST"}
    assert "parameters" not in graph and graph["type"] == "TRANSFORMER"
    [scaler] = by_kind(objects, "Deployment")["seldon-iris-default-scaler"]["spec"]["template"]["spec"]["containers"]
    assert scaler["image"] == "example/iris-scaler:0.1"
    env = {item["name"]: item["value"] for item in scaler["env"]}
    assert env["PREDICTIVE_UNIT_PARAMETERS"] == '[{"name":"factor","value":"0.1","type":"FLOAT"}]'
    assert by_kind(objects, "Service")["seldon-iris-default-scaler"]["spec"]["ports"][0]["port"] == 9000
    assert all(obj["metadata"]["namespace"] == "seldon" for obj in objects)


def test_seldon_hpa_metrics_become_autoscaling_v2_and_the_autoscaler_owns_the_replicas() -> None:
    objects = rendered(ROOT / "examples" / "deployments" / "seldon-iris.yaml")
    hpa = by_kind(objects, "HorizontalPodAutoscaler")["seldon-iris-default"]
    assert hpa["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
    ]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "seldon-iris-default",
    }
    assert "replicas" not in by_kind(objects, "Deployment")["seldon-iris-default"]["spec"]


KEDA = """
apiVersion: daneel.dev/v1alpha1
kind: ModelDeployment
metadata: {name: lazy, namespace: ml}
spec:
  predictors:
  - name: default
    graph: {name: m, implementation: SKLEARN_SERVER, modelUri: "https://example.com/iris.tar.gz"}
    componentSpecs:
    - spec:
        containers:
        - {name: m, resources: {requests: {cpu: 250m, memory: 1Gi}, limits: {memory: 2Gi}}}
        - {name: sidecar, image: busybox, args: [sleep, infinity]}
      kedaSpec:
        minReplicaCount: 0
        maxReplicaCount: 4
        triggers:
        - type: prometheus
          metadata:
            serverAddress: "http://prometheus:9090"
            query: "sum(rate(daneel_requests_total[1m]))"
            threshold: "10"
"""


def test_keda_scales_to_zero_and_component_containers_give_resources_and_sidecars() -> None:
    objects = render(deployment(KEDA))
    scaled = by_kind(objects, "ScaledObject")["lazy-default"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "lazy-default"
    assert scaled["spec"]["minReplicaCount"] == 0 and scaled["spec"]["triggers"][0]["type"] == "prometheus"
    assert not by_kind(objects, "HorizontalPodAutoscaler")
    pod = by_kind(objects, "Deployment")["lazy-default"]["spec"]["template"]["spec"]
    daneel, sidecar = pod["containers"]
    assert daneel["resources"] == {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    assert sidecar["name"] == "sidecar"


def test_every_daneel_pod_is_hardened_probed_drained_and_scraped() -> None:
    objects = rendered(ROOT / "examples" / "deployments" / "canary.yaml")
    for name, obj in by_kind(objects, "Deployment").items():
        template = obj["spec"]["template"]
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1000
        assert pod["automountServiceAccountToken"] is False
        [container] = pod["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }, name
        assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
        assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 300
        assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "10"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/tmp", "/mnt/models", "/var/lib/daneel"} <= mounts
        assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert template["metadata"]["annotations"]["prometheus.io/port"] == "8080"


def config_hashes(text: str) -> dict[str, str]:
    objects = render(parse(text, "abtest.yaml"), Options())
    return {
        name: obj["spec"]["template"]["metadata"]["annotations"]["daneel.dev/config-hash"]
        for name, obj in by_kind(objects, "Deployment").items()
    }


def test_a_new_file_rolls_the_pods_and_an_unchanged_one_does_not() -> None:
    text = (ROOT / "examples" / "deployments" / "abtest.yaml").read_text()
    before, after = config_hashes(text), config_hashes(text.replace("value: predict", "value: predict_proba"))
    assert before["iris-abtest-main"] == after["iris-abtest-main"]
    assert before["iris-abtest-candidate"] != after["iris-abtest-candidate"]


def test_a_pod_monitor_scrapes_the_daneel_pods() -> None:
    objects = rendered(ROOT / "examples" / "deployments" / "canary.yaml", pod_monitor=True)
    monitor = by_kind(objects, "PodMonitor")["iris-canary"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "http", "path": "/metrics"}]
    assert monitor["spec"]["selector"]["matchLabels"] == {"daneel.dev/deployment": "iris-canary"}


def test_long_names_fit_kubernetes_limits() -> None:
    text = STICKY.replace("name: ab}", f"name: {'x' * 60}}}").replace("name: a,", f"name: {'A_' * 40},")
    objects = render(deployment(text))
    for obj in objects:
        assert len(obj["metadata"]["name"]) <= 63
        assert all(len(value) <= 63 for value in obj["metadata"]["labels"].values())
    assert len({obj["metadata"]["name"] for obj in objects if obj["kind"] == "Deployment"}) == 3


COMPONENTS = """
apiVersion: daneel.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: ab
  annotations: {daneel.dev/components: ../components}
spec:
  predictors:
  - name: a
    graph:
      name: scaler
      type: TRANSFORMER
      children:
      - {name: m, implementation: SKLEARN_SERVER, modelUri: "s3://models/a"}
"""


def test_a_node_served_from_the_components_folder_reads_it_from_the_image(tmp_path: Path) -> None:
    folder = tmp_path / "components" / "scaler"
    folder.mkdir(parents=True)
    (folder / "Scaler.py").write_text((ROOT / "examples/deployments/components/scaler/Scaler.py").read_text())
    path = tmp_path / "deploy" / "graph.yaml"
    path.parent.mkdir()
    path.write_text(COMPONENTS)
    objects = render(load(path), Options(workdir=tmp_path))
    graph = served_file(objects, "ab-a")["spec"]["predictors"][0]["graph"]
    assert graph["modelUri"] == "/app/components/scaler"
    assert graph["children"][0]["modelUri"] == "/mnt/models/m"
