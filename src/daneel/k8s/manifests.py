"""A deployment file as Kubernetes objects: what `daneel manifest` prints and the operator applies.

Per predictor: a ConfigMap holding the file its pods serve, a Deployment whose
pod runs the predictor's whole graph in one `daneel serve`, a Service, a
PodDisruptionBudget, and an HPA or KEDA ScaledObject when a `componentSpecs`
entry asks for one. A node whose container names an image gets a Deployment,
Service and budget of its own. Then the traffic: with Istio a Service over all
predictors, a DestinationRule and a VirtualService; without it a router
(`daneel serve` on a file of remote predictors) named as the deployment, behind
the deployment's Service. The same deployment always renders to the same objects
in the same order, so GitOps diffs stay quiet.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daneel.errors import InvalidInput
from daneel.k8s import istio, pods, quantities, scaling, served, yamltext
from daneel.k8s.names import COMPONENT_LABEL, DEPLOYMENT_LABEL, label_value, labels, object_name, selector
from daneel.spec.model import ComponentSpec, Deployment
from daneel.version import RUNTIME_IMAGE, runtime_image

Object = dict[str, Any]

PREDICTOR, NODE, ROUTER = "predictor", "node", "router"
CONFIG_HASH = "daneel.dev/config-hash"
ROUTER_RESOURCES: dict[str, Any] = {"requests": {"cpu": "100m", "memory": "128Mi"}}
PROGRESS_DEADLINE_S = 600
#: What a predictor's pods behind the router may guard with the deployment's token (`spec.auth.protect`).
_BEHIND_THE_ROUTER = ("repository", "metrics")

#: (apiVersion, kind) of every object the renderer may write, in the order it writes them.
KINDS = (
    ("v1", "ConfigMap"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    (istio.API_VERSION, "DestinationRule"),
    (istio.API_VERSION, "VirtualService"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
)


@dataclass(frozen=True)
class Options:
    """How to render: `workdir` is the folder `daneel build` copies into the image (local modelUris).

    `image` is what every daneel pod runs; without it, daneel's runtime image, with Node.js or a JDK where a
    predictor's graph holds a node in that language.
    """

    namespace: str | None = None
    image: str | None = None
    istio: bool = False
    pod_monitor: bool = False
    router_replicas: int = 1
    workdir: Path | None = None


def render(deployment: Deployment, options: Options | None = None) -> list[Object]:
    """Every object of `deployment`, in a fixed order."""
    options = options or Options()
    render = _Renderer(deployment, options)
    objects: list[Object] = []
    for index in range(len(deployment.spec.predictors)):
        objects += render.predictor(served.predictor_file(deployment, index, options.workdir))
    objects += render.istio() if options.istio else render.router()
    if options.pod_monitor:
        objects.append(render.pod_monitor())
    _unique(objects)
    return objects


def _unique(objects: list[Object]) -> None:
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        key = (obj["kind"], obj["metadata"]["name"])
        if key in seen:
            expected = "predictor and node names whose objects' names differ (names join with '-')"
            raise InvalidInput("spec.predictors", f"{expected}; two objects would be the {key[0]} {key[1]}")
        seen.add(key)


def manifest(deployment: Deployment, options: Options | None = None) -> str:
    """The objects as multi-document YAML."""
    return yamltext.dump_all(render(deployment, options))


def service_name(deployment: Deployment) -> str:
    """The Service that takes the deployment's requests."""
    return object_name(deployment.name)


class _Renderer:
    def __init__(self, deployment: Deployment, options: Options) -> None:
        self.deployment = deployment
        self.options = options
        self.name = deployment.name
        self.namespace = options.namespace or deployment.metadata.namespace

    def metadata(self, name: str, object_labels: dict[str, str]) -> Object:
        namespace = {"namespace": self.namespace} if self.namespace else {}
        return {"name": name, **namespace, "labels": object_labels}

    def predictor(self, file: served.PredictorFile) -> list[Object]:
        predictor = file.predictor
        own = {pod.node.name for pod in file.own_pods}
        nodes = {node.name for node in predictor.graph.walk()}
        containers = [c for comp in predictor.component_specs for c in comp.containers()]
        in_process = [c for c in containers if c.get("name") in nodes - own]
        sidecars = [copy.deepcopy(c) for c in containers if c.get("name") not in nodes]
        field = f"predictor {predictor.name}: componentSpecs containers' resources"
        given = [c["resources"] for c in in_process if isinstance(c.get("resources"), dict)]
        resources = quantities.summed(given, field) if given else copy.deepcopy(pods.DEFAULT_RESOURCES)
        security = self._security(ROUTER if self.options.istio else PREDICTOR)
        image = self._image(file)
        server = pods.server_container(image, resources, in_process, security)
        component = predictor.component_specs[0] if predictor.component_specs else None
        account = next((n.service_account_name for n in predictor.graph.walk() if n.service_account_name), None)
        inits = [pods.fetch_container(image, fetch) for fetch in file.fetches]
        config = yamltext.dump(file.file)
        template = pods.pod_template(
            self._pod_metadata(PREDICTOR, predictor.name, None, component, config),
            [server, *sidecars],
            inits,
            pods.volumes(file.name, models=True, state=True) + security.volumes(),
            component,
            account,
        )
        objects = [self._config_map(file.name, labels(self.name, PREDICTOR, predictor.name), config)]
        objects += self._workload(file.name, (PREDICTOR, predictor.name, None), template, component, predictor.replicas)
        for pod in file.own_pods:
            objects += self._own_pod(file, pod)
        return objects

    def _security(self, role: str) -> pods.Security:
        """The Secrets of a daneel pod that takes the deployment's requests (ROUTER) or the router's (PREDICTOR).

        A predictor behind the router guards its repository and metrics only: the router calls it without a
        token, and encrypts nothing to it. With Istio the predictors take the requests, and the mesh encrypts.
        """
        spec = self.deployment.spec
        if spec.tls is not None and self.options.istio:
            raise InvalidInput("spec.tls", "is for the router; with Istio, TLS is the mesh's and its gateway's")
        tls = spec.tls.secret if spec.tls is not None and role == ROUTER else None
        if spec.auth is None:
            return pods.Security(tls_secret=tls)
        protect = [group.value for group in spec.auth.protect]
        if role == PREDICTOR:
            protect = [group for group in protect if group in _BEHIND_THE_ROUTER]
        if not protect:
            return pods.Security(tls_secret=tls)
        return pods.Security(spec.auth.token_secret, tuple(protect), tls)

    def _image(self, file: served.PredictorFile) -> str:
        """The image of a predictor's pod: the one given, else daneel's runtime image for its graph's language."""
        if self.options.image is not None:
            return self.options.image
        languages = sorted(set(file.languages.values()))
        if len(languages) > 1:
            index = self.deployment.spec.predictors.index(file.predictor)
            held = ", ".join(f"{node} ({language})" for node, language in sorted(file.languages.items()))
            expected = "nodes in one language besides Python (the predictor's pod runs one image) or an --image"
            raise InvalidInput(f"spec.predictors[{index}].graph", f"expected {expected} that holds both; got {held}")
        return runtime_image(languages[0] if languages else "python")

    def _own_pod(self, file: served.PredictorFile, pod: served.OwnPod) -> list[Object]:
        predictor = file.predictor.name
        container = pods.component_container(pod, self.name, predictor)
        inits = [pods.fetch_container(self.options.image or RUNTIME_IMAGE, pod.fetch)] if pod.fetch else []
        account = pod.node.service_account_name
        template = pods.pod_template(
            self._pod_metadata(NODE, predictor, pod.node.name, pod.component, None),
            [container],
            inits,
            pods.volumes(None, models=pod.fetch is not None, state=False),
            pod.component,
            account,
            user=None,  # a Seldon image runs as the user it was built for
        )
        parts = (NODE, predictor, pod.node.name)
        return self._workload(pod.service, parts, template, pod.component, file.predictor.replicas)

    def _pod_metadata(
        self, role: str, predictor: str | None, node: str | None, component: ComponentSpec | None, config: str | None
    ) -> Object:
        meta = component.metadata if component else {}
        extra_labels = dict(self._predictor_labels(predictor)) | dict(meta.get("labels") or {})
        pod_labels = extra_labels | labels(self.name, role, predictor, node)
        annotations = dict(meta.get("annotations") or {})
        if config is not None:
            annotations |= {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(served.HTTP_PORT),
                "prometheus.io/path": "/metrics",
                CONFIG_HASH: hashlib.sha256(config.encode()).hexdigest()[:16],  # a new file rolls the pods
            }
            if role == ROUTER and self.deployment.spec.tls is not None:
                annotations["prometheus.io/scheme"] = "https"
        return {"labels": pod_labels, **({"annotations": annotations} if annotations else {})}

    def _predictor_labels(self, name: str | None) -> dict[str, str]:
        predictor = next((p for p in self.deployment.spec.predictors if p.name == name), None)
        return predictor.labels if predictor else {}

    def _config_map(self, name: str, object_labels: dict[str, str], config: str) -> Object:
        data = {pods.CONFIG_FILE: config}
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": self.metadata(name, object_labels), "data": data}

    def _workload(
        self,
        name: str,
        parts: tuple[str, str | None, str | None],
        template: Object,
        component: ComponentSpec | None,
        predictor_replicas: int | None,
    ) -> list[Object]:
        """Deployment, Service, PodDisruptionBudget and autoscaler of one kind of pod."""
        role, predictor, node = parts
        object_labels = labels(self.name, role, predictor, node)
        pods_selector = selector(self.name, role, predictor, node)
        meta = self.metadata(name, object_labels)
        field = f"predictor {predictor}: componentSpecs"
        scaler = self._autoscaler(meta, name, component, field)
        replicas = self._replicas(component, predictor_replicas)
        deployment = self._deployment(meta, pods_selector, template, None if scaler else replicas, predictor)
        port = served.COMPONENT_PORT if role == NODE else None
        objects = [deployment, self._service(name, object_labels, pods_selector, port)]
        objects.append(scaling.disruption_budget(meta, pods_selector, component.pdb_spec if component else None))
        return objects + ([scaler] if scaler else [])

    def _replicas(self, component: ComponentSpec | None, predictor_replicas: int | None) -> int:
        for value in (component.replicas if component else None, predictor_replicas, self.deployment.spec.replicas):
            if value is not None:
                return value
        return 1

    def _autoscaler(self, meta: Object, name: str, component: ComponentSpec | None, field: str) -> Object | None:
        if component is not None and component.keda_spec:
            return scaling.scaled_object(meta, name, component.keda_spec, f"{field}.kedaSpec")
        if component is not None and component.hpa_spec:
            return scaling.hpa(meta, name, component.hpa_spec, f"{field}.hpaSpec")
        return None

    def _deployment(
        self, meta: Object, pods_selector: dict[str, str], template: Object, replicas: int | None, predictor: str | None
    ) -> Object:
        spec: Object = {} if replicas is None else {"replicas": replicas}  # an autoscaler owns the count
        found = next((p for p in self.deployment.spec.predictors if p.name == predictor), None)
        deadline = found.progress_deadline_seconds if found else None
        spec["progressDeadlineSeconds"] = deadline or PROGRESS_DEADLINE_S
        spec["selector"] = {"matchLabels": pods_selector}
        # a new pod takes requests before an old one leaves
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}
        spec["template"] = template
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": copy.deepcopy(meta), "spec": spec}

    def _service(
        self, name: str, object_labels: dict[str, str], pods_selector: dict[str, str], port: int | None = None
    ) -> Object:
        if port is not None:
            # by number: a component's own container may name its ports as it likes
            ports = [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]
        else:
            ports = [
                {"name": "http", "port": served.HTTP_PORT, "targetPort": "http", "protocol": "TCP"},
                {"name": "grpc", "port": served.GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"},
            ]
        spec = {"selector": pods_selector, "ports": ports}
        return {"apiVersion": "v1", "kind": "Service", "metadata": self.metadata(name, object_labels), "spec": spec}

    def router(self) -> list[Object]:
        """The router's ConfigMap and Deployment, its budget, and the deployment's Service in front of it."""
        name = service_name(self.deployment)
        object_labels = labels(self.name, ROUTER)
        config = yamltext.dump(served.router_file(self.deployment))
        security = self._security(ROUTER)
        server = pods.server_container(
            self.options.image or RUNTIME_IMAGE, copy.deepcopy(ROUTER_RESOURCES), [], security
        )
        template = pods.pod_template(
            self._pod_metadata(ROUTER, None, None, None, config),
            [server],
            [],
            pods.volumes(name, models=True, state=True) + security.volumes(),
            None,
            None,
        )
        meta = self.metadata(name, object_labels)
        pods_selector = selector(self.name, ROUTER)
        deployment = self._deployment(meta, pods_selector, template, self.options.router_replicas, None)
        budget = scaling.disruption_budget(meta, pods_selector, None)
        service = self._service(name, object_labels, pods_selector)
        return [self._config_map(name, object_labels, config), deployment, service, budget]

    def istio(self) -> list[Object]:
        """The deployment's Service over every predictor's pods, its DestinationRule and VirtualService."""
        name = service_name(self.deployment)
        object_labels = labels(self.name, PREDICTOR)
        pods_selector = selector(self.name, PREDICTOR)
        meta = self.metadata(name, object_labels)
        return [
            self._service(name, object_labels, pods_selector),
            istio.destination_rule(self.deployment, copy.deepcopy(meta), name),
            istio.virtual_service(self.deployment, copy.deepcopy(meta), name),
        ]

    def pod_monitor(self) -> Object:
        """A Prometheus Operator PodMonitor scraping /metrics of every daneel pod of the deployment."""
        name = service_name(self.deployment)
        auth = self.deployment.spec.auth
        roles = [PREDICTOR] if self.deployment.spec.tls is not None else [PREDICTOR, ROUTER]  # the router's: https
        match = {
            "matchLabels": {DEPLOYMENT_LABEL: label_value(self.name)},
            "matchExpressions": [{"key": COMPONENT_LABEL, "operator": "In", "values": roles}],
        }
        endpoint: Object = {"port": "http", "path": "/metrics"}
        if auth is not None and any(group.value == "metrics" for group in auth.protect):
            endpoint["bearerTokenSecret"] = {"name": auth.token_secret, "key": "token"}
        spec = {"selector": match, "podMetricsEndpoints": [endpoint]}
        meta = self.metadata(name, labels(self.name, PREDICTOR))
        return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": meta, "spec": spec}
