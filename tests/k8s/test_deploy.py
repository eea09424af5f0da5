"""deploy/: the Kustomize base renders, its objects are valid, the Helm chart holds the same, the Dockerfile keeps
its conventions.

`kubectl kustomize` needs no cluster. No `helm` binary is installed here, so unless one is, the
chart's templates are rendered by substituting the few values they use, and compared with the
Kustomize base object by object. No container engine runs here, so the Dockerfile is read, not built.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from daneel.k8s.manifests import KINDS
from daneel.k8s.names import APP
from daneel.version import RUNTIME_IMAGE

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "daneel-operator"
NAMESPACE = "daneel-system"
_EXPRESSION = re.compile(r"\{\{\s*(\.[\w.]+)\s*(\|\s*toJson\s*)?\}\}")


def kustomized() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run([kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def helm_substituted() -> list[dict[str, Any]]:
    """The chart's templates and CRDs with its default values put in, as `helm template` would."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    context = {"Values": values, "Release": {"Namespace": NAMESPACE, "Name": "daneel-operator"}}

    def value(match: re.Match[str]) -> str:
        found: Any = context
        for part in match.group(1).strip(".").split("."):
            found = found[part]
        return json.dumps(found) if match.group(2) else str(found)

    documents = []
    for path in sorted((CHART / "crds").glob("*.yaml")) + sorted((CHART / "templates").glob("*.yaml")):
        text = _EXPRESSION.sub(value, path.read_text())
        assert "{{" not in text, f"{path} uses template syntax this test cannot substitute"
        documents += [doc for doc in yaml.safe_load_all(text) if doc]
    return documents


def key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def test_the_kustomize_base_installs_crds_rbac_and_the_operator() -> None:
    kinds = sorted(key(obj) for obj in kustomized())
    assert kinds == [
        ("ClusterKopfPeering", "daneel"),
        ("ClusterRole", "daneel-operator"),
        ("ClusterRoleBinding", "daneel-operator"),
        ("CustomResourceDefinition", "clusterkopfpeerings.kopf.dev"),
        ("CustomResourceDefinition", "kopfpeerings.kopf.dev"),
        ("CustomResourceDefinition", "modeldeployments.daneel.dev"),
        ("Deployment", "daneel-operator"),
        ("Namespace", NAMESPACE),
        ("ServiceAccount", "daneel-operator"),
    ]


def test_the_kustomize_objects_are_valid_for_kubernetes() -> None:
    for obj in kustomized():
        if obj["kind"] == "ClusterKopfPeering":
            continue  # kopf's own kind: its CRD is in the same base
        try:
            kubernetes_validate.validate(obj, "1.32", strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{key(obj)}: {exc.path}: {exc.message}")


def test_the_operator_runs_the_runtime_image_as_daneel_operator() -> None:
    [deployment] = [obj for obj in kustomized() if obj["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == RUNTIME_IMAGE
    assert container["args"][0] == "operator"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert deployment["spec"]["replicas"] == 2  # kopf's peering keeps one active


def test_the_operator_may_do_what_it_does_and_nothing_else() -> None:
    [role] = [obj for obj in kustomized() if obj["kind"] == "ClusterRole"]
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }

    for api_version, kind in KINDS:
        group = api_version.rpartition("/")[0]
        resource = kind.lower() + ("es" if kind.endswith("s") else "s")
        assert granted[(group, resource)] >= {"list", "create", "patch", "delete"}, kind
    assert all("*" not in verbs for verbs in granted.values())
    assert not any(verbs & {"update", "deletecollection", "escalate", "bind"} for verbs in granted.values())
    assert granted[("", "pods")] == {"list"}
    assert granted[("daneel.dev", "modeldeployments/status")] == {"get", "patch"}


def test_the_helm_chart_holds_the_same_objects_as_the_kustomize_base() -> None:
    base = {key(obj): obj for obj in kustomized() if obj["kind"] != "Namespace"}  # helm --create-namespace
    chart = {key(obj): obj for obj in helm_substituted()}
    assert sorted(chart) == sorted(base)
    for name, obj in chart.items():
        assert obj == base[name], name


def test_helm_renders_the_chart_where_helm_is_installed() -> None:
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip("helm is not installed; the chart is checked against the Kustomize base instead")
    command = [helm, "template", "daneel-operator", str(CHART), "--namespace", NAMESPACE, "--include-crds"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    rendered = {key(doc) for doc in yaml.safe_load_all(result.stdout) if doc}
    assert rendered == {key(obj) for obj in helm_substituted()}


def test_the_chart_version_follows_daneels() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert f"{values['image']['repository']}:{values['image']['tag']}" == RUNTIME_IMAGE
    assert chart["appVersion"] == RUNTIME_IMAGE.rpartition(":")[2]


def test_the_dockerfile_keeps_the_conventions_daneel_build_relies_on() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line.split(None, 1) for line in text.splitlines() if line[:1].isupper()]
    first = {parts[0]: parts[1] if len(parts) > 1 else "" for parts in reversed(lines)}
    assert first["FROM"].startswith("python:3.11-slim")
    assert first["WORKDIR"] == "/app"
    assert first["USER"] == "1000:1000"
    assert first["ENTRYPOINT"] == '["daneel"]'
    assert "useradd --uid 1000" in text and f" {APP}" in text
    assert RUNTIME_IMAGE in text
