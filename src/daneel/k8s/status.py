"""A ModelDeployment's status from what the cluster reports: conditions, replicas per predictor, the URL.

Conditions follow Kubernetes' convention: `Ready` when every Deployment has
rolled out and has its pods available; `Progressing` while one has not yet;
`Failed` when the spec cannot be rendered or applied, when a Deployment gives
up its rollout, or when a container cannot start (a model that fails to load
crashes its container: its last log lines, the load error, become the reason).
A condition's `lastTransitionTime` moves only when its status changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from daneel.k8s.names import object_name
from daneel.k8s.served import HTTP_PORT
from daneel.spec.model import Deployment

Object = dict[str, Any]

#: Container states that do not pass without a change: a crash loop, an image that cannot be pulled, ...
STUCK = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "InvalidImageName")


@dataclass(frozen=True)
class Observed:
    """The Deployments (by name) and pods of one ModelDeployment, as the cluster reports them."""

    deployments: dict[str, Object] = field(default_factory=dict)
    pods: list[Object] = field(default_factory=list)


@dataclass(frozen=True)
class Failure:
    reason: str  # InvalidSpec, ApplyFailed, PredictorFailed
    message: str


def traffic_summary(deployment: Deployment) -> str:
    """`main 90%, canary 10%, shadow candidate`, for `kubectl get mdep`."""
    weights = deployment.traffic()
    parts = [f"shadow {p.name}" if p.shadow else f"{p.name} {weights[p.name]}%" for p in deployment.spec.predictors]
    return ", ".join(parts)


def url(name: str, namespace: str) -> str:
    return f"http://{object_name(name)}.{namespace}.svc.cluster.local:{HTTP_PORT}"


def predictors(deployment: Deployment, observed: Observed) -> list[Object]:
    weights = deployment.traffic()
    out = []
    for predictor in deployment.spec.predictors:
        found = observed.deployments.get(object_name(deployment.name, predictor.name), {})
        status = found.get("status") or {}
        entry: Object = {"name": predictor.name, "traffic": weights.get(predictor.name, 0), "shadow": predictor.shadow}
        entry["replicas"] = int((found.get("spec") or {}).get("replicas", status.get("replicas", 0)))
        entry["availableReplicas"] = int(status.get("availableReplicas", 0))
        out.append(entry)
    return out


def problems(observed: Observed, expected: list[str]) -> tuple[list[str], list[str]]:
    """What failed and what is still on its way, each a line naming the Deployment or pod."""
    failed, waiting = [], []
    for name in expected:
        found = observed.deployments.get(name)
        if found is None:
            waiting.append(f"Deployment {name} is not there yet")
            continue
        gave_up = _condition(found, "Progressing")
        if gave_up and gave_up.get("status") == "False" and gave_up.get("reason") == "ProgressDeadlineExceeded":
            failed.append(f"Deployment {name}: {gave_up.get('message') or 'rollout timed out'}")
        waiting += _rollout(name, found)
    failed += [line for pod in observed.pods for line in _stuck(pod)]
    return failed, waiting


def _condition(obj: Object, kind: str) -> Object | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), None)


def _rollout(name: str, found: Object) -> list[str]:
    status = found.get("status") or {}
    want = int((found.get("spec") or {}).get("replicas", 1))
    if int(status.get("observedGeneration", 0)) < int((found.get("metadata") or {}).get("generation", 0)):
        return [f"Deployment {name}: the new spec is not yet seen"]
    updated, available = int(status.get("updatedReplicas", 0)), int(status.get("availableReplicas", 0))
    if updated < want or available < want:
        return [f"Deployment {name}: {min(updated, available)} of {want} pods updated and available"]
    return []


def _stuck(pod: Object) -> list[str]:
    status = pod.get("status") or {}
    name = (pod.get("metadata") or {}).get("name", "?")
    lines = []
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason not in STUCK:
            continue
        last = ((container.get("lastState") or {}).get("terminated") or {}).get("message") or waiting.get("message")
        detail = f": {last.strip()}" if last and last.strip() else ""
        lines.append(f"pod {name}, container {container.get('name')}: {reason}{detail}")
    return lines


def conditions(
    failure: Failure | None,
    failed: list[str],
    waiting: list[str],
    previous: list[Object],
    now: datetime,
    generation: int,
) -> list[Object]:
    """Ready, Progressing and Failed, each with the reason its status has."""
    if failure is None and failed:
        failure = Failure("PredictorFailed", "; ".join(failed))
    if failure is not None:
        states = [
            ("Ready", "False", failure.reason, failure.message),
            ("Progressing", "False", failure.reason, failure.message),
            ("Failed", "True", failure.reason, failure.message),
        ]
    elif waiting:
        message = "; ".join(waiting)
        states = [
            ("Ready", "False", "RollingOut", message),
            ("Progressing", "True", "RollingOut", message),
            ("Failed", "False", "RollingOut", ""),
        ]
    else:
        states = [
            ("Ready", "True", "Available", "every predictor is available"),
            ("Progressing", "False", "Complete", "every Deployment has rolled out"),
            ("Failed", "False", "Available", ""),
        ]
    before = {c.get("type"): c for c in previous}
    return [_condition_entry(state, before.get(state[0]), now, generation) for state in states]


def _condition_entry(state: tuple[str, str, str, str], before: Object | None, now: datetime, generation: int) -> Object:
    kind, status, reason, message = state
    moved = before is None or before.get("status") != status
    since = now.strftime("%Y-%m-%dT%H:%M:%SZ") if moved or not before else before.get("lastTransitionTime")
    entry = {"type": kind, "status": status, "reason": reason, "message": message}
    return entry | {"lastTransitionTime": since, "observedGeneration": generation}
