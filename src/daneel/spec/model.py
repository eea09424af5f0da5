"""The deployment schema: daneel's ModelDeployment and Seldon's SeldonDeployment.

Field names on the wire are Seldon's (`modelUri`, `componentSpecs`, the
endpoint's `service_host`); Python attributes are snake_case. Unknown fields
are errors. daneel's own additions (`timeoutSeconds`, `sticky`, `stateStore`,
`batching`) are optional, so Seldon files load unchanged.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

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
    name: str = Field(description="Keyword argument of the component's constructor.")
    value: Any = Field(description="The value, as text in Seldon files; converted by `type`.")
    type: ParameterType = Field(ParameterType.STRING, description="INT, FLOAT, DOUBLE, STRING, BOOL or JSON.")


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
    url: str | None = Field(None, description="Where request and response events are sent.")
    file: str | None = Field(None, description="A JSON-lines file events are appended to.")
    mode: LoggerMode = Field(LoggerMode.ALL, description="all, request or response.")
    sample: float = Field(1.0, ge=0.0, le=1.0, description="Fraction of requests logged.")


class Batching(Schema):
    max_batch_size: int = Field(32, ge=1, alias="max_batch_size", description="Most requests merged into one call.")
    max_latency_ms: float = Field(
        0.0, ge=0.0, alias="max_latency_ms", description="Longest a request waits for others."
    )


class Node(Schema):
    """One node of an inference graph (Seldon's PredictiveUnit)."""

    name: str = Field(description="Unique in the deployment; also the node's own model name on the V2 paths.")
    type: NodeType | None = Field(None, description="MODEL, TRANSFORMER, OUTPUT_TRANSFORMER, ROUTER or COMBINER.")
    implementation: str | None = Field(
        None, description="A prepackaged server (SKLEARN_SERVER), a built-in (RANDOM_ABTEST) or pkg.module:Class."
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

    def walk(self) -> list[Node]:
        """This node and all below it, depth first."""
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes


class Predictor(Schema):
    name: str = Field(description="Unique in the deployment; reported with every response.")
    graph: Node = Field(description="The predictor's inference graph.")
    traffic: int = Field(0, ge=0, le=100, description="Percent of requests; sums to 100 over non-shadow predictors.")
    shadow: bool = Field(False, description="Receives a copy of every request; its answers are never returned.")
    replicas: int | None = Field(None, ge=0, description="Pods on Kubernetes; locally one process serves all.")
    component_specs: list[dict[str, Any]] = Field(default_factory=list, description="Kubernetes pod specs (Seldon).")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels reported in metrics and on pods.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations (Seldon's `seldon.io/...`).")
    engine_resources: dict[str, Any] | None = Field(None, description="Seldon: resources of the orchestrator.")
    svc_orch_spec: dict[str, Any] | None = Field(None, description="Seldon: orchestrator settings.")
    explainer: dict[str, Any] | None = Field(None, description="Seldon: explainer (not served locally).")
    ssl: dict[str, Any] | None = Field(None, description="Seldon: TLS settings.")
    progress_deadline_seconds: int | None = Field(None, description="Seldon: rollout deadline.")


class Sticky(Schema):
    """Keep one user on one predictor: hash a header, or a field of the request body."""

    header: str | None = Field(None, description="Request header whose value is hashed, e.g. X-User-Id.")
    field: str | None = Field(None, description="Dotted path in the JSON body, e.g. meta.tags.user.")


class DeploymentSpec(Schema):
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


class ObjectMeta(BaseModel):
    """Kubernetes metadata; fields other than these are kept as they are."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="The deployment's name.")
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Deployment(Schema):
    """A whole deployment file."""

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
