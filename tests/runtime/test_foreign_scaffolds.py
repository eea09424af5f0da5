"""What `daneel init --language nodejs|java` writes serves as it is: alone, and as a deployment's nodes
named by NODEJS_SERVER and JAVA_SERVER behind a Python transformer."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.runtime.foreign import write_folder

ROWS = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
SUMS = [6.0, 15.0]


def _needs(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: nodejs, default-jdk-headless)")


def _scaffold(daneel_cli: Any, tmp_path: Path, name: str, language: str) -> Path:
    done = daneel_cli("init", name, "--language", language, "--dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    return tmp_path / name


def _predict(url: str, model: str) -> list[float]:
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [2, 3], "data": ROWS}]}
    response = requests.post(f"{url}/v2/models/{model}/infer", json=body, timeout=120)
    assert response.status_code == 200, response.text
    return [float(value) for value in response.json()["outputs"][0]["data"]]


@pytest.mark.parametrize("language", ["nodejs", "java"])
def test_a_scaffold_serves_as_init_wrote_it(
    daneel_cli: Any, serve: Any, tmp_path: Path, language: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _needs("node" if language == "nodejs" else "javac")
    monkeypatch.setenv("DANEEL_JAVA_CACHE", str(tmp_path / "java-cache"))
    project = _scaffold(daneel_cli, tmp_path, "scorer", language)
    server = serve(project, "--no-grpc")
    assert _predict(server.url, "scorer") == SUMS


def test_nodejs_and_java_servers_behind_a_python_transformer(
    daneel_cli: Any, serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _needs("node", "javac")
    monkeypatch.setenv("DANEEL_JAVA_CACHE", str(tmp_path / "java-cache"))
    _scaffold(daneel_cli, tmp_path, "js_scorer", "nodejs")
    _scaffold(daneel_cli, tmp_path, "java_scorer", "java")
    write_folder(
        tmp_path,
        {
            "plus/Plus.py": """\
                class Plus:
                    def transform_input(self, X, names):
                        return X + 1
            """,
            "deploy.yaml": """\
                apiVersion: daneel.dev/v1alpha1
                kind: ModelDeployment
                metadata:
                  name: languages
                spec:
                  predictors:
                  - name: js
                    traffic: 50
                    graph:
                      name: plus
                      type: TRANSFORMER
                      implementation: Plus.Plus
                      modelUri: plus
                      children:
                      - name: js-scorer
                        implementation: NODEJS_SERVER
                        modelUri: js_scorer
                  - name: java
                    traffic: 50
                    graph:
                      name: plus
                      type: TRANSFORMER
                      implementation: Plus.Plus
                      modelUri: plus
                      children:
                      - name: java-scorer
                        implementation: JAVA_SERVER
                        modelUri: java_scorer
            """,
        },
    )
    server = serve(tmp_path / "deploy.yaml", "--no-grpc")
    assert _predict(server.url, "js-scorer") == SUMS  # each node on its own path
    assert _predict(server.url, "java-scorer") == SUMS
    plus_one = [value + 3 for value in SUMS]  # three columns, each one more
    seen = set()
    for _ in range(40):
        response = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": ROWS}}, timeout=120)
        assert response.status_code == 200, response.text
        assert [row[0] for row in response.json()["data"]["ndarray"]] == plus_one
        seen.add(response.headers.get("x-daneel-predictor"))
    assert seen == {"js", "java"}


def test_a_language_server_names_the_language_its_folder_must_hold(daneel_cli: Any, serve: Any, tmp_path: Path) -> None:
    _needs("node")
    _scaffold(daneel_cli, tmp_path, "js_scorer", "nodejs")
    (tmp_path / "deploy.yaml").write_text(
        "apiVersion: daneel.dev/v1alpha1\nkind: ModelDeployment\nmetadata: {name: wrong}\nspec:\n"
        "  predictors:\n  - name: p\n    graph: {name: js-scorer, implementation: JAVA_SERVER, modelUri: js_scorer}\n"
    )
    server = serve.exits(tmp_path / "deploy.yaml", "--no-grpc")
    assert server.proc.returncode != 0
    assert "JAVA_SERVER serves a java component (pom.xml, a .jar, .java sources)" in server.stderr
    assert "holds a nodejs one" in server.stderr
