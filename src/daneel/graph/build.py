"""From a predictor's graph in a deployment file to a :class:`Graph` ready to load.

Each node becomes a component, by the first rule that fits:

1. `implementation` is a built-in (RANDOM_ABTEST, AVERAGE_COMBINER,
   EPSILON_GREEDY, THOMPSON_SAMPLING);
2. `endpoint.service_host` is set: a remote node, over REST (in the protocol
   the caller names) or the V2 gRPC protocol;
3. `implementation` is a prepackaged server (SKLEARN_SERVER, ...): its model
   files are at `modelUri`;
4. `implementation` names a Python class (`pkg.module:Class`, or `Class` in the
   node's folder);
5. otherwise the node's folder says what it is, as for `daneel serve DIR`: the
   folder at `modelUri`, or `<components dir>/<node name>` for a Seldon file
   that only names a container image.

A relative `modelUri` is relative to the deployment file's folder; other URIs
are fetched by the `fetch` the caller injects. A node or predictor with
`detectors` is wrapped in :class:`~daneel.detect.watch.Watched`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daneel.errors import DaneelError, LoadError
from daneel.graph import builtins
from daneel.graph.executor import PREDICT, Graph, GraphNode, calls_for
from daneel.graph.state import Store
from daneel.observe.payloads import Source
from daneel.observe.telemetry import OFF, Telemetry
from daneel.runtime import loader, parameters, prepackaged
from daneel.runtime.component import Component, Kind
from daneel.spec import languages
from daneel.spec.model import LANGUAGE_SERVERS, EndpointType, Node, Predictor, node_type
from daneel.spec.model import Detector as DetectorSpec

#: Seldon's name for "no implementation": the node's image has the code.
UNKNOWN_IMPLEMENTATION = "UNKNOWN_IMPLEMENTATION"
_SELDON_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
#: Seldon's name for the V2 protocol.
_ALIASES = {"kfserving": "v2"}


def _no_fetch(uri: str) -> Path:
    raise LoadError(f"{uri}: cannot fetch a model from this URI here; only local folders can be used")


@dataclass(slots=True)
class BuildContext:
    """What building a graph needs from its caller."""

    base_dir: Path = field(default_factory=Path.cwd)  # the deployment file's folder
    components_dir: Path | None = None  # holds <node name>/ for nodes that only name an image
    fetch: Callable[[str], Path] = _no_fetch  # a model URI with a scheme to a local folder
    policy: str = "auto"
    executor: Executor | None = None
    state: Store | None = None  # where routers that learn keep their state
    protocol: str = "seldon"  # what remote REST nodes speak: seldon or v2
    deployment: str = ""  # with the predictor's and router's names, keys the routers' state
    rng: random.Random = field(default_factory=random.Random)
    telemetry: Telemetry = OFF
    namespace: str | None = None  # the deployment's, named in request log events


def build_graph(predictor: Predictor, context: BuildContext) -> Component:
    """The predictor's graph; with detectors on the predictor, the graph watched by them."""
    root = _build(predictor.graph, predictor, context)
    graph = Graph(predictor.name, root, context.deployment, context.telemetry)
    if not predictor.detectors:
        return graph
    return _watched(graph, predictor.detectors, predictor.name, "", frozenset({PREDICT}), context)


def _build(node: Node, predictor: Predictor, context: BuildContext) -> GraphNode:
    children = [_build(child, predictor, context) for child in node.children]
    try:
        component, kind = _component(node, predictor.name, len(children), context)
    except DaneelError as exc:
        message = exc.message if exc.message.startswith(f"{node.name}:") else f"{node.name}: {exc.message}"
        raise LoadError(message) from exc
    methods = None if node.methods is None else [method.value for method in node.methods]
    container = predictor.container(node.name) or {}
    label = str(container["image"]) if container.get("image") else None
    calls = calls_for(kind, methods)
    if node.detectors:
        component = _watched(component, node.detectors, predictor.name, node.name, calls, context)
    graph_node = GraphNode(component, calls, children, node.timeout_seconds, label)
    payloads = context.telemetry.payloads
    if node.logger is not None and payloads is not None:
        source = Source(context.deployment, predictor.name, node.name, context.namespace)
        graph_node.logger = payloads.node_logger(node.logger, source, context.base_dir)
    return graph_node


def _component(node: Node, predictor: str, children: int, context: BuildContext) -> tuple[Component, Kind]:
    """The node's component, and the type the executor treats it as."""
    implementation = node.implementation if node.implementation != UNKNOWN_IMPLEMENTATION else None
    params = _parameters(node)
    kind = Kind(node_type(node).value)
    if implementation in builtins.BUILTINS:
        key = "/".join((context.deployment, predictor, node.name))
        settings = builtins.Settings(node.name, params, children, context.state, key, context.rng)
        return builtins.build(implementation, settings), kind
    if node.remote:
        return _remote(node, kind, context), kind
    if implementation in prepackaged.SERVERS:
        spec = loader.ComponentSpec(node.name, implementation, _model_folder(node, context), kind, params)
    elif implementation in LANGUAGE_SERVERS:
        spec = _language_spec(node, implementation, params, context)
        spec.kind = kind
    elif implementation is not None:
        spec = loader.ComponentSpec(node.name, _python(implementation), _code_folder(node, context), kind, params)
    else:
        spec = loader.resolve(str(_folder(node, context)), node.name, params)
        if spec.kind is not None and node.type is None and node.methods is None:
            kind = spec.kind  # the folder's daneel.yaml (or SERVICE_TYPE) says what it is
        spec.kind = kind
    if node.batching is not None:
        spec.batching = node.batching  # the deployment's word over the folder's daneel.yaml
    return loader.build(spec, context.policy, context.executor, context.telemetry), kind


def _watched(
    component: Component,
    specs: list[DetectorSpec],
    predictor: str,
    node: str,
    calls: frozenset[str],
    context: BuildContext,
) -> Component:
    """`component` watched by its detectors, each loading from its modelUri (or, a class, the deployment's folder)."""
    # Imported here: a deployment without detectors does not pay for them at start.
    from daneel.detect.running import Detector, Place
    from daneel.detect.watch import Watched, watched_method

    place = Place(context.deployment, predictor, node)
    detectors = []
    for spec in specs:
        try:
            folder = _uri_folder(spec.model_uri, context) if spec.model_uri else context.base_dir.resolve()
        except DaneelError as exc:
            raise LoadError(f"detector {spec.name}: {exc.message}") from exc
        detectors.append(Detector(spec, folder, place, context.telemetry))
    return Watched(component, detectors, watched_method(calls), context.telemetry)


def _parameters(node: Node) -> dict[str, Any]:
    typed = [parameter.model_dump(mode="json") for parameter in node.parameters]
    return parameters.parse(typed, f"{node.name}.parameters")


def _remote(node: Node, kind: Kind, context: BuildContext) -> Component:
    endpoint = node.endpoint
    assert endpoint is not None and endpoint.service_host is not None
    if endpoint.service_port is None:
        raise LoadError(f"endpoint.service_port is missing for remote host {endpoint.service_host}")
    host, port, timeout = endpoint.service_host, endpoint.service_port, node.timeout_seconds
    # Imported here: httpx and grpc cost a deployment without remote nodes nothing at start.
    from daneel.graph.remote import PROTOCOLS, RemoteComponent
    from daneel.graph.remote_grpc import GrpcRemoteComponent

    if endpoint.type is EndpointType.GRPC:
        return GrpcRemoteComponent(node.name, kind, host, port, timeout)
    protocol = _ALIASES.get(context.protocol, context.protocol)
    if protocol not in PROTOCOLS:
        raise LoadError(f"remote nodes speak protocol seldon or v2 (kfserving); got {context.protocol!r}")
    return RemoteComponent(node.name, kind, host, port, protocol, timeout)


def _python(implementation: str) -> str:
    if _SELDON_NAME.fullmatch(implementation):
        known = sorted([*builtins.BUILTINS, *prepackaged.SERVERS])
        raise LoadError(
            f"unknown implementation {implementation}; expected one of {', '.join(known)}, or a Python class"
            " as pkg.module:Class"
        )
    return implementation


def _folder(node: Node, context: BuildContext) -> Path:
    """The folder that holds a node with no implementation: its modelUri, or its folder in the components dir."""
    if node.model_uri:
        return _model_folder(node, context)
    if context.components_dir is None:
        raise LoadError(
            "no implementation, modelUri or endpoint; name one, or serve with a components folder"
            f" that holds {node.name}/"
        )
    folder = context.components_dir / node.name
    if not folder.is_dir():
        raise LoadError(
            f"no implementation, modelUri or endpoint, and no folder {folder} with its code"
            " (a Seldon graph node that names only an image is served from <components dir>/<node name>)"
        )
    return folder.resolve()


def _code_folder(node: Node, context: BuildContext) -> Path:
    """Where a node's Python class is imported from: its modelUri, its components folder, or the deployment's."""
    if node.model_uri:
        return _model_folder(node, context)
    if context.components_dir is not None and (context.components_dir / node.name).is_dir():
        return (context.components_dir / node.name).resolve()
    return context.base_dir.resolve()


def _language_spec(
    node: Node, implementation: str, params: dict[str, Any], context: BuildContext
) -> loader.ComponentSpec:
    """NODEJS_SERVER or JAVA_SERVER: the component in the modelUri's folder, which must be in that language."""
    folder = _model_folder(node, context)
    spec = loader.resolve(str(folder), node.name, params)
    wanted = LANGUAGE_SERVERS[implementation]
    if spec.language != wanted:
        expected = f"a {wanted} component ({', '.join(languages.MARKERS[wanted])})"
        raise LoadError(f"{implementation} serves {expected}; {folder} holds a {spec.language} one")
    return spec


def _model_folder(node: Node, context: BuildContext) -> Path:
    if not node.model_uri:
        raise LoadError(f"{node.implementation} needs modelUri, the folder or URI of the model files")
    return _uri_folder(node.model_uri, context)


def _uri_folder(uri: str, context: BuildContext) -> Path:
    """A local folder for a modelUri: a path relative to the deployment file, file://, or fetched."""
    if uri.startswith("file://"):
        path = Path(uri.removeprefix("file://"))
    elif "://" in uri or uri.startswith(("models:/", "runs:/")):
        path = context.fetch(uri)
    else:
        path = Path(uri).expanduser()
    path = path if path.is_absolute() else context.base_dir / path
    if not path.is_dir():
        raise LoadError(f"modelUri {uri}: {path} is not a folder")
    return path.resolve()
