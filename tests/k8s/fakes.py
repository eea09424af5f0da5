"""A fake Kubernetes API for the operator's handlers.

No Kubernetes API server can run on the machines these tests run on (none is in the
package registries, and there is no container engine), so the handlers are called
with this stand-in for daneel.k8s.api.ApiCluster: it keeps what would have been
applied, by kind and name, and plays back the Deployments' and pods' status a
test sets.
"""

from __future__ import annotations

import copy
from typing import Any

from daneel.k8s.reconcile import ClusterError, Object, Ref
from daneel.k8s.status import Observed


class FakeCluster:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Object] = {}  # (namespace, kind, name) → last applied
        self.applied: list[Object] = []  # every apply, in order
        self.deleted: list[Ref] = []
        self.events: list[tuple[str, str, str]] = []
        self.statuses: dict[str, Object] = {}  # Deployment name → its status, played back
        self.pods: list[Object] = []
        self.resources: dict[tuple[str, str], Object] = {}  # ModelDeployments by (namespace, name)
        self.patched: list[tuple[str, Object]] = []
        self.refuse: str | None = None  # apply fails for objects of this kind

    async def apply(self, obj: Object) -> None:
        if obj["kind"] == self.refuse:
            raise ClusterError(f"applying {obj['kind']} {obj['metadata']['name']}: 403 Forbidden: not allowed")
        obj = copy.deepcopy(obj)
        self.applied.append(obj)
        self.objects[(obj["metadata"]["namespace"], obj["kind"], obj["metadata"]["name"])] = obj

    async def delete(self, namespace: str, ref: Ref) -> None:
        self.deleted.append(ref)
        self.objects.pop((namespace, ref[1], ref[2]), None)

    async def owned(self, namespace: str, deployment: str) -> list[Ref]:
        return [
            (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
            for (ns, _, _), obj in self.objects.items()
            if ns == namespace and obj["metadata"]["labels"].get("daneel.dev/deployment") == deployment
        ]

    async def observe(self, namespace: str, deployment: str) -> Observed:
        deployments = {}
        for (ns, kind, name), obj in self.objects.items():
            if ns == namespace and kind == "Deployment":
                deployments[name] = {**copy.deepcopy(obj), "status": self.statuses.get(name, {})}
        return Observed(deployments, copy.deepcopy(self.pods))

    async def event(self, body: Object, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))

    async def read(self, namespace: str, api_version: str, kind: str, name: str) -> Object | None:
        return copy.deepcopy(self.resources.get((namespace, name)))

    async def patch_status(self, namespace: str, api_version: str, kind: str, name: str, status: Object) -> None:
        self.patched.append((name, status))

    def ready(self, generation: int = 1) -> None:
        """Play back every applied Deployment as rolled out, with all its pods available."""
        for (_, kind, name), obj in self.objects.items():
            if kind == "Deployment":
                want = obj["spec"].get("replicas", 1)
                self.statuses[name] = {
                    "observedGeneration": generation,
                    "replicas": want,
                    "updatedReplicas": want,
                    "availableReplicas": want,
                }

    def of_kind(self, kind: str) -> dict[str, Any]:
        return {name: obj for (_, k, name), obj in self.objects.items() if k == kind}
