"""Traffic with Istio: a VirtualService splitting requests by weight, and a DestinationRule naming the predictors.

The deployment's Service selects the pods of every predictor; the DestinationRule
makes each predictor a subset (by the `daneel.dev/predictor` label), and the
VirtualService sends each request to one subset by weight and mirrors it to the
shadow's. Destinations name no port, so HTTP (8080) and gRPC (8081) are split alike.

Istio picks a weighted route per request and cannot hash a header onto the
weights. With `spec.sticky.header`, a request that names its predictor in the
`X-Daneel-Predictor` header (every answer carries that header) goes to that
predictor, so a client that sends back the header of its first answer stays
where it landed; and the DestinationRule hashes the sticky header to keep one
user on one pod. Hashing users onto the weights themselves needs daneel's
router (`--no-istio`).
"""

from __future__ import annotations

from typing import Any

from daneel.k8s.names import PREDICTOR_LABEL, label_value, object_name
from daneel.spec.model import Deployment, Predictor

API_VERSION = "networking.istio.io/v1"
PREDICTOR_HEADER = "x-daneel-predictor"

Object = dict[str, Any]


def _destination(host: str, predictor: Predictor) -> dict[str, str]:
    return {"host": host, "subset": object_name(predictor.name)}


def virtual_service(deployment: Deployment, metadata: Object, host: str) -> Object:
    """Weighted routes to the predictors' subsets, the shadow mirrored, pinned routes for sticky users."""
    weights = deployment.traffic()
    served = [p for p in deployment.spec.predictors if not p.shadow]
    mirror = _mirror(deployment, host)
    routes: list[Object] = []
    sticky = deployment.spec.sticky
    if sticky is not None and sticky.header:
        for predictor in served:
            match = [{"headers": {PREDICTOR_HEADER: {"exact": predictor.name}}}]
            route = [{"destination": _destination(host, predictor)}]
            routes.append({"name": object_name("pinned", predictor.name), "match": match, "route": route, **mirror})
    weighted = [{"destination": _destination(host, p), "weight": weights[p.name]} for p in served]
    routes.append({"name": "traffic", "route": weighted, **mirror})
    spec = {"hosts": [host], "http": routes}
    return {"apiVersion": API_VERSION, "kind": "VirtualService", "metadata": metadata, "spec": spec}


def _mirror(deployment: Deployment, host: str) -> Object:
    shadow = deployment.shadow()
    if shadow is None:
        return {}
    return {"mirror": _destination(host, shadow), "mirrorPercentage": {"value": 100.0}}


def destination_rule(deployment: Deployment, metadata: Object, host: str) -> Object:
    """A subset per predictor, picked by its pods' `daneel.dev/predictor` label."""
    subsets = [
        {"name": object_name(p.name), "labels": {PREDICTOR_LABEL: label_value(p.name)}}
        for p in deployment.spec.predictors
    ]
    spec: Object = {"host": host}
    sticky = deployment.spec.sticky
    if sticky is not None and sticky.header:
        spec["trafficPolicy"] = {"loadBalancer": {"consistentHash": {"httpHeaderName": sticky.header}}}
    spec["subsets"] = subsets
    return {"apiVersion": API_VERSION, "kind": "DestinationRule", "metadata": metadata, "spec": spec}
