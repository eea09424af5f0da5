"""`spec.auth` and `spec.tls` on Kubernetes: the Secrets the daneel pods mount, their arguments and their probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from daneel.errors import InvalidInput
from daneel.k8s import crd
from daneel.k8s.manifests import Options, render
from daneel.server import auth
from daneel.spec import parse
from daneel.spec.model import AuthGroup

ROOT = Path(__file__).resolve().parents[2]
CANARY = ROOT / "examples" / "deployments" / "canary.yaml"
SECURED = {"auth": {"tokenSecret": "iris-token", "protect": ["repository", "metrics", "inference"]}}
SECURED |= {"tls": {"secret": "iris-tls"}}


def resource(spec: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CANARY.read_text())
    loaded["spec"] |= spec
    return loaded


def objects(spec: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
    return render(parse(yaml.safe_dump(resource(spec)), str(CANARY)), Options(workdir=ROOT, **options))


def pods(rendered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o["spec"]["template"] for o in rendered if o["kind"] == "Deployment"}


def test_the_groups_are_the_servers() -> None:
    assert [group.value for group in AuthGroup] == list(auth.GROUPS)


def test_the_crd_accepts_auth_and_tls_and_refuses_a_stranger_group() -> None:
    validator = jsonschema.Draft4Validator(crd.schema())
    assert [error.message for error in validator.iter_errors(resource(SECURED))] == []
    wrong = resource({"auth": {"tokenSecret": "t", "protect": ["models"]}})
    assert [error.message for error in validator.iter_errors(wrong)] != []


def test_the_router_serves_tls_and_guards_what_was_asked() -> None:
    rendered = objects(SECURED)
    for obj in rendered:
        if obj["kind"] in ("Deployment", "Service", "ConfigMap", "PodDisruptionBudget"):
            kubernetes_validate.validate(obj, "1.32", strict=True)
    router = pods(rendered)["iris-canary"]
    [container] = router["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--auth-token-file") + 1] == "/var/run/daneel/auth/token"
    assert args[args.index("--auth-protect") + 1] == "repository,metrics,inference"
    assert args[args.index("--tls-cert") + 1] == "/var/run/daneel/tls/tls.crt"
    assert args[args.index("--tls-key") + 1] == "/var/run/daneel/tls/tls.key"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
        assert container[probe]["httpGet"]["path"].startswith("/v2/health/")  # no token needed there
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["auth-token"] == {"name": "auth-token", "mountPath": "/var/run/daneel/auth", "readOnly": True}
    assert mounts["tls"]["mountPath"] == "/var/run/daneel/tls"
    volumes = {v["name"]: v for v in router["spec"]["volumes"]}
    assert volumes["auth-token"]["secret"] == {"secretName": "iris-token"}
    assert volumes["tls"]["secret"] == {"secretName": "iris-tls"}
    assert router["metadata"]["annotations"]["prometheus.io/scheme"] == "https"


def test_predictors_behind_the_router_guard_only_what_the_router_never_calls() -> None:
    predictor = pods(objects(SECURED))["iris-canary-main"]
    [container] = predictor["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--auth-protect") + 1] == "repository,metrics"
    assert "--tls-cert" not in args
    assert "scheme" not in container["readinessProbe"]["httpGet"]
    assert {v["name"] for v in predictor["spec"]["volumes"]} >= {"auth-token"}
    assert "tls" not in {v["name"] for v in predictor["spec"]["volumes"]}


def test_with_istio_the_predictors_take_the_token_and_tls_is_refused() -> None:
    rendered = objects({"auth": SECURED["auth"]}, istio=True)
    [container] = pods(rendered)["iris-canary-main"]["spec"]["containers"]
    assert container["args"][container["args"].index("--auth-protect") + 1] == "repository,metrics,inference"
    with pytest.raises(InvalidInput, match=r"spec\.tls: is for the router"):
        objects(SECURED, istio=True)


def test_nothing_changes_without_them() -> None:
    for template in pods(objects({})).values():
        [container] = template["spec"]["containers"]
        assert not {"--auth-token-file", "--tls-cert"} & set(container["args"])
        assert "scheme" not in container["livenessProbe"]["httpGet"]


def test_the_pod_monitor_sends_the_token_when_metrics_are_guarded() -> None:
    [monitor] = [o for o in objects(SECURED, pod_monitor=True) if o["kind"] == "PodMonitor"]
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["bearerTokenSecret"] == {"name": "iris-token", "key": "token"}
    assert monitor["spec"]["selector"]["matchExpressions"][0]["values"] == ["predictor"]  # the router's is https
