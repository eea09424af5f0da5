"""The kopf handlers of `daneel operator`, called as kopf calls them, against a fake API server.

No Kubernetes API server can run here (see tests/k8s/fakes.py), so the handlers get the fake;
kopf's own machinery (watching, retrying, peering) is kopf's and is not re-tested.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from tests.k8s.fakes import FakeCluster
from tests.k8s.test_reconcile import resource

from daneel.k8s import operator
from daneel.k8s.manifests import Options
from daneel.k8s.reconcile import Cluster


def test_a_change_writes_the_status_and_posts_an_event() -> None:
    cluster, patch = FakeCluster(), kopf.Patch()
    asyncio.run(operator.on_change(resource(), patch, cluster, Options()))
    assert patch["status"]["traffic"] == "main 90%, canary 10%"
    assert [c["type"] for c in patch["status"]["conditions"]] == ["Ready", "Progressing", "Failed"]
    assert cluster.events == [("Normal", "Reconciled", "applied 12 objects")]


def test_an_invalid_spec_is_a_permanent_error_with_the_status_written() -> None:
    body = resource()
    del body["spec"]["predictors"][0]["graph"]["modelUri"]
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError, match="expected a modelUri"):
        asyncio.run(operator.on_change(body, patch, FakeCluster(), Options()))
    failed = [c for c in patch["status"]["conditions"] if c["type"] == "Failed"]
    assert failed[0]["status"] == "True"


def test_a_refused_apply_is_retried() -> None:
    cluster = FakeCluster()
    cluster.refuse = "Service"
    with pytest.raises(kopf.TemporaryError) as raised:
        asyncio.run(operator.on_change(resource(), kopf.Patch(), cluster, Options()))
    assert raised.value.delay == 30.0


def test_the_timer_puts_back_what_was_edited_by_hand() -> None:
    cluster = FakeCluster()
    asyncio.run(operator.on_change(resource(), kopf.Patch(), cluster, Options()))
    service = cluster.objects[("ml", "Service", "iris-main")]
    service["spec"]["ports"] = []
    asyncio.run(operator.on_timer(resource(), kopf.Patch(), cluster, Options()))
    assert [p["port"] for p in cluster.objects[("ml", "Service", "iris-main")]["spec"]["ports"]] == [8080, 8081]


def test_a_deployment_that_rolled_out_updates_its_owners_status() -> None:
    cluster = FakeCluster()
    body = resource()
    asyncio.run(operator.on_change(body, kopf.Patch(), cluster, Options()))
    cluster.resources[("ml", "iris")] = body
    cluster.ready()
    deployment = cluster.objects[("ml", "Deployment", "iris-main")]
    asyncio.run(operator.on_rollout(deployment, cluster, Options()))
    [(name, status)] = cluster.patched
    assert name == "iris"
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"


def test_a_deployment_without_an_owner_is_left_alone() -> None:
    cluster = FakeCluster()
    deployment: dict[str, Any] = {"metadata": {"name": "iris-main", "namespace": "ml", "labels": {}}}
    asyncio.run(operator.on_rollout(deployment, cluster, Options()))
    assert cluster.patched == []


def test_delete_removes_the_objects() -> None:
    cluster = FakeCluster()
    asyncio.run(operator.on_change(resource(), kopf.Patch(), cluster, Options()))
    asyncio.run(operator.on_delete(resource(), cluster))
    assert cluster.objects == {}


def test_the_registry_holds_the_handlers_and_no_global_state() -> None:
    async def connect() -> Cluster:
        return FakeCluster()

    first = operator.registry(connect, Options(), 60)
    second = operator.registry(connect, Options(), 60)
    assert first is not second
    settings = operator.operator_settings(standalone=False)
    assert settings.peering.mandatory is True
    assert settings.scanning.disabled is True
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
