"""The operator's :class:`~daneel.k8s.reconcile.Cluster` on a real API server (kubernetes_asyncio).

Objects are written by server-side apply: a PATCH with content type
`application/apply-patch+yaml`, field manager `daneel`, forcing conflicts, so
the API server keeps what other managers own (an HPA's replica count, fields
that someone added by hand) and daneel owns exactly the fields it renders.
Kinds whose CRDs the cluster lacks (no Istio, KEDA or Prometheus Operator) are
skipped when listing. Credentials are those kopf logged in with (in cluster:
the service account; elsewhere: the kubeconfig).
"""

from __future__ import annotations

from typing import Any, cast

import kopf
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.dynamic import DynamicClient
from kubernetes_asyncio.dynamic.exceptions import ResourceNotFoundError

from daneel.k8s.manifests import KINDS
from daneel.k8s.names import APP, DEPLOYMENT_LABEL, MANAGED_BY_LABEL, label_value
from daneel.k8s.reconcile import ClusterError, Object, Ref
from daneel.k8s.status import Observed

FIELD_MANAGER = "daneel"


def _selector(deployment: str) -> str:
    return f"{DEPLOYMENT_LABEL}={label_value(deployment)},{MANAGED_BY_LABEL}={APP}"


def _failure(what: str, exc: ApiException) -> ClusterError:
    reason = getattr(exc, "reason", None) or type(exc).__name__
    return ClusterError(f"{what}: {getattr(exc, 'status', '?')} {reason}: {_message(exc)}")


def _message(exc: ApiException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    return str(body or exc)[:500]


class ApiCluster:
    """Server-side apply and reads through one API client, opened once per operator."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self._dynamic: DynamicClient | None = None

    async def dynamic(self) -> DynamicClient:
        if self._dynamic is None:
            self._dynamic = await DynamicClient(self.api)
        return self._dynamic

    async def _resource(self, api_version: str, kind: str) -> Any:
        dynamic = await self.dynamic()
        return await dynamic.resources.get(api_version=api_version, kind=kind)

    async def apply(self, obj: Object) -> None:
        what = f"{obj['kind']} {obj['metadata']['name']}"
        try:
            resource = await self._resource(obj["apiVersion"], obj["kind"])
            dynamic = await self.dynamic()
            await dynamic.server_side_apply(resource, body=obj, field_manager=FIELD_MANAGER, force_conflicts=True)
        except ResourceNotFoundError as exc:
            raise ClusterError(f"{what}: the cluster does not serve {obj['apiVersion']} {obj['kind']}") from exc
        except ApiException as exc:
            raise _failure(f"applying {what}", exc) from exc

    async def delete(self, namespace: str, ref: Ref) -> None:
        api_version, kind, name = ref
        try:
            resource = await self._resource(api_version, kind)
            await (await self.dynamic()).delete(resource, name=name, namespace=namespace)
        except ResourceNotFoundError:
            return
        except ApiException as exc:
            if exc.status != 404:
                raise _failure(f"deleting {kind} {name}", exc) from exc

    async def owned(self, namespace: str, deployment: str) -> list[Ref]:
        refs: list[Ref] = []
        for api_version, kind in KINDS:
            items = await self._list(api_version, kind, namespace, deployment, missing_ok=True)
            refs += [(api_version, kind, item["metadata"]["name"]) for item in items]
        return refs

    async def observe(self, namespace: str, deployment: str) -> Observed:
        deployments = await self._list("apps/v1", "Deployment", namespace, deployment)
        pods = await self._list("v1", "Pod", namespace, deployment)
        return Observed({item["metadata"]["name"]: item for item in deployments}, pods)

    async def _list(
        self, api_version: str, kind: str, namespace: str, deployment: str, missing_ok: bool = False
    ) -> list[Object]:
        try:
            resource = await self._resource(api_version, kind)
            found = await (await self.dynamic()).get(
                resource, namespace=namespace, label_selector=_selector(deployment)
            )
        except ResourceNotFoundError as exc:
            if missing_ok:
                return []
            raise ClusterError(f"the cluster does not serve {api_version} {kind}") from exc
        except ApiException as exc:
            raise _failure(f"listing {kind}", exc) from exc
        items: list[Object] = found.to_dict().get("items") or []
        return items

    async def event(self, body: Object, kind: str, reason: str, message: str) -> None:
        kopf.event(kopf.Body(cast(kopf.RawBody, body)), type=kind, reason=reason, message=message[:1024])

    async def read(self, namespace: str, api_version: str, kind: str, name: str) -> Object | None:
        """One object, or None when it is gone."""
        try:
            resource = await self._resource(api_version, kind)
            found = await (await self.dynamic()).get(resource, name=name, namespace=namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _failure(f"reading {kind} {name}", exc) from exc
        obj: Object = found.to_dict()
        return obj

    async def patch_status(self, namespace: str, api_version: str, kind: str, name: str, status: Object) -> None:
        """Merge `status` into the object's status subresource."""
        try:
            resource = await self._resource(api_version, kind)
            await (await self.dynamic()).patch(
                resource.subresources["status"],
                body={"metadata": {"name": name}, "status": status},
                namespace=namespace,
                content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            raise _failure(f"writing the status of {kind} {name}", exc) from exc
