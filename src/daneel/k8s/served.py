"""The deployment files the pods serve: one per predictor, and the router's.

Each predictor's pod runs `daneel serve` on a ModelDeployment holding only that
predictor, rewritten for the cluster:

- a node whose `modelUri` is remote (s3://, http(s)://, models:/, ...) reads
  `/mnt/models/<node>`, which an init container fills with `daneel fetch`;
- a local `modelUri` names files inside the image, which `daneel build` copies to
  /app: a relative path is taken from the file's folder, and must lie inside the
  working folder (the project folder that `daneel build` copies);
- a node whose folder holds a Node.js or Java component, or whose implementation
  is NODEJS_SERVER or JAVA_SERVER, is noted, so that the predictor's pod runs
  daneel's runtime image for that language;
- a node whose container in `componentSpecs` names an image runs in its own pod
  and becomes a remote node, called over REST on its Service (Seldon's
  microservice contract, port 9000);
- traffic, shadows, sticky routing and Kubernetes-only fields are left out:
  Istio or the router splits requests between predictors.

Without Istio the router serves a deployment whose predictors are each one
remote node, the predictor's Service, with the original weights and shadow;
daneel's own traffic layer splits requests in process.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daneel.errors import InvalidInput
from daneel.k8s.names import object_name
from daneel.spec.languages import Language, language_of
from daneel.spec.model import (
    API_VERSION,
    KIND,
    LANGUAGE_SERVERS,
    ComponentSpec,
    Deployment,
    Detector,
    Node,
    NodeType,
    Predictor,
    node_type,
)

MODELS_DIR = "/mnt/models"
APP_DIR = "/app"
HTTP_PORT = 8080
GRPC_PORT = 8081
#: Where a Seldon microservice image listens (Seldon's PREDICTIVE_UNIT_HTTP_SERVICE_PORT).
COMPONENT_PORT = 9000

#: Node fields a remote node keeps besides its name, type and methods; the rest describe code that runs elsewhere.
_REMOTE_KEEPS = ("children", "timeoutSeconds", "logger", "detectors")
_SPEC_KEEPS = ("protocol", "transport", "annotations")
_PREDICTOR_KEEPS = ("name", "graph", "labels", "annotations", "detectors")

File = dict[str, Any]


@dataclass(frozen=True)
class Fetch:
    """An init container's download: `daneel fetch uri path`, with credentials from `secret`."""

    node: str
    uri: str
    path: str
    secret: str | None


@dataclass(frozen=True)
class OwnPod:
    """A node that runs in a pod of its own, from the image of its container in `componentSpecs`."""

    node: Node
    container: dict[str, Any]
    component: ComponentSpec
    service: str
    model_uri: str | None  # what the component reads: Seldon passes it as the model_uri parameter
    fetch: Fetch | None


@dataclass
class PredictorFile:
    """What one predictor's pod serves, and what its pods need to serve it."""

    predictor: Predictor
    name: str
    file: File
    fetches: list[Fetch] = field(default_factory=list)
    own_pods: list[OwnPod] = field(default_factory=list)
    #: The nodes its pod serves in Node.js or Java, and their language ("nodejs", "java").
    languages: dict[str, Language] = field(default_factory=dict)


def predictor_file(deployment: Deployment, index: int, workdir: Path | None) -> PredictorFile:
    """The file predictor `index` serves; `workdir` is the folder `daneel build` copies into /app."""
    predictor = deployment.spec.predictors[index]
    name = object_name(deployment.name, predictor.name)
    out = PredictorFile(predictor, name, {})
    dumped = _dump(predictor)
    loc = f"spec.predictors[{index}].graph"
    context = _Context(deployment, out, workdir)
    dumped["graph"] = _rewrite(predictor.graph, dumped["graph"], loc, context)
    _detectors(predictor.detectors, dumped, predictor.name, f"spec.predictors[{index}]", context)
    kept = {key: dumped[key] for key in _PREDICTOR_KEEPS if key in dumped}
    out.file = _file(deployment, _spec(deployment) | {"predictors": [kept]})
    return out


def router_file(deployment: Deployment) -> File:
    """The router's file: each predictor a remote node on its Service, with its weight or as the shadow."""
    weights = deployment.traffic()
    predictors = []
    for predictor in deployment.spec.predictors:
        endpoint = {"service_host": object_name(deployment.name, predictor.name), "service_port": HTTP_PORT}
        graph = {"name": predictor.name, "type": "MODEL", "endpoint": {**endpoint, "type": "REST"}}
        share = {"shadow": True} if predictor.shadow else {"traffic": weights[predictor.name]}
        predictors.append({"name": predictor.name, **share, "graph": graph})
    spec: dict[str, Any] = {"protocol": "seldon", "predictors": predictors}
    if deployment.spec.sticky is not None:
        spec["sticky"] = deployment.spec.sticky.model_dump(by_alias=True, exclude_none=True)
    return _file(deployment, spec)


def is_remote_uri(uri: str) -> bool:
    """Whether `uri` is downloaded (s3://, https://, models:/, ...) rather than read from the image."""
    return ("://" in uri and not uri.startswith("file://")) or uri.startswith("models:")


def _file(deployment: Deployment, spec: dict[str, Any]) -> File:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": deployment.name}, "spec": spec}


def _spec(deployment: Deployment) -> dict[str, Any]:
    dumped = deployment.spec.model_dump(by_alias=True, exclude_defaults=True, exclude_none=True, mode="json")
    spec = {key: dumped[key] for key in _SPEC_KEEPS if dumped.get(key)}
    store = deployment.spec.state_store
    if store and "://" in store:  # a file would sit on the read-only config volume; the default is the state dir
        spec["stateStore"] = store
    return spec


def _dump(predictor: Predictor) -> dict[str, Any]:
    return predictor.model_dump(by_alias=True, exclude_defaults=True, exclude_none=True, mode="json")


@dataclass(frozen=True)
class _Context:
    deployment: Deployment
    out: PredictorFile
    workdir: Path | None


def _rewrite(node: Node, dumped: dict[str, Any], loc: str, context: _Context) -> dict[str, Any]:
    children = [
        _rewrite(child, dumped["children"][i], f"{loc}.children[{i}]", context) for i, child in enumerate(node.children)
    ]
    if children:
        dumped["children"] = children
    if not node.remote:
        dumped.pop("endpoint", None)
    _detectors(node.detectors, dumped, node.name, loc, context)
    own = _container_of(context.out.predictor, node.name)
    if own is not None and own[1].get("image"):
        return _own_pod(node, dumped, loc, context, own)
    uri = node.model_uri
    if uri is None and node.image_only:
        uri = _component_folder(node, context.deployment)
    language = _language(node, uri, context.deployment.base_dir)
    if language != "python":
        context.out.languages[node.name] = language
    if uri is not None:
        dumped["modelUri"] = _model_path(node, uri, f"{loc}.modelUri", context, context.out.fetches)
    return dumped


def _language(node: Node, uri: str | None, base: Path | None) -> Language:
    """The node's language: its implementation's (NODEJS_SERVER), else its local folder's, when there is one to read.

    The operator reads no files (the folders lie in the image): there a remote or local folder in Node.js or
    Java needs NODEJS_SERVER or JAVA_SERVER.
    """
    named = LANGUAGE_SERVERS.get(node.implementation or "")
    if named is not None:
        return named
    if uri is None or base is None or is_remote_uri(uri) or posixpath.isabs(uri.removeprefix("file://")):
        return "python"
    return language_of(base / uri.removeprefix("file://"))


def _detectors(detectors: list[Detector], dumped: dict[str, Any], owner: str, loc: str, context: _Context) -> None:
    """Detectors run in the pod that serves what they watch: their folders are fetched or found as a node's are."""
    for i, detector in enumerate(detectors):
        if detector.model_uri:
            where = f"{loc}.detectors[{i}].modelUri"
            name = f"{owner}-{detector.name}"
            path = _uri_path(name, None, detector.model_uri, where, context, context.out.fetches)
            dumped["detectors"][i]["modelUri"] = path


def _own_pod(
    node: Node, dumped: dict[str, Any], loc: str, context: _Context, own: tuple[ComponentSpec, dict[str, Any]]
) -> dict[str, Any]:
    deployment, out = context.deployment, context.out
    service = object_name(deployment.name, out.predictor.name, node.name)
    fetches: list[Fetch] = []
    model_uri = _model_path(node, node.model_uri, f"{loc}.modelUri", context, fetches) if node.model_uri else None
    out.own_pods.append(OwnPod(node, own[1], own[0], service, model_uri, fetches[0] if fetches else None))
    kind = "UNKNOWN_TYPE" if node.type is NodeType.UNKNOWN_TYPE else node_type(node).value
    remote: dict[str, Any] = {"name": node.name, "type": kind}
    if "methods" in dumped:
        remote["methods"] = dumped["methods"]
    remote["endpoint"] = {"service_host": service, "service_port": COMPONENT_PORT, "type": "REST"}
    return remote | {key: dumped[key] for key in _REMOTE_KEEPS if key in dumped}


def _component_folder(node: Node, deployment: Deployment) -> str | None:
    """The folder `--components DIR` (or the file's annotation) gives a node, relative to the file."""
    folder, base = deployment.components_dir, deployment.base_dir
    if folder is None:
        return None
    return os.path.relpath(folder / node.name, base) if base is not None else str(folder / node.name)


def _model_path(node: Node, uri: str, loc: str, context: _Context, fetches: list[Fetch]) -> str:
    return _uri_path(node.name, node.env_secret_ref_name, uri, loc, context, fetches)


def _uri_path(name: str, secret: str | None, uri: str, loc: str, context: _Context, fetches: list[Fetch]) -> str:
    if is_remote_uri(uri):
        path = posixpath.join(MODELS_DIR, object_name(name))
        fetches.append(Fetch(name, uri, path, secret))
        return path
    return _in_image(uri.removeprefix("file://"), loc, context)


def _in_image(path: str, loc: str, context: _Context) -> str:
    if posixpath.isabs(path):
        return path
    base = context.deployment.base_dir
    if base is None or context.workdir is None:
        return posixpath.normpath(posixpath.join(APP_DIR, path))
    relative = Path(os.path.relpath((base / path).resolve(), context.workdir.resolve()))
    if relative.parts and relative.parts[0] == "..":
        expected = (
            f"expected a path inside {context.workdir}, which `daneel build` copies into the image's {APP_DIR}, "
            f"or a remote URI (s3://, https://, models:/); got {path}"
        )
        raise InvalidInput(loc, expected)
    return posixpath.join(APP_DIR, relative.as_posix()) if relative != Path(".") else APP_DIR


def _container_of(predictor: Predictor, name: str) -> tuple[ComponentSpec, dict[str, Any]] | None:
    for component in predictor.component_specs:
        for container in component.containers():
            if container.get("name") == name:
                return component, container
    return None
