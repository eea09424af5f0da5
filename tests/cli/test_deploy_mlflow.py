"""From the MLflow registry to a running deployment: `daneel serve models:/...@alias`, then `daneel
deploy-mlflow` taking a newly registered version out as a canary, against a real tracking server."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml

from conftest import daneel_command
from mlflow_tracking import Tracking, tracking_server


@dataclass
class Registry:
    tracking: Tracking
    first: Any  # version 1: a logistic regression
    second: Any  # version 2: always class 2
    X: np.ndarray

    def move_champion(self, version: str) -> None:
        self.tracking.client().set_registered_model_alias("iris", "champion", version)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """`iris` registered twice in a fresh tracking server; alias champion names version 1."""
    from sklearn.datasets import load_iris
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    first = LogisticRegression(max_iter=1000).fit(X, y)
    second = DummyClassifier(strategy="constant", constant=2).fit(X, y)
    with tracking_server(tmp_path_factory.mktemp("mlflow")) as tracking:
        assert tracking.register("iris", first, X) == "1"
        assert tracking.register("iris", second, X) == "2"
        registry = Registry(tracking, first, second, X[::25])
        registry.move_champion("1")
        yield registry


def deploy_mlflow(registry: Registry, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        daneel_command("deploy-mlflow", *args),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **registry.tracking.env},
        stdin=subprocess.DEVNULL,
    )


def infer(url: str, model: str, X: np.ndarray) -> tuple[list[Any], str]:
    body = {"inputs": [{"name": "x", "shape": list(X.shape), "datatype": "FP64", "data": X.ravel().tolist()}]}
    response = requests.post(f"{url}/v2/models/{model}/infer", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["outputs"][0]["data"], response.headers.get("x-daneel-predictor", "")


def test_serving_by_alias_serves_the_version_it_names(registry: Registry, serve: Any, tmp_path: Path) -> None:
    env = {**registry.tracking.env, "DANEEL_CACHE_DIR": str(tmp_path / "cache")}
    server = serve("models:/iris@champion", "--no-grpc", env=env)
    predictions, _ = infer(server.url, "iris", registry.X)
    assert predictions == registry.first.predict(registry.X).tolist()
    metadata = requests.get(f"{server.url}/v2/models/iris", timeout=30).json()
    assert (metadata["name"], metadata["versions"], metadata["platform"]) == ("iris", ["1"], "mlflow")
    assert requests.get(f"{server.url}/v2/models/iris/versions/1", timeout=30).status_code == 200
    assert requests.get(f"{server.url}/v2/models/iris/versions/2", timeout=30).status_code == 404
    assert "models:/iris@champion is version 1 of iris (models:/iris/1)" in server.stderr


def test_a_new_version_goes_out_as_a_canary_beside_the_current_one(
    registry: Registry, serve: Any, tmp_path: Path
) -> None:
    deploy = tmp_path / "deploy.yaml"
    done = deploy_mlflow(registry, "models:/iris@champion", "--to", str(deploy))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{deploy}: v1 serves models:/iris/1 to 100% of requests\n"
    registry.move_champion("2")  # version 2 is registered and named champion: out it goes
    try:
        done = deploy_mlflow(registry, "models:/iris@champion", "--to", str(deploy), "--canary", "10")
    finally:
        registry.move_champion("1")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{deploy}: v2 serves models:/iris/2 to 10% of requests, v1 the rest (90%)\n"
    predictors = yaml.safe_load(deploy.read_text())["spec"]["predictors"]
    assert [(p["name"], p["traffic"], p["graph"]["modelUri"]) for p in predictors] == [
        ("v1", 90, "models:/iris/1"),
        ("v2", 10, "models:/iris/2"),
    ]
    env = {**registry.tracking.env, "DANEEL_CACHE_DIR": str(tmp_path / "cache")}
    server = serve(deploy, "--no-grpc", env=env)
    assert infer(server.url, "v1", registry.X)[0] == registry.first.predict(registry.X).tolist()
    assert infer(server.url, "v2", registry.X)[0] == registry.second.predict(registry.X).tolist()
    answered = {infer(server.url, "iris", registry.X)[1] for _ in range(60)}
    assert answered <= {"v1", "v2"}
    assert "v1" in answered  # 90% of 60 requests: missing it has odds of 1 in 10^60


def test_without_canary_the_new_version_replaces_the_old(registry: Registry, tmp_path: Path) -> None:
    deploy = tmp_path / "deploy.yaml"
    args = ("--name", "flowers", "--env-secret", "mlflow-credentials")
    assert deploy_mlflow(registry, "models:/iris/1", "--to", str(deploy), *args).returncode == 0
    assert deploy_mlflow(registry, "models:/iris/2", "--to", str(deploy), "--canary", "25").returncode == 0
    done = deploy_mlflow(registry, "models:/iris/2", "--to", str(deploy))
    assert done.returncode == 0, done.stderr
    deployment = yaml.safe_load(deploy.read_text())
    assert deployment["metadata"] == {"name": "flowers"}
    [predictor] = deployment["spec"]["predictors"]
    assert (predictor["name"], predictor["traffic"]) == ("v2", 100)
    assert predictor["graph"] == {
        "name": "iris",
        "implementation": "MLFLOW_SERVER",
        "modelUri": "models:/iris/2",
        "envSecretRefName": "mlflow-credentials",
    }


def test_the_rest_of_the_file_is_kept(registry: Registry, tmp_path: Path) -> None:
    deploy = tmp_path / "deploy.yaml"
    deploy.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "daneel.dev/v1alpha1",
                "kind": "ModelDeployment",
                "metadata": {"name": "iris", "labels": {"team": "ml"}},
                "spec": {
                    "predictors": [
                        {
                            "name": "main",
                            "replicas": 3,
                            "graph": {
                                "name": "iris",
                                "implementation": "MLFLOW_SERVER",
                                "modelUri": "models:/iris/1",
                                "envSecretRefName": "mlflow-credentials",
                            },
                        }
                    ]
                },
            }
        )
    )
    done = deploy_mlflow(registry, "models:/iris/2", "--to", str(deploy), "--canary", "10")
    assert done.returncode == 0, done.stderr
    deployment = yaml.safe_load(deploy.read_text())
    assert deployment["metadata"]["labels"] == {"team": "ml"}
    main, canary = deployment["spec"]["predictors"]
    assert (main["name"], main["traffic"], main["replicas"]) == ("main", 90, 3)
    assert (canary["name"], canary["traffic"], canary["replicas"]) == ("v2", 10, 3)
    assert canary["graph"]["envSecretRefName"] == "mlflow-credentials"
    assert canary["graph"]["modelUri"] == "models:/iris/2"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("runs:/abc/model",), "runs:/abc/model: expected a registered model"),
        (("models:/iris/1", "--canary", "10"), "serves only models:/iris/1 already"),
        (("models:/iris@nobody",), "models:/iris@nobody: INVALID_PARAMETER_VALUE: Registered model alias nobody"),
    ],
)
def test_what_cannot_be_deployed_fails_with_one_line(
    registry: Registry, tmp_path: Path, args: tuple[str, ...], reason: str
) -> None:
    deploy = tmp_path / "deploy.yaml"
    assert deploy_mlflow(registry, "models:/iris/1", "--to", str(deploy)).returncode == 0
    before = deploy.read_text()
    done = deploy_mlflow(registry, *args, "--to", str(deploy))
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert reason in line
    assert deploy.read_text() == before


def test_a_file_serving_something_else_is_left_alone(registry: Registry, tmp_path: Path) -> None:
    deploy = tmp_path / "deploy.yaml"
    examples = Path(__file__).resolve().parents[2] / "examples" / "deployments" / "abtest.yaml"
    deploy.write_text(examples.read_text())
    done = deploy_mlflow(registry, "models:/iris/1", "--to", str(deploy), "--canary", "10")
    assert done.returncode == 1
    assert "predictor(s) main, candidate serve no version of models:/iris" in done.stderr
    assert deploy.read_text() == examples.read_text()
