"""The deployment schema: daneel's ModelDeployment and Seldon's SeldonDeployment.

Field names on the wire are Seldon's (`modelUri`, `componentSpecs`, the
endpoint's `service_host`); Python attributes are snake_case. Unknown fields
are errors. daneel's own additions (`timeoutSeconds`, `sticky`, `stateStore`,
`batching`, `logger`, `detectors`) are optional, so Seldon files load unchanged.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from pydantic.alias_generators import to_camel

from daneel.spec.languages import Language
from daneel.spec.parameters import convert

API_VERSION = "daneel.dev/v1alpha1"
KIND = "ModelDeployment"
SELDON_API_VERSIONS = (
    "machinelearning.seldon.io/v1",
    "machinelearning.seldon.io/v1alpha2",
    "machinelearning.seldon.io/v1alpha3",
)
SELDON_KIND = "SeldonDeployment"


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel)


class NodeType(enum.Enum):
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    MODEL = "MODEL"
    TRANSFORMER = "TRANSFORMER"
    OUTPUT_TRANSFORMER = "OUTPUT_TRANSFORMER"
    ROUTER = "ROUTER"
    COMBINER = "COMBINER"


#: Implementations that fix a node's type: daneel's routers and combiners, and the prepackaged servers.
#: An upper-case implementation missing here is an error, so a new prepackaged server is added here too.
BUILTIN_TYPES: dict[str, NodeType] = {
    "RANDOM_ABTEST": NodeType.ROUTER,
    "EPSILON_GREEDY": NodeType.ROUTER,
    "THOMPSON_SAMPLING": NodeType.ROUTER,
    "AVERAGE_COMBINER": NodeType.COMBINER,
    **dict.fromkeys(
        (
            "SKLEARN_SERVER",
            "XGBOOST_SERVER",
            "LIGHTGBM_SERVER",
            "ONNX_SERVER",
            "MLFLOW_SERVER",
            "PYTORCH_SERVER",
            "TENSORFLOW_SERVER",
            "CATBOOST_SERVER",
            "TRITON_SERVER",
            "HUGGINGFACE_SERVER",
        ),
        NodeType.MODEL,
    ),
}
UNKNOWN_IMPLEMENTATION = "UNKNOWN_IMPLEMENTATION"
PREPACKAGED_SERVERS = tuple(name for name in BUILTIN_TYPES if name.endswith("_SERVER"))
#: Implementations that say a node's modelUri holds a Node.js or Java component (docs/languages.md): what a
#: remote modelUri cannot tell before it is fetched. They fix no type; a local folder tells its language itself.
LANGUAGE_SERVERS: dict[str, Language] = {"NODEJS_SERVER": "nodejs", "JAVA_SERVER": "java"}


class Method(enum.Enum):
    TRANSFORM_INPUT = "TRANSFORM_INPUT"
    TRANSFORM_OUTPUT = "TRANSFORM_OUTPUT"
    ROUTE = "ROUTE"
    AGGREGATE = "AGGREGATE"
    SEND_FEEDBACK = "SEND_FEEDBACK"


class ParameterType(enum.Enum):
    INT = "INT"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    STRING = "STRING"
    BOOL = "BOOL"
    JSON = "JSON"


class Parameter(Schema):
    """A constructor argument of a node's component."""

    name: str = Field(description="Keyword argument of the component's constructor.")
    value: Any = Field(description="The value, as text in Seldon files; converted by `type`.")
    type: ParameterType = Field(ParameterType.STRING, description="INT, FLOAT, DOUBLE, STRING, BOOL or JSON.")

    def typed(self) -> Any:
        """The value converted to its `type`; ValueError when it is not one."""
        return convert(self.type.value, self.value)


class EndpointType(enum.Enum):
    REST = "REST"
    GRPC = "GRPC"


class Endpoint(Schema):
    """Where a remote node listens. Without `service_host` the node runs in process."""

    service_host: str | None = Field(None, alias="service_host", description="Host of a remote node.")
    service_port: int | None = Field(None, alias="service_port", description="Port of a remote node.")
    type: EndpointType = Field(EndpointType.REST, description="REST or GRPC.")
    http_port: int | None = Field(None, description="Seldon's per-container HTTP port (read, not used locally).")
    grpc_port: int | None = Field(None, description="Seldon's per-container gRPC port (read, not used locally).")


class LoggerMode(enum.Enum):
    ALL = "all"
    REQUEST = "request"
    RESPONSE = "response"


class Logger(Schema):
    """Where a deployment's, or a node's, requests and responses are logged (docs/request-logging.md).

    Seldon's `{url, mode}`; with neither `url` nor `file`, events go where `--request-log` says.
    """

    url: str | None = Field(None, description="An http(s) URL that takes CloudEvents, one POST per event.")
    file: str | None = Field(None, description="A JSON-lines file events are appended to (relative to the file).")
    mode: LoggerMode = Field(LoggerMode.ALL, description="all, request or response.")
    sample: float = Field(1.0, ge=0.0, le=1.0, description="Fraction of requests logged, drawn per request.")


class Batching(Schema):
    """Dynamic batching: requests that queue while the model is busy go to it as one batch."""

    max_batch_size: int = Field(32, ge=1, alias="max_batch_size", description="Most requests merged into one call.")
    max_latency_ms: float = Field(
        0.0, ge=0.0, alias="max_latency_ms", description="Longest a request waits for others."
    )


class DetectorKind(enum.Enum):
    OUTLIER = "outlier"
    DRIFT = "drift"


class DetectorMode(enum.Enum):
    SYNC = "sync"
    ASYNC = "async"


class DetectorAction(enum.Enum):
    TAG = "tag"
    REJECT = "reject"


class Detector(Schema):
    """An outlier or drift detector watching the input of a predictor or node (docs/detectors.md)."""

    name: str = Field(description="Unique among the predictor's detectors; labels the detector's metrics.")
    kind: DetectorKind = Field(description="outlier (one request unlike the training data) or drift (the stream).")
    implementation: str | None = Field(
        None, description="Your own detector class, pkg.module:Class; without it modelUri holds a fitted detector."
    )
    model_uri: str | None = Field(None, description="The folder `daneel detector fit` wrote, or your class's files.")
    mode: DetectorMode | None = Field(
        None, description="sync: scored on the request path (outliers' default); async: off it (drift's default)."
    )
    action: DetectorAction = Field(
        DetectorAction.TAG, description="tag: the answer says which rows are outliers; reject: answer 422 instead."
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Overrides: threshold or percentile, p_value, window, correction, ..."
    )

    @property
    def synchronous(self) -> bool:
        """Whether the detector runs on the request path: outliers do unless told otherwise; drift never does."""
        if self.mode is not None:
            return self.mode is DetectorMode.SYNC
        return self.kind is DetectorKind.OUTLIER


class Node(Schema):
    """One node of an inference graph (Seldon's PredictiveUnit)."""

    name: str = Field(description="Unique in its predictor; the node's model name on the V2 paths.")
    type: NodeType | None = Field(None, description="MODEL, TRANSFORMER, OUTPUT_TRANSFORMER, ROUTER or COMBINER.")
    implementation: str | None = Field(
        None,
        description="A prepackaged server (SKLEARN_SERVER), a built-in (RANDOM_ABTEST), pkg.module:Class, or"
        " NODEJS_SERVER or JAVA_SERVER: modelUri holds a Node.js or Java component.",
    )
    model_uri: str | None = Field(None, description="Where the model files are: a folder, file://, http(s)://, s3://.")
    parameters: list[Parameter] = Field(default_factory=list, description="Typed parameters for the component.")
    children: list[Node] = Field(default_factory=list, description="Nodes this one sends its output to.")
    endpoint: Endpoint | None = Field(None, description="Set service_host and service_port for a remote node.")
    methods: list[Method] | None = Field(None, description="The methods the node implements, when not its type's.")
    logger: Logger | None = Field(None, description="Request logging for this node.")
    env_secret_ref_name: str | None = Field(None, description="Seldon: secret holding model storage credentials.")
    service_account_name: str | None = Field(None, description="Seldon: service account of the model's pod.")
    storage_initializer_image: str | None = Field(None, description="Seldon: image that downloads the model.")
    timeout_seconds: float | None = Field(None, gt=0, description="The node fails with 504 when a call takes longer.")
    batching: Batching | None = Field(None, description="Dynamic batching for this node.")
    detectors: list[Detector] = Field(default_factory=list, description="Outlier and drift detectors on its input.")

    @field_validator("implementation", mode="before")
    @classmethod
    def _seldon_default(cls, value: object) -> object:
        # Seldon's operator writes UNKNOWN_IMPLEMENTATION into the manifests it stores, meaning none
        return None if value == UNKNOWN_IMPLEMENTATION else value

    def walk(self) -> list[Node]:
        """This node and all below it, depth first."""
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes

    def typed_parameters(self) -> dict[str, Any]:
        """The parameters as keyword arguments, each converted to its type (valid once loaded)."""
        return {parameter.name: parameter.typed() for parameter in self.parameters}

    @property
    def remote(self) -> bool:
        return self.endpoint is not None and bool(self.endpoint.service_host)

    @property
    def image_only(self) -> bool:
        """Names neither code nor model nor endpoint: Seldon runs the container of its name instead.

        Locally such a node is served from a folder of its name (`--components DIR`).
        """
        return not (self.implementation or self.model_uri or self.remote)


# The type a node without one plays, from the methods it lists; the first match wins.
_TYPE_OF_METHOD = (
    (Method.ROUTE, NodeType.ROUTER),
    (Method.AGGREGATE, NodeType.COMBINER),
    (Method.TRANSFORM_INPUT, NodeType.TRANSFORMER),
    (Method.TRANSFORM_OUTPUT, NodeType.OUTPUT_TRANSFORMER),
)


def node_type(node: Node) -> NodeType:
    """The type a node plays: its built-in implementation's, else its own, else its methods', else MODEL."""
    if node.implementation in BUILTIN_TYPES:
        return BUILTIN_TYPES[node.implementation]
    if node.type not in (None, NodeType.UNKNOWN_TYPE):
        return node.type
    methods = node.methods or []
    return next((kind for method, kind in _TYPE_OF_METHOD if method in methods), NodeType.MODEL)


class ComponentSpec(Schema):
    """One pod of a predictor on Kubernetes (Seldon's SeldonPodSpec); locally only container names are read."""

    metadata: dict[str, Any] = Field(default_factory=dict, description="Kubernetes ObjectMeta of the pods.")
    spec: dict[str, Any] = Field(default_factory=dict, description="A Kubernetes PodSpec, kept as it is.")
    hpa_spec: dict[str, Any] | None = Field(None, description="Seldon: HorizontalPodAutoscaler settings.")
    keda_spec: dict[str, Any] | None = Field(None, description="Seldon: KEDA ScaledObject settings.")
    pdb_spec: dict[str, Any] | None = Field(None, description="Seldon: PodDisruptionBudget settings.")
    replicas: int | None = Field(None, ge=0, description="Pods of this spec; wins over the predictor's replicas.")

    def containers(self) -> list[dict[str, Any]]:
        containers = self.spec.get("containers")
        return [c for c in containers if isinstance(c, dict)] if isinstance(containers, list) else []


class Predictor(Schema):
    """One version of the model: a graph and its share of the traffic."""

    name: str = Field(description="Unique in the deployment; reported with every response.")
    graph: Node = Field(description="The predictor's inference graph.")
    traffic: int = Field(0, ge=0, le=100, description="Percent of requests; sums to 100 over non-shadow predictors.")
    shadow: bool = Field(False, description="Receives a copy of every request; its answers are never returned.")
    replicas: int | None = Field(None, ge=0, description="Pods on Kubernetes; locally one process serves all.")
    component_specs: list[ComponentSpec] = Field(
        default_factory=list, description="Pods on Kubernetes; a container named as a node supplies its image."
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Labels reported in metrics and on pods.")
    detectors: list[Detector] = Field(
        default_factory=list, description="Outlier and drift detectors on the predictor's input."
    )
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations (Seldon's `seldon.io/...`).")
    engine_resources: dict[str, Any] | None = Field(None, description="Seldon: resources of the orchestrator.")
    svc_orch_spec: dict[str, Any] | None = Field(None, description="Seldon: orchestrator settings.")
    explainer: dict[str, Any] | None = Field(None, description="Seldon: explainer (not served locally).")
    ssl: dict[str, Any] | None = Field(None, description="Seldon: TLS settings.")
    progress_deadline_seconds: int | None = Field(None, description="Seldon: rollout deadline.")

    def container(self, name: str) -> dict[str, Any] | None:
        """The container of `componentSpecs` named `name` (Seldon matches graph nodes to containers by name)."""
        for component in self.component_specs:
            for container in component.containers():
                if container.get("name") == name:
                    return container
        return None


class Sticky(Schema):
    """Keep one user on one predictor: hash a header, or a field of the request body."""

    header: str | None = Field(None, description="Request header whose value is hashed, e.g. X-User-Id.")
    field: str | None = Field(None, description="Dotted path in the JSON body, e.g. meta.tags.user.")


class AuthGroup(enum.Enum):
    """Groups of endpoints a token can guard (`daneel serve --auth-protect`)."""

    REPOSITORY = "repository"
    METRICS = "metrics"
    FEEDBACK = "feedback"
    INFERENCE = "inference"


class Auth(Schema):
    """Bearer-token authentication of the deployment's daneel servers, on Kubernetes."""

    token_secret: str = Field(description="Secret whose key `token` clients send as `Authorization: Bearer`.")
    protect: list[AuthGroup] = Field(
        default_factory=lambda: [AuthGroup.REPOSITORY], description="Groups of endpoints the token guards."
    )


class Tls(Schema):
    """TLS on the router's ports, on Kubernetes."""

    secret: str = Field(description="A kubernetes.io/tls Secret (tls.crt, tls.key) the router serves TLS with.")


class DeploymentSpec(Schema):
    """What to serve: the predictors, how traffic splits between them, and shared settings."""

    name: str | None = Field(None, description="Seldon's spec name (kept; metadata.name names the deployment).")
    predictors: list[Predictor] = Field(description="One or more predictors; traffic splits between them.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Deployment annotations.")
    protocol: str | None = Field(None, description="seldon or v2: the protocol remote REST nodes speak.")
    transport: str | None = Field(None, description="Seldon: rest or grpc.")
    replicas: int | None = Field(None, ge=0, description="Default replicas of each predictor.")
    server_type: str | None = Field(None, description="Seldon: rpc or kafka.")
    oauth_key: str | None = Field(None, alias="oauth_key", description="Seldon: unused.")
    oauth_secret: str | None = Field(None, alias="oauth_secret", description="Seldon: unused.")
    sticky: Sticky | None = Field(None, description="Sticky routing between predictors.")
    state_store: str | None = Field(
        None, description="Where routers keep their state: a file path, or a redis:// URL shared by replicas."
    )
    logger: Logger | None = Field(None, description="Request logging for every request to the deployment.")
    auth: Auth | None = Field(None, description="Kubernetes: a token Secret guarding the daneel servers' endpoints.")
    tls: Tls | None = Field(None, description="Kubernetes: a TLS Secret the router serves with (not with Istio).")


class ObjectMeta(BaseModel):
    """Kubernetes metadata; fields other than these are kept as they are."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="The deployment's name.")
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Deployment(Schema):
    """A whole deployment file."""

    _base_dir: Path | None = PrivateAttr(None)
    _components_dir: Path | None = PrivateAttr(None)

    api_version: str = Field(description=f"{API_VERSION}, or Seldon's machinelearning.seldon.io/v1.")
    kind: str = Field(description=f"{KIND} (or {SELDON_KIND}).")
    metadata: ObjectMeta
    spec: DeploymentSpec
    status: dict[str, Any] | None = Field(None, description="Written by Kubernetes; ignored.")

    @property
    def name(self) -> str:
        return self.metadata.name

    def nodes(self) -> list[Node]:
        return [node for predictor in self.spec.predictors for node in predictor.graph.walk()]

    @property
    def base_dir(self) -> Path | None:
        """The folder of the file this deployment was loaded from."""
        return self._base_dir

    @base_dir.setter
    def base_dir(self, folder: Path | None) -> None:
        self._base_dir = folder

    @property
    def components_dir(self) -> Path | None:
        """Where nodes that only name an image have their code: `--components DIR`, or the annotation."""
        return self._components_dir

    @components_dir.setter
    def components_dir(self, folder: Path | None) -> None:
        self._components_dir = folder

    def traffic(self) -> dict[str, int]:
        """Percent of requests per non-shadow predictor; a lone predictor without traffic takes 100."""
        served = [p for p in self.spec.predictors if not p.shadow]
        if len(served) == 1 and served[0].traffic == 0:
            return {served[0].name: 100}
        return {p.name: p.traffic for p in served}

    def shadow(self) -> Predictor | None:
        return next((p for p in self.spec.predictors if p.shadow), None)
