"""The operator's reconciliation, against a fake API server (see tests/k8s/fakes.py for why a fake)."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from tests.k8s.fakes import FakeCluster

from daneel.k8s import manifests
from daneel.k8s.manifests import Options
from daneel.k8s.reconcile import deployment_of, owned_objects, reconcile, refresh, remove

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2030, 1, 1, tzinfo=UTC)
T1 = datetime(2030, 1, 1, 0, 5, tzinfo=UTC)


def resource(traffic: tuple[int, int] = (90, 10), generation: int = 1, **graph: Any) -> dict[str, Any]:
    """A ModelDeployment as the API server hands it to the operator."""
    node = {"name": "classifier", "implementation": "SKLEARN_SERVER", "modelUri": "s3://models/iris", **graph}
    predictors = [
        {"name": "main", "traffic": traffic[0], "graph": copy.deepcopy(node)},
        {"name": "canary", "traffic": traffic[1], "graph": copy.deepcopy(node)},
    ]
    meta = {"name": "iris", "namespace": "ml", "uid": "1234-5678", "generation": generation}
    return {
        "apiVersion": "daneel.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": meta,
        "spec": {"predictors": predictors},
    }


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_create_applies_what_manifest_renders_each_owned_by_the_resource() -> None:
    cluster = FakeCluster()
    body = resource()
    outcome = run(reconcile(body, cluster, Options(), lambda: T0))
    expected = manifests.render(deployment_of(body), Options(namespace="ml"))
    assert [(o["kind"], o["metadata"]["name"]) for o in cluster.applied] == [
        (o["kind"], o["metadata"]["name"]) for o in expected
    ]
    for applied, rendered in zip(cluster.applied, expected, strict=True):
        owner = applied["metadata"].pop("ownerReferences")
        assert owner == [
            {
                "apiVersion": "daneel.dev/v1alpha1",
                "kind": "ModelDeployment",
                "name": "iris",
                "uid": "1234-5678",
                "controller": True,
            }
        ]
        assert applied == rendered
    assert outcome.error is None
    assert cluster.events == []  # the kopf handler posts Reconciled; reconcile itself only warns


def test_status_is_progressing_until_every_deployment_is_available_then_ready() -> None:
    cluster = FakeCluster()
    body = resource()
    status = run(reconcile(body, cluster, Options(), lambda: T0)).status
    assert conditions(status)["Ready"]["status"] == "False"
    assert conditions(status)["Progressing"] == {
        "type": "Progressing",
        "status": "True",
        "reason": "RollingOut",
        "message": "Deployment iris-main: 0 of 1 pods updated and available; "
        "Deployment iris-canary: 0 of 1 pods updated and available; Deployment iris: 0 of 1 pods updated and available",
        "lastTransitionTime": "2030-01-01T00:00:00Z",
        "observedGeneration": 1,
    }
    assert status["traffic"] == "main 90%, canary 10%"
    assert status["url"] == "http://iris.ml.svc.cluster.local:8080"
    cluster.ready()
    body["status"] = status
    ready = run(refresh(body, cluster, Options(), lambda: T1))
    assert conditions(ready)["Ready"]["status"] == "True"
    assert conditions(ready)["Ready"]["lastTransitionTime"] == "2030-01-01T00:05:00Z"
    assert conditions(ready)["Failed"]["lastTransitionTime"] == "2030-01-01T00:00:00Z"  # stayed False
    assert ready["predictors"] == [
        {"name": "main", "traffic": 90, "shadow": False, "replicas": 1, "availableReplicas": 1},
        {"name": "canary", "traffic": 10, "shadow": False, "replicas": 1, "availableReplicas": 1},
    ]


def test_a_traffic_change_applies_new_weights_and_nothing_else() -> None:
    for istio in (True, False):
        cluster = FakeCluster()
        run(reconcile(resource((90, 10)), cluster, Options(istio=istio)))
        before = copy.deepcopy(cluster.objects)
        outcome = run(reconcile(resource((50, 50), generation=2), cluster, Options(istio=istio)))
        changed = {key for key in cluster.objects if cluster.objects[key] != before[key]}
        assert set(cluster.objects) == set(before)
        if istio:
            assert changed == {("ml", "VirtualService", "iris")}
            weights = [
                r["weight"] for r in cluster.objects[("ml", "VirtualService", "iris")]["spec"]["http"][0]["route"]
            ]
            assert weights == [50, 50]
        else:
            # the router's file holds the weights; its pods roll because the file's hash is on their template
            assert changed == {("ml", "ConfigMap", "iris"), ("ml", "Deployment", "iris")}
            router = yaml.safe_load(cluster.objects[("ml", "ConfigMap", "iris")]["data"]["deployment.yaml"])
            assert [p["traffic"] for p in router["spec"]["predictors"]] == [50, 50]
        assert outcome.status["traffic"] == "main 50%, canary 50%"
        assert outcome.status["observedGeneration"] == 2


def test_a_removed_predictor_is_pruned() -> None:
    cluster = FakeCluster()
    run(reconcile(resource(), cluster, Options()))
    body = resource()
    body["spec"]["predictors"] = body["spec"]["predictors"][:1]
    body["spec"]["predictors"][0]["traffic"] = 100
    run(reconcile(body, cluster, Options()))
    assert sorted(ref[1:] for ref in cluster.deleted) == [
        ("ConfigMap", "iris-canary"),
        ("Deployment", "iris-canary"),
        ("PodDisruptionBudget", "iris-canary"),
        ("Service", "iris-canary"),
    ]
    assert not any("canary" in name for (_, _, name) in cluster.objects)


def test_delete_removes_every_object_of_the_resource() -> None:
    cluster = FakeCluster()
    run(reconcile(resource(), cluster, Options()))
    other = resource()
    other["metadata"]["name"] = "other"
    run(reconcile(other, cluster, Options()))
    count = len(cluster.objects)
    removed = run(remove(resource(), cluster))
    assert len(removed) == count // 2
    assert all(obj["metadata"]["labels"]["daneel.dev/deployment"] == "other" for obj in cluster.objects.values())


def test_an_invalid_model_fails_with_the_reason_and_applies_nothing() -> None:
    cluster = FakeCluster()
    body = resource()
    del body["spec"]["predictors"][1]["graph"]["modelUri"]
    outcome = run(reconcile(body, cluster, Options(), lambda: T0))
    assert cluster.applied == []
    failed = conditions(outcome.status)["Failed"]
    assert failed["status"] == "True" and failed["reason"] == "InvalidSpec"
    assert failed["message"] == (
        "ml/iris: spec.predictors[1].graph: SKLEARN_SERVER serves saved model files; expected a modelUri"
    )
    assert conditions(outcome.status)["Ready"]["status"] == "False"
    assert outcome.retry is None and outcome.error == failed["message"]
    assert cluster.events == [("Warning", "InvalidSpec", failed["message"])]
    assert outcome.status["traffic"] is None  # a merge patch removes what no longer holds


def test_a_model_that_crashes_on_load_fails_with_its_last_log_lines() -> None:
    cluster = FakeCluster()
    run(reconcile(resource(), cluster, Options()))
    cluster.ready()
    cluster.pods = [
        {
            "metadata": {"name": "iris-canary-7d9f-abcde"},
            "status": {
                "containerStatuses": [
                    {
                        "name": "daneel",
                        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                        "lastState": {
                            "terminated": {"exitCode": 1, "message": "classifier: cannot load model.joblib\n"}
                        },
                    }
                ]
            },
        }
    ]
    status = run(refresh(resource(), cluster, Options(), lambda: T0))
    failed = conditions(status)["Failed"]
    assert (failed["status"], failed["reason"]) == ("True", "PredictorFailed")
    assert failed["message"] == (
        "pod iris-canary-7d9f-abcde, container daneel: CrashLoopBackOff: classifier: cannot load model.joblib"
    )


def test_a_rollout_past_its_deadline_fails() -> None:
    cluster = FakeCluster()
    run(reconcile(resource(), cluster, Options()))
    cluster.ready()
    message = 'ReplicaSet "iris-main-5c8" has timed out progressing.'
    cluster.statuses["iris-main"]["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": message}
    ]
    status = run(refresh(resource(), cluster, Options()))
    assert conditions(status)["Failed"]["message"] == f"Deployment iris-main: {message}"


def test_a_refused_apply_fails_and_is_retried() -> None:
    cluster = FakeCluster()
    cluster.refuse = "PodDisruptionBudget"
    outcome = run(reconcile(resource(), cluster, Options()))
    failed = conditions(outcome.status)["Failed"]
    assert failed["reason"] == "ApplyFailed"
    assert failed["message"] == "applying PodDisruptionBudget iris-main: 403 Forbidden: not allowed"
    assert outcome.retry == 30.0
    assert outcome.status["traffic"] == "main 90%, canary 10%"


def test_owned_objects_ignore_the_workdir_and_read_local_models_from_the_image() -> None:
    body = resource(modelUri="models/iris")
    objects = owned_objects(body, Options(workdir=ROOT))
    config = yaml.safe_load(objects[0]["data"]["deployment.yaml"])
    assert config["spec"]["predictors"][0]["graph"]["modelUri"] == "/app/models/iris"
