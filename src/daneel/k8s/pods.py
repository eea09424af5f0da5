"""Pod templates: daneel's server container, the model-fetching init containers, and Seldon image containers.

Every pod runs as a non-root user on a read-only root filesystem with all
capabilities dropped; what it writes goes to emptyDir volumes: /tmp, the models
folder the init containers fill, and the state folder where routers that learn
keep their state. A startup probe gives slow model loads time before the
liveness probe may restart the container, and a preStop pause lets endpoints
drop the pod before it stops taking requests.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from daneel.k8s.names import object_name
from daneel.k8s.served import COMPONENT_PORT, GRPC_PORT, HTTP_PORT, MODELS_DIR, Fetch, OwnPod
from daneel.spec.model import ComponentSpec

CONFIG_DIR = "/etc/daneel"
#: Where a server container mounts its token Secret and its TLS Secret (outside the read-only config volume).
AUTH_DIR = "/var/run/daneel/auth"
TLS_DIR = "/var/run/daneel/tls"
CONFIG_FILE = "deployment.yaml"
STATE_DIR = "/var/lib/daneel"
DRAIN_SECONDS = 10
USER_ID = 1000
DEFAULT_RESOURCES: dict[str, Any] = {"requests": {"cpu": "100m", "memory": "256Mi"}}
FETCH_RESOURCES: dict[str, Any] = {"requests": {"cpu": "100m", "memory": "128Mi"}}
#: Pod fields the renderer writes itself; the rest of a componentSpec's pod spec is kept as it is.
_MERGED = ("containers", "initContainers", "volumes")

Container = dict[str, Any]


def container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security(user: int | None = USER_ID) -> dict[str, Any]:
    ids = {"runAsUser": user, "runAsGroup": user, "fsGroup": user} if user is not None else {}
    return {"runAsNonRoot": True, **ids, "seccompProfile": {"type": "RuntimeDefault"}}


@dataclass(frozen=True)
class Security:
    """What a server container mounts from Secrets: a token and the groups it guards, a TLS certificate."""

    token_secret: str | None = None
    protect: tuple[str, ...] = ()
    tls_secret: str | None = None

    def args(self) -> list[str]:
        args = []
        if self.token_secret:
            args += ["--auth-token-file", f"{AUTH_DIR}/token", "--auth-protect", ",".join(self.protect)]
        if self.tls_secret:
            args += ["--tls-cert", f"{TLS_DIR}/tls.crt", "--tls-key", f"{TLS_DIR}/tls.key"]
        return args

    def mounts(self) -> list[dict[str, Any]]:
        found = [("auth-token", AUTH_DIR, self.token_secret), ("tls", TLS_DIR, self.tls_secret)]
        return [_mount(name, path, read_only=True) for name, path, secret in found if secret]

    def volumes(self) -> list[dict[str, Any]]:
        found = [("auth-token", self.token_secret), ("tls", self.tls_secret)]
        return [{"name": name, "secret": {"secretName": secret}} for name, secret in found if secret]


def _http_probe(path: str, period: int, failures: int, https: bool) -> dict[str, Any]:
    get = {"path": path, "port": "http", **({"scheme": "HTTPS"} if https else {})}
    return {"httpGet": get, "periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": failures}


def server_probes(https: bool = False) -> dict[str, Any]:
    """Probes on the health paths, which no token guards; over HTTPS (its certificate unchecked) with TLS."""
    return {
        # ten minutes for the model to load before the liveness probe may restart the container
        "startupProbe": _http_probe("/v2/health/ready", 5, 120, https),
        "readinessProbe": _http_probe("/v2/health/ready", 5, 3, https),
        "livenessProbe": _http_probe("/v2/health/live", 10, 3, https),
    }


def _drain() -> dict[str, Any]:
    return {"preStop": {"exec": {"command": ["sleep", str(DRAIN_SECONDS)]}}}


def _mount(name: str, path: str, read_only: bool = False) -> dict[str, Any]:
    return {"name": name, "mountPath": path, **({"readOnly": True} if read_only else {})}


def server_container(
    image: str, resources: dict[str, Any], extra: list[Container], security: Security | None = None
) -> Container:
    """daneel's container: `daneel serve` on the mounted deployment file; `extra` adds their env and mounts,
    `security` its Secrets."""
    security = security or Security()
    env = [
        {"name": "HOME", "value": "/tmp"},
        {"name": "DANEEL_STATE_DIR", "value": STATE_DIR},
        {"name": "DANEEL_CACHE_DIR", "value": "/tmp/daneel-cache"},
    ]
    ports = [
        {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
        {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
    ]
    args = ["serve", f"{CONFIG_DIR}/{CONFIG_FILE}", "--http-port", str(HTTP_PORT), "--grpc-port", str(GRPC_PORT)]
    args += security.args()
    container: Container = {"name": "daneel", "image": image, "imagePullPolicy": "IfNotPresent", "args": args}
    container["ports"] = ports
    container["env"] = env + [item for user in extra for item in user.get("env", [])]
    env_from = [item for user in extra for item in user.get("envFrom", [])]
    if env_from:
        container["envFrom"] = env_from
    mounts = [
        _mount("config", CONFIG_DIR, read_only=True),
        _mount("models", MODELS_DIR),
        _mount("state", STATE_DIR),
        _mount("tmp", "/tmp"),
        *security.mounts(),
    ]
    container["volumeMounts"] = mounts + [item for user in extra for item in user.get("volumeMounts", [])]
    return container | _hardened(resources, server_probes(https=security.tls_secret is not None))


def _hardened(resources: dict[str, Any], probes: dict[str, Any]) -> Container:
    return {
        "resources": resources,
        **probes,
        "lifecycle": _drain(),
        "securityContext": container_security(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def fetch_container(image: str, fetch: Fetch) -> Container:
    """An init container downloading one node's model into the shared models volume."""
    container: Container = {
        "name": object_name("fetch", fetch.node),
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["fetch", fetch.uri, fetch.path],
        "env": [{"name": "HOME", "value": "/tmp"}],
    }
    if fetch.secret:
        container["envFrom"] = [{"secretRef": {"name": fetch.secret}}]
    container["resources"] = copy.deepcopy(FETCH_RESOURCES)
    container["securityContext"] = container_security()
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    container["volumeMounts"] = [_mount("models", MODELS_DIR), _mount("tmp", "/tmp")]
    return container


def component_container(pod: OwnPod, deployment: str, predictor: str) -> Container:
    """A node's own container from its `componentSpecs` entry, given Seldon's microservice settings.

    What the user's container sets (ports, probes, resources, securityContext) wins over the defaults.
    """
    user = copy.deepcopy(pod.container)
    user["name"] = object_name(pod.node.name)
    parameters = [p.model_dump(by_alias=True, mode="json") for p in pod.node.parameters]
    if pod.model_uri:
        parameters.append({"name": "model_uri", "value": pod.model_uri, "type": "STRING"})
    seldon = {
        "PREDICTIVE_UNIT_SERVICE_PORT": str(COMPONENT_PORT),
        "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": str(COMPONENT_PORT),
        "PREDICTIVE_UNIT_ID": pod.node.name,
        "PREDICTIVE_UNIT_IMAGE": str(user.get("image", "")),
        "PREDICTOR_ID": predictor,
        "SELDON_DEPLOYMENT_ID": deployment,
        "PREDICTIVE_UNIT_PARAMETERS": json.dumps(parameters, separators=(",", ":")),
    }
    given = {item.get("name") for item in user.get("env", [])}
    user["env"] = [{"name": k, "value": v} for k, v in seldon.items() if k not in given] + user.get("env", [])
    user.setdefault("ports", [{"name": "http", "containerPort": COMPONENT_PORT, "protocol": "TCP"}])
    mounts = [_mount("tmp", "/tmp")] + ([_mount("models", MODELS_DIR)] if pod.fetch else [])
    user["volumeMounts"] = mounts + user.get("volumeMounts", [])
    tcp = {"tcpSocket": {"port": COMPONENT_PORT}}
    probes = {
        "startupProbe": {**tcp, "periodSeconds": 5, "failureThreshold": 120},
        "readinessProbe": {**tcp, "periodSeconds": 5},
        "livenessProbe": {**tcp, "periodSeconds": 10},
    }
    defaults = _hardened(copy.deepcopy(DEFAULT_RESOURCES), probes)
    return user | {key: value for key, value in defaults.items() if key not in user}


def pod_template(
    metadata: dict[str, Any],
    containers: list[Container],
    init_containers: list[Container],
    volumes: list[dict[str, Any]],
    component: ComponentSpec | None,
    service_account: str | None,
    user: int | None = USER_ID,
) -> dict[str, Any]:
    """A pod template; `component` (a `componentSpecs` entry) adds its pod settings and volumes."""
    extras = {k: copy.deepcopy(v) for k, v in (component.spec if component else {}).items() if k not in _MERGED}
    spec: dict[str, Any] = {}
    if service_account:
        spec["serviceAccountName"] = service_account
    elif "serviceAccountName" not in extras:
        spec["automountServiceAccountToken"] = False  # a model server has no business with the API server
    spec["securityContext"] = pod_security(user)
    spec["terminationGracePeriodSeconds"] = DRAIN_SECONDS + 30
    inits = init_containers + _user_list(component, "initContainers")
    if inits:
        spec["initContainers"] = inits
    spec["containers"] = containers
    spec["volumes"] = volumes + _user_list(component, "volumes")
    return {"metadata": metadata, "spec": spec | extras}


def _user_list(component: ComponentSpec | None, key: str) -> list[Any]:
    value = component.spec.get(key) if component else None
    return copy.deepcopy(value) if isinstance(value, list) else []


def volumes(config_map: str | None, models: bool, state: bool) -> list[dict[str, Any]]:
    """The pod's volumes: its deployment file, and empty folders for what it writes."""
    out: list[dict[str, Any]] = []
    if config_map:
        out.append({"name": "config", "configMap": {"name": config_map}})
    if models:
        out.append({"name": "models", "emptyDir": {}})
    if state:
        out.append({"name": "state", "emptyDir": {}})
    out.append({"name": "tmp", "emptyDir": {}})
    return out
