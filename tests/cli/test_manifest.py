"""`daneel manifest` and `daneel operator`, run as a user runs them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_manifest_prints_the_golden_file_from_the_project_folder(daneel_cli: Cli) -> None:
    result = daneel_cli("manifest", "examples/deployments/canary.yaml", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "examples" / "manifests" / "canary.yaml").read_text()


def test_manifest_options_and_output_file(daneel_cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "objects.yaml"
    args = ["--namespace", "ml", "--image", "registry.example/iris:1", "--istio", "--pod-monitor", "-o", str(out)]
    result = daneel_cli("manifest", "examples/deployments/seldon-iris.yaml", *args, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    objects = [doc for doc in yaml.safe_load_all(out.read_text()) if doc]
    assert {obj["metadata"]["namespace"] for obj in objects} == {"ml"}
    kinds = {obj["kind"] for obj in objects}
    assert {"VirtualService", "DestinationRule", "PodMonitor", "HorizontalPodAutoscaler"} <= kinds
    images = {
        c["image"]
        for obj in objects
        if obj["kind"] == "Deployment"
        for c in obj["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.example/iris:1", "example/iris-scaler:0.1"}


def test_manifest_fails_with_the_reason_on_one_line(daneel_cli: Cli, tmp_path: Path) -> None:
    result = daneel_cli("manifest", "abtest.yaml", cwd=ROOT / "examples" / "deployments")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: spec.predictors[0].graph.modelUri: expected a path inside ")
    assert len(result.stderr.strip().splitlines()) == 1
    missing = daneel_cli("manifest", str(tmp_path / "missing.yaml"))
    assert missing.returncode == 1 and "cannot read it" in missing.stderr


def test_operator_describes_its_options(daneel_cli: Cli) -> None:
    result = daneel_cli("operator", "--help")
    assert result.returncode == 0
    for option in ("--namespace", "--peering", "--priority", "--standalone", "--istio"):
        assert option in result.stdout
