"""Autoscaling and disruption budgets: HorizontalPodAutoscaler, KEDA ScaledObject, PodDisruptionBudget.

A `componentSpecs` entry carries Seldon's `hpaSpec`, `kedaSpec` and `pdbSpec`.
Seldon wrote HPA metrics in autoscaling/v2beta1's shape (`targetAverageUtilization`,
`metricName`), which no current cluster serves; they are translated to
autoscaling/v2 (`target: {type, averageUtilization}`), and v2 metrics, or
Seldon's `metricsv2`, pass as they are. KEDA can scale a Deployment to zero
pods, which an HPA cannot.
"""

from __future__ import annotations

import copy
from typing import Any

from daneel.errors import InvalidInput

Object = dict[str, Any]

_KEDA_FIELDS = (
    "pollingInterval",
    "cooldownPeriod",
    "idleReplicaCount",
    "minReplicaCount",
    "maxReplicaCount",
    "fallback",
    "advanced",
    "triggers",
)
_PDB_FIELDS = ("minAvailable", "maxUnavailable", "unhealthyPodEvictionPolicy")


def _target_ref(name: str) -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}


def hpa(metadata: Object, name: str, hpa_spec: dict[str, Any], field: str) -> Object:
    """An autoscaling/v2 HorizontalPodAutoscaler of Deployment `name` from Seldon's `hpaSpec`."""
    if not isinstance(hpa_spec.get("maxReplicas"), int):
        raise InvalidInput(f"{field}.maxReplicas", "expected the most replicas the autoscaler may run, an integer")
    spec: Object = {"scaleTargetRef": _target_ref(name), "minReplicas": hpa_spec.get("minReplicas", 1)}
    spec["maxReplicas"] = hpa_spec["maxReplicas"]
    given = hpa_spec.get("metricsv2") or hpa_spec.get("metrics") or []
    if given:
        spec["metrics"] = [metric(m, f"{field}.metrics[{i}]") for i, m in enumerate(given)]
    if "behavior" in hpa_spec:
        spec["behavior"] = copy.deepcopy(hpa_spec["behavior"])
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": metadata, "spec": spec}


def metric(given: dict[str, Any], field: str) -> dict[str, Any]:
    """One HPA metric in autoscaling/v2's shape, from v2 or v2beta1's."""
    kind = given.get("type")
    key = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods"}.get(str(kind))
    key = key or {"Object": "object", "External": "external"}.get(str(kind))
    if key is None or not isinstance(given.get(key), dict):
        expected = "a metric of type Resource, ContainerResource, Pods, Object or External with its settings"
        raise InvalidInput(field, expected)
    body = copy.deepcopy(given[key])
    if "target" in body and "metricName" not in body:
        return {"type": kind, key: body}  # already autoscaling/v2
    return {"type": kind, key: _from_v2beta1(key, body, f"{field}.{key}")}


def _from_v2beta1(key: str, body: dict[str, Any], field: str) -> dict[str, Any]:
    target = _target(body)
    if key in ("resource", "containerResource"):
        return {k: v for k, v in body.items() if k in ("name", "container")} | {"target": target}
    if "metricName" not in body:
        raise InvalidInput(field, "expected a target (autoscaling/v2) or a metricName (v2beta1)")
    selector = body.pop("metricSelector", None) or body.pop("selector", None)
    named = {"name": body["metricName"], **({"selector": selector} if selector else {})}
    if key == "object":
        return {"describedObject": body.get("target"), "metric": named, "target": target}
    return {"metric": named, "target": target}


def _target(body: dict[str, Any]) -> dict[str, Any]:
    if "targetAverageUtilization" in body:
        return {"type": "Utilization", "averageUtilization": body["targetAverageUtilization"]}
    if "targetAverageValue" in body or "averageValue" in body:
        return {"type": "AverageValue", "averageValue": body.get("targetAverageValue", body.get("averageValue"))}
    return {"type": "Value", "value": body.get("targetValue")}


def scaled_object(metadata: Object, name: str, keda_spec: dict[str, Any], field: str) -> Object:
    """A KEDA ScaledObject of Deployment `name` from Seldon's `kedaSpec`."""
    if not isinstance(keda_spec.get("triggers"), list) or not keda_spec["triggers"]:
        raise InvalidInput(f"{field}.triggers", "expected a list of KEDA triggers (prometheus, cpu, kafka, ...)")
    spec: Object = {"scaleTargetRef": _target_ref(name)}
    spec |= {key: copy.deepcopy(keda_spec[key]) for key in _KEDA_FIELDS if key in keda_spec}
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": metadata, "spec": spec}


def disruption_budget(metadata: Object, selector: dict[str, str], pdb_spec: dict[str, Any] | None) -> Object:
    """A PodDisruptionBudget: Seldon's `pdbSpec`, else one pod down at a time."""
    budget = {key: pdb_spec[key] for key in _PDB_FIELDS if key in pdb_spec} if pdb_spec else {}
    spec = {"selector": {"matchLabels": selector}, **(budget or {"maxUnavailable": 1})}
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": metadata, "spec": spec}
