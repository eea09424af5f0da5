"""`daneel operator`: kopf handlers that keep each ModelDeployment's objects as `daneel manifest` renders them.

- create, update and resume: reconcile (render, server-side apply, prune, status);
  a spec that does not validate is `Failed` until it changes (kopf's PermanentError),
  a refused apply is retried (TemporaryError);
- a timer re-applies every `drift_s` seconds, undoing hand edits to owned objects;
- a watch on the Deployments it owns keeps `status` current as pods come and go;
- delete: owner references let Kubernetes collect the objects; the handler
  deletes them at once as well, without a finalizer, so a stopped operator never
  blocks a deletion.

Several replicas are safe: kopf's peering pauses all but the one with the
highest priority (each process picks a random one unless told). kopf keeps its
bookkeeping in `daneel.dev/` annotations, the status is daneel's alone.
"""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from kubernetes_asyncio import client

from daneel.k8s.api import ApiCluster
from daneel.k8s.crd import GROUP, PLURAL, VERSION
from daneel.k8s.manifests import Options
from daneel.k8s.names import APP, MANAGED_BY_LABEL
from daneel.k8s.reconcile import Clock, Cluster, Object, now, reconcile, refresh, remove
from daneel.spec.model import API_VERSION, KIND

log = logging.getLogger("daneel.operator")

Connect = Callable[[], Awaitable[Cluster]]


@dataclass(frozen=True)
class Settings:
    """How the operator runs; `namespaces` empty means every namespace."""

    options: Options = field(default_factory=Options)
    namespaces: tuple[str, ...] = ()
    peering: str = "daneel"
    priority: int | None = None
    standalone: bool = False
    liveness: str | None = "http://0.0.0.0:8080/healthz"
    drift_s: float = 60.0


def plain(body: Mapping[str, Any]) -> Object:
    """kopf's read-only body as a plain dict."""
    return copy.deepcopy(dict(body))


def _write(patch: kopf.Patch, status: Object) -> None:
    for key, value in status.items():
        patch.status[key] = value


async def on_change(body: Object, patch: kopf.Patch, cluster: Cluster, options: Options, clock: Clock = now) -> None:
    """Create, update and resume: reconcile and write the status; raise for kopf to retry or not."""
    outcome = await reconcile(body, cluster, options, clock)
    _write(patch, outcome.status)
    if outcome.error is not None:
        if outcome.retry is None:
            raise kopf.PermanentError(outcome.error)
        raise kopf.TemporaryError(outcome.error, delay=outcome.retry)
    await cluster.event(body, "Normal", "Reconciled", f"applied {len(outcome.objects)} objects")


async def on_timer(body: Object, patch: kopf.Patch, cluster: Cluster, options: Options, clock: Clock = now) -> None:
    """Re-apply what the spec renders to, undoing drift; failures are in the status and events already."""
    outcome = await reconcile(body, cluster, options, clock)
    _write(patch, outcome.status)


async def on_rollout(deployment: Object, cluster: Cluster, options: Options, clock: Clock = now) -> None:
    """A Deployment daneel owns changed: write its ModelDeployment's status anew."""
    meta = deployment.get("metadata") or {}
    owners = meta.get("ownerReferences") or []
    owner = next((o for o in owners if o.get("apiVersion") == API_VERSION and o.get("kind") == KIND), None)
    if owner is None:
        return  # rendered by `daneel manifest` and applied by hand: no ModelDeployment to tell
    namespace = meta["namespace"]
    body = await cluster.read(namespace, API_VERSION, KIND, owner["name"])
    if body is None:
        return
    status = await refresh(body, cluster, options, clock)
    await cluster.patch_status(namespace, API_VERSION, KIND, owner["name"], status)


async def on_delete(body: Object, cluster: Cluster) -> None:
    removed = await remove(body, cluster)
    log.info("deleted %d objects of %s/%s", len(removed), body["metadata"]["namespace"], body["metadata"]["name"])


def registry(connect: Connect, options: Options, drift_s: float) -> kopf.OperatorRegistry:
    """The operator's handlers, on a registry of their own."""
    handlers = kopf.OperatorRegistry()
    resource = (GROUP, VERSION, PLURAL)

    @kopf.on.login(registry=handlers)
    async def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return await kopf.login_via_async_client(**kwargs)

    async def change(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        await on_change(plain(body), patch, await connect(), options)

    for cause, on in (("create", kopf.on.create), ("update", kopf.on.update), ("resume", kopf.on.resume)):
        on(*resource, id=cause, registry=handlers)(change)

    @kopf.timer(*resource, interval=drift_s, initial_delay=drift_s, registry=handlers)
    async def drift(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        await on_timer(plain(body), patch, await connect(), options)

    @kopf.on.delete(*resource, optional=True, registry=handlers)
    async def delete(body: kopf.Body, **_: Any) -> None:
        await on_delete(plain(body), await connect())

    @kopf.on.event("apps", "v1", "deployments", labels={MANAGED_BY_LABEL: APP}, registry=handlers)
    async def rollout(body: kopf.Body, **_: Any) -> None:
        await on_rollout(plain(body), await connect(), options)

    return handlers


class _Connection:
    """One API client for the operator's life, opened after kopf has logged in."""

    def __init__(self) -> None:
        self.cluster: ApiCluster | None = None

    async def __call__(self) -> Cluster:
        if self.cluster is None:
            self.cluster = ApiCluster(client.ApiClient())
        return self.cluster

    async def close(self) -> None:
        if self.cluster is not None:
            await self.cluster.api.close()


def operator_settings(standalone: bool) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.scanning.disabled = True  # no list/watch of CRDs and namespaces: the RBAC stays small
    settings.posting.level = logging.WARNING
    settings.peering.mandatory = not standalone
    return settings


def run(settings: Settings) -> None:
    """Run the operator until it is stopped (SIGINT, SIGTERM)."""
    connection = _Connection()
    handlers = registry(connection, settings.options, settings.drift_s)

    @kopf.on.cleanup(registry=handlers)
    async def close(**_: Any) -> None:
        await connection.close()

    priority = settings.priority if settings.priority is not None else random.randint(1, 1_000_000)
    kopf.run(
        registry=handlers,
        settings=operator_settings(settings.standalone),
        standalone=settings.standalone,
        priority=priority,
        peering_name=settings.peering,
        liveness_endpoint=settings.liveness,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
    )
