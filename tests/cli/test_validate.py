"""`daneel validate`, `daneel convert` and `daneel schema`, run as a user runs them."""

import json
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from daneel.spec import parse

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "deployments"
Cli = Callable[..., subprocess.CompletedProcess[str]]

BROKEN = """\
apiVersion: daneel.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: broken
spec:
  predictors:
  - name: a
    traffic: 60
    graph:
      name: ab
      implementation: RANDOM_ABTEST
      children:
      - {name: x, modelUri: /x}
  - name: b
    traffic: 30
    graph:
      name: m
      modelUrl: /m
"""


def test_validate_summarises_each_predictor(daneel_cli: Cli) -> None:
    result = daneel_cli("validate", str(EXAMPLES / "abtest.yaml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "iris-abtest: a valid ModelDeployment with 2 predictors",
        "  main          75%  classifier",
        "  candidate     25%  classifier",
    ]


def test_validate_shows_graphs_and_shadows(daneel_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            apiVersion: daneel.dev/v1alpha1
            kind: ModelDeployment
            metadata: {name: d}
            spec:
              predictors:
              - name: main
                graph:
                  name: t
                  type: TRANSFORMER
                  modelUri: /t
                  children:
                  - name: bandit
                    implementation: EPSILON_GREEDY
                    children:
                    - {name: a, modelUri: /a, children: [{name: o, type: OUTPUT_TRANSFORMER, modelUri: /o}]}
                    - {name: b, modelUri: /b}
              - {name: copy, shadow: true, graph: {name: a, modelUri: /a}}
            """
        )
    )
    result = daneel_cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == ["  main    100%  t -> bandit -> (a -> o, b)", "  copy  shadow  a"]


def test_validate_lists_each_predictors_detectors(daneel_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            apiVersion: daneel.dev/v1alpha1
            kind: ModelDeployment
            metadata: {name: d}
            spec:
              predictors:
              - name: main
                detectors: [{name: shift, kind: drift, modelUri: /d}]
                graph:
                  name: m
                  modelUri: /m
                  detectors:
                  - {name: odd, kind: outlier, modelUri: /o, action: reject}
                  - {name: slow, kind: outlier, modelUri: /f, mode: async}
            """
        )
    )
    result = daneel_cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "  main    100%  m",
        "                detectors: shift (drift) on main; odd (outlier, reject) on m; slow (outlier, async) on m",
    ]


def test_validate_prints_every_problem_and_fails(daneel_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    result = daneel_cli("validate", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}:6: spec.predictors: traffic of the predictors that are not shadows sums to 90 (a 60, b 30); "
        "expected 100",
        f"{path}:12: spec.predictors[0].graph.children: RANDOM_ABTEST routes between exactly 2 children, got 1",
        f"{path}:18: spec.predictors[1].graph.modelUrl: unknown field; did you mean modelUri?",
    ]


def test_validate_a_missing_file(daneel_cli: Cli, tmp_path: Path) -> None:
    result = daneel_cli("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"{tmp_path / 'nope.yaml'}: cannot read it: No such file or directory"


def test_validate_checks_components_for_image_only_nodes(daneel_cli: Cli, tmp_path: Path) -> None:
    seldon = str(EXAMPLES / "seldon-iris.yaml")
    plain = daneel_cli("validate", seldon)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[-1] == (
        "note: scaler names only a container image; to serve it here, pass --components DIR with DIR/scaler"
    )
    found = daneel_cli("validate", seldon, "--components", str(EXAMPLES / "components"))
    assert found.returncode == 0, found.stderr
    assert "note:" not in found.stdout
    missing = daneel_cli("validate", seldon, "--components", str(tmp_path))
    assert missing.returncode == 1
    assert f"spec.predictors[0].graph: expected a folder {tmp_path / 'scaler'} for this node" in missing.stderr


def test_convert_rewrites_a_seldon_file(daneel_cli: Cli, tmp_path: Path) -> None:
    source = EXAMPLES / "seldon-iris.yaml"
    result = daneel_cli("convert", str(source))
    assert result.returncode == 0, result.stderr
    converted = yaml.safe_load(result.stdout)
    original = yaml.safe_load(source.read_text())
    assert (converted["apiVersion"], converted["kind"]) == ("daneel.dev/v1alpha1", "ModelDeployment")
    assert converted["spec"] == original["spec"]
    assert converted["metadata"] == original["metadata"]
    out = tmp_path / "iris.yaml"
    written = daneel_cli("convert", str(source), "-o", str(out))
    assert (written.returncode, written.stdout) == (0, "")
    assert out.read_text() == result.stdout
    assert parse(out.read_text()).kind == "ModelDeployment"


def test_convert_refuses_an_invalid_file(daneel_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    result = daneel_cli("convert", str(path), "-o", str(tmp_path / "out.yaml"))
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 3
    assert not (tmp_path / "out.yaml").exists()


def test_schema_prints_the_json_schema(daneel_cli: Cli) -> None:
    result = daneel_cli("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["title"] == "ModelDeployment"
    assert "Node" in schema["$defs"]


@pytest.mark.parametrize("flag", ["--crd"])
def test_schema_prints_the_crd(daneel_cli: Cli, flag: str) -> None:
    result = daneel_cli("schema", flag)
    assert result.returncode == 0, result.stderr
    crd = yaml.safe_load(result.stdout)
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["spec"]["names"]["shortNames"] == ["mdep"]
