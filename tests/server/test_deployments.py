"""`daneel serve deploy.yaml`: real deployment files served by real subprocesses."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient

MODELS = """
import pathlib

class Const:
    def __init__(self, value=0.0, log=""):
        self.value = float(value)
        self.log = log

    def predict(self, X, names=None, meta=None):
        if self.log:
            with open(self.log, "a") as f:
                f.write("seen\\n")
        return [[self.value] for _ in range(len(X))]


class Broken:
    def predict(self, X, names=None, meta=None):
        raise RuntimeError("the shadow is broken")


class Doubler:
    def transform_input(self, X, names=None, meta=None):
        return [[2 * v for v in row] for row in X]

    def tags(self):
        return {"doubled": True}
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("deploy")
    (folder / "models.py").write_text(textwrap.dedent(MODELS))
    return folder


def write(folder: Path, text: str, name: str = "deploy.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def predict(server: Any, rows: list[list[float]], **extra: Any) -> requests.Response:
    return requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": rows}, **extra}, timeout=30)


def const_node(name: str, value: float, log: str = "") -> str:
    params = f'[{{name: value, value: "{value}", type: FLOAT}}, {{name: log, value: "{log}", type: STRING}}]'
    return f"{{name: {name}, implementation: models:Const, parameters: {params}}}"


def test_traffic_splits_75_25(serve: Any, models: Path) -> None:
    path = write(
        models,
        f"""
        apiVersion: daneel.dev/v1alpha1
        kind: ModelDeployment
        metadata: {{name: split}}
        spec:
          predictors:
          - {{name: main, traffic: 75, graph: {const_node("a", 0)}}}
          - {{name: canary, traffic: 25, graph: {const_node("b", 1)}}}
        """,
        "split.yaml",
    )
    server = serve(path, cwd=models)
    counts: Counter[str] = Counter()
    with requests.Session() as session:
        for _ in range(2000):
            response = session.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[1]]}})
            body = response.json()
            assert response.headers["x-daneel-predictor"] == body["meta"]["predictor"]
            assert body["data"]["ndarray"] == [[0.0 if body["meta"]["predictor"] == "main" else 1.0]]
            counts[body["meta"]["predictor"]] += 1
    assert 71 <= counts["main"] / 20 <= 79


def test_sticky_users_stay_on_one_predictor(serve: Any, models: Path) -> None:
    path = write(
        models,
        f"""
        apiVersion: daneel.dev/v1alpha1
        kind: ModelDeployment
        metadata: {{name: sticky}}
        spec:
          sticky: {{header: X-User-Id}}
          predictors:
          - {{name: left, traffic: 50, graph: {const_node("l", 0)}}}
          - {{name: right, traffic: 50, graph: {const_node("r", 1)}}}
        """,
        "sticky.yaml",
    )
    server = serve(path, cwd=models)
    chosen = {}
    with requests.Session() as session:
        for user in [f"user-{i}" for i in range(40)] * 3:
            response = session.post(
                f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[1]]}}, headers={"X-User-Id": user}
            )
            assert (
                chosen.setdefault(user, response.headers["x-daneel-predictor"])
                == response.headers["x-daneel-predictor"]
            )
    assert set(chosen.values()) == {"left", "right"}


def test_a_shadow_sees_every_request_and_its_failure_never_reaches_callers(
    serve: Any, models: Path, tmp_path: Path, wait_for: Any
) -> None:
    log = tmp_path / "shadow.log"
    path = write(
        models,
        f"""
        apiVersion: daneel.dev/v1alpha1
        kind: ModelDeployment
        metadata: {{name: shadowed}}
        spec:
          predictors:
          - {{name: main, graph: {const_node("live", 1)}}}
          - name: mirror
            shadow: true
            graph:
              # The recorder answers first, then its child fails: every copy is recorded, every one fails.
              name: recorder
              implementation: models:Const
              parameters: [{{name: value, value: "5", type: FLOAT}}, {{name: log, value: "{log}", type: STRING}}]
              children:
              - {{name: broken, implementation: models:Broken}}
        """,
        "shadow.yaml",
    )
    server = serve(path, cwd=models)
    for _ in range(30):
        response = predict(server, [[1.0]])
        assert response.status_code == 200, response.text
        assert response.json()["data"]["ndarray"] == [[1.0]]
        assert response.json()["meta"]["predictor"] == "main"
    wait_for(lambda: _lines(log) == 30, f"30 requests recorded by the shadow in {log}")
    wait_for(lambda: server.stderr.count("shadow mirror failed") == 30, "30 shadow failures logged")


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_an_average_combiner_averages_its_children(serve: Any, models: Path) -> None:
    path = write(
        models,
        f"""
        apiVersion: daneel.dev/v1alpha1
        kind: ModelDeployment
        metadata: {{name: ensemble}}
        spec:
          predictors:
          - name: default
            graph:
              name: doubler
              type: TRANSFORMER
              implementation: models:Doubler
              children:
              - name: mean
                implementation: AVERAGE_COMBINER
                children: [{const_node("one", 1)}, {const_node("three", 3)}, {const_node("eight", 8)}]
        """,
        "ensemble.yaml",
    )
    server = serve(path, cwd=models)
    body = predict(server, [[1.0], [2.0]]).json()
    assert body["data"]["ndarray"] == [[4.0], [4.0]]
    assert body["meta"]["requestPath"] == {
        "doubler": "models:Doubler",
        "mean": "AVERAGE_COMBINER",
        "one": "models:Const",
        "three": "models:Const",
        "eight": "models:Const",
    }
    assert body["meta"]["tags"]["doubled"] is True
    v2 = requests.post(
        f"{server.url}/v2/models/ensemble/infer",
        json={"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]}]},
        timeout=30,
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == [4.0]
    with grpcclient.InferenceServerClient(server.grpc_target) as client:
        tensor = grpcclient.InferInput("x", [1, 1], "FP64")
        tensor.set_data_from_numpy(np.array([[1.0]]))
        answer = client.infer("ensemble", [tensor])
    assert answer.as_numpy(answer.get_response(as_json=True)["outputs"][0]["name"]).tolist() == [[4.0]]
    node = requests.post(
        f"{server.url}/v2/models/three/infer",
        json={"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]}]},
        timeout=30,
    )
    assert node.json()["outputs"][0]["data"] == [3.0]


def test_an_epsilon_greedy_router_learns_from_feedback_across_two_workers(
    serve: Any, models: Path, tmp_path: Path
) -> None:
    path = write(
        models,
        f"""
        apiVersion: daneel.dev/v1alpha1
        kind: ModelDeployment
        metadata: {{name: bandit}}
        spec:
          stateStore: {tmp_path / "bandit.sqlite"}
          predictors:
          - name: default
            graph:
              name: eg
              implementation: EPSILON_GREEDY
              parameters:
              - {{name: n_branches, value: "2", type: INT}}
              - {{name: epsilon, value: "0.1", type: FLOAT}}
              - {{name: best_branch, value: "1", type: INT}}
              children: [{const_node("good", 0)}, {const_node("bad", 1)}]
        """,
        "bandit.yaml",
    )
    server = serve(path, "--workers", "2", cwd=models)
    with requests.Session() as session:
        for _ in range(200):
            response = session.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[1]]}}).json()
            branch = response["meta"]["routing"]["eg"]
            feedback = {"request": {"data": {"ndarray": [[1]]}}, "response": response, "reward": 1 - branch}
            assert session.post(f"{server.url}/api/v1.0/feedback", json=feedback).status_code == 200
        later = Counter(
            session.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[1]]}}).json()["meta"][
                "routing"
            ]["eg"]
            for _ in range(400)
        )
    assert later[0] / 400 >= 0.85


def test_a_graph_calls_a_remote_node_written_in_javascript(serve: Any, models: Path, node_model: int) -> None:
    path = write(
        models,
        f"""
        apiVersion: daneel.dev/v1alpha1
        kind: ModelDeployment
        metadata: {{name: polyglot}}
        spec:
          predictors:
          - name: default
            graph:
              name: doubler
              type: TRANSFORMER
              implementation: models:Doubler
              children:
              - name: js-triple
                type: MODEL
                endpoint: {{service_host: 127.0.0.1, service_port: {node_model}, type: REST}}
        """,
        "polyglot.yaml",
    )
    server = serve(path, cwd=models)
    body = predict(server, [[1.0, 2.0], [3.0, 4.0]]).json()
    assert body["data"]["ndarray"] == [[6.0, 12.0], [18.0, 24.0]]  # doubled here, tripled in JavaScript
    assert body["meta"]["tags"] == {"doubled": True, "language": "javascript"}


SELDON_FILE = """
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: iris
  namespace: seldon
spec:
  name: iris
  predictors:
  - componentSpecs:
    - spec:
        containers:
        - image: registry.example.com/iris-transformer:0.1
          name: scaler
    graph:
      name: scaler
      type: TRANSFORMER
      endpoint:
        type: REST
      children:
      - name: classifier
        implementation: SKLEARN_SERVER
        modelUri: {uri}
        parameters:
        - name: method
          type: STRING
          value: predict
        children: []
    name: default
    replicas: 1
"""

SCALER = """
class Scaler:
    def transform_input(self, X, features_names=None):
        return X * 1.0
"""


@pytest.mark.parametrize("where", ["option", "annotation"])
def test_a_seldon_deployment_from_seldons_docs_serves_unchanged(
    serve: Any, iris: Any, tmp_path: Path, where: str
) -> None:
    components = tmp_path / "components"
    (components / "scaler").mkdir(parents=True)
    (components / "scaler" / "Scaler.py").write_text(SCALER)
    text = SELDON_FILE.format(uri=iris.path.as_uri())
    if where == "annotation":
        text = text.replace(
            "  namespace: seldon\n", "  namespace: seldon\n  annotations: {daneel.dev/components: components}\n"
        )
    path = write(tmp_path, text, "seldon.yaml")
    server = serve(path, "--components", str(components)) if where == "option" else serve(path)
    body = predict(server, iris.X.tolist()).json()
    assert body["data"]["ndarray"] == iris.model.predict(iris.X).tolist()
    # As in Seldon, a node that names an image is reported by its image.
    assert body["meta"]["requestPath"] == {
        "scaler": "registry.example.com/iris-transformer:0.1",
        "classifier": "SKLEARN_SERVER",
    }
    gateway = requests.post(
        f"{server.url}/seldon/seldon/iris/api/v1.0/predictions", json={"data": {"ndarray": iris.X.tolist()}}, timeout=30
    )
    assert gateway.json()["data"]["ndarray"] == iris.model.predict(iris.X).tolist()


def test_an_invalid_deployment_fails_naming_the_field(serve: Any, models: Path) -> None:
    path = write(
        models,
        """
        apiVersion: daneel.dev/v1alpha1
        kind: ModelDeployment
        metadata: {name: bad}
        spec:
          predictors:
          - {name: a, traffic: 60, graph: {name: x, implementation: models:Const}}
          - {name: b, traffic: 30, graph: {name: y, implementation: models:Const, colour: blue}}
        """,
        "bad.yaml",
    )
    server = serve.exits(path, cwd=models)
    assert server.returncode != 0
    assert "spec.predictors[1].graph.colour" in server.stderr
    assert "100" in server.stderr
