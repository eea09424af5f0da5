"""What the operator does for one ModelDeployment, against a small interface to the cluster.

:func:`reconcile` renders the resource with the same function `daneel manifest`
uses, adds owner references (so Kubernetes deletes the objects with their
ModelDeployment), applies every object, deletes what it rendered before but no
longer does (a removed predictor), and reads back the status. :class:`Cluster`
is all it needs of the API server; daneel.k8s.api implements it with
server-side apply, and the tests with a fake.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from daneel.errors import DaneelError
from daneel.k8s import status, yamltext
from daneel.k8s.manifests import Options, render
from daneel.k8s.status import Failure, Observed
from daneel.spec import Deployment, InvalidDeployment, parse

Object = dict[str, Any]
#: (apiVersion, kind, name) of an object in the ModelDeployment's namespace.
Ref = tuple[str, str, str]
Clock = Callable[[], datetime]

APPLY_RETRY_S = 30.0


class ClusterError(DaneelError):
    """The API server refused or could not be reached; the operator retries."""

    reason = "CLUSTER_ERROR"


class Cluster(Protocol):
    async def apply(self, obj: Object) -> None:
        """Create or update `obj` by server-side apply."""

    async def delete(self, namespace: str, ref: Ref) -> None:
        """Delete an object; one already gone is no error."""

    async def owned(self, namespace: str, deployment: str) -> list[Ref]:
        """Objects of the kinds the renderer writes that carry the deployment's label."""

    async def observe(self, namespace: str, deployment: str) -> Observed:
        """The deployment's Deployments and pods."""

    async def event(self, body: Object, kind: str, reason: str, message: str) -> None:
        """Post an event (`kind` Normal or Warning) about the ModelDeployment `body`."""

    async def read(self, namespace: str, api_version: str, kind: str, name: str) -> Object | None:
        """One object, or None when it is gone."""

    async def patch_status(self, namespace: str, api_version: str, kind: str, name: str, status: Object) -> None:
        """Merge `status` into the object's status subresource."""


@dataclass(frozen=True)
class Outcome:
    """The status to write, the objects applied, and on failure why and whether to retry (after `retry` s)."""

    status: Object
    objects: list[Object]
    error: str | None = None
    retry: float | None = None


def now() -> datetime:
    return datetime.now(UTC)


def deployment_of(body: Object) -> Deployment:
    """The deployment a ModelDeployment object describes, validated as `daneel validate` would."""
    meta = body.get("metadata") or {}
    kept = {key: meta[key] for key in ("name", "namespace", "labels", "annotations") if meta.get(key)}
    document = {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"), "metadata": kept}
    document["spec"] = body.get("spec")
    try:
        return parse(yamltext.dump(document), f"{meta.get('namespace')}/{meta.get('name')}")
    except InvalidDeployment as exc:
        # the lines would be those of a file the user never wrote: the field paths say where
        raise InvalidDeployment(exc.source, [dataclasses.replace(p, line=None) for p in exc.problems]) from None


def owned_objects(body: Object, options: Options) -> list[Object]:
    """What `daneel manifest` renders for `body`, in its namespace, each owned by `body`."""
    meta = body["metadata"]
    objects = render(deployment_of(body), dataclasses.replace(options, namespace=meta["namespace"], workdir=None))
    owner = {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
    }
    for obj in objects:
        obj["metadata"]["ownerReferences"] = [dict(owner)]
    return objects


async def reconcile(body: Object, cluster: Cluster, options: Options, clock: Clock = now) -> Outcome:
    """Apply what `body` renders to, delete what it no longer does, and say how it stands."""
    try:
        objects = owned_objects(body, options)
    except DaneelError as exc:
        return await _failed(body, cluster, Failure("InvalidSpec", _one_line(exc)), None, clock)
    try:
        for obj in objects:
            await cluster.apply(obj)
        await _prune(body, cluster, objects)
        observed = await cluster.observe(body["metadata"]["namespace"], body["metadata"]["name"])
    except ClusterError as exc:
        return await _failed(body, cluster, Failure("ApplyFailed", exc.message), APPLY_RETRY_S, clock, objects)
    return Outcome(current_status(body, objects, observed, None, clock), objects)


async def refresh(body: Object, cluster: Cluster, options: Options, clock: Clock = now) -> Object:
    """The status from what the cluster reports now, applying nothing (a Deployment changed)."""
    try:
        objects = owned_objects(body, options)
    except DaneelError as exc:
        return current_status(body, [], Observed(), Failure("InvalidSpec", _one_line(exc)), clock)
    observed = await cluster.observe(body["metadata"]["namespace"], body["metadata"]["name"])
    return current_status(body, objects, observed, None, clock)


async def remove(body: Object, cluster: Cluster) -> list[Ref]:
    """Delete the objects of a deleted ModelDeployment now, rather than when garbage collection gets to them."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    refs = await cluster.owned(namespace, name)
    for ref in refs:
        await cluster.delete(namespace, ref)
    return refs


async def _prune(body: Object, cluster: Cluster, objects: list[Object]) -> None:
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    wanted = {(obj["apiVersion"], obj["kind"], obj["metadata"]["name"]) for obj in objects}
    for ref in await cluster.owned(namespace, name):
        if ref not in wanted:
            await cluster.delete(namespace, ref)


async def _failed(
    body: Object,
    cluster: Cluster,
    failure: Failure,
    retry: float | None,
    clock: Clock,
    objects: list[Object] | None = None,
) -> Outcome:
    await cluster.event(body, "Warning", failure.reason, failure.message)
    written = current_status(body, objects or [], Observed(), failure, clock)
    return Outcome(written, objects or [], failure.message, retry)


def current_status(
    body: Object, objects: list[Object], observed: Observed, failure: Failure | None, clock: Clock
) -> Object:
    """The whole status subresource; keys with nothing to say are None, which a merge patch removes."""
    meta = body["metadata"]
    generation = int(meta.get("generation", 0))
    previous = (body.get("status") or {}).get("conditions") or []
    expected = [obj["metadata"]["name"] for obj in objects if obj["kind"] == "Deployment"]
    failed, waiting = status.problems(observed, expected) if failure is None else ([], [])
    written: Object = {"observedGeneration": generation, "url": status.url(meta["name"], meta["namespace"])}
    written["traffic"], written["predictors"] = None, None
    if failure is None or failure.reason != "InvalidSpec":
        deployment = deployment_of(body)
        written["traffic"] = status.traffic_summary(deployment)
        written["predictors"] = status.predictors(deployment, observed)
    written["conditions"] = status.conditions(failure, failed, waiting, previous, clock(), generation)
    return written


def _one_line(exc: DaneelError) -> str:
    return "; ".join(exc.message.splitlines())
