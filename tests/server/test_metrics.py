"""GET /metrics of real `daneel serve` processes, read with Prometheus's own text parser."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

MODELS = """
class Tagger:
    def init_metrics(self, metrics):
        self.calls = metrics.counter("tagger_calls_total", "Rows the tagger saw.", ["kind"])

    def transform_input(self, X, names=None, meta=None):
        self.calls.labels("rows").inc(len(X))
        return X

    def metrics(self):
        return [
            {"type": "COUNTER", "key": "tagged_rows_total", "value": 2, "tags": {"colour": "blue"}},
            {"type": "GAUGE", "key": "tagger_temperature", "value": 36.6},
            {"type": "TIMER", "key": "tagger_lookup_seconds", "value": 20},
        ]
"""


def scrape(url: str) -> Samples:
    response = requests.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


def v2_body(rows: int = 1) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [rows, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2] * rows}]}


def test_counts_move_exactly_with_the_requests_across_two_workers(serve: Any, iris: Any, tmp_path: Path) -> None:
    server = serve(iris.path, "--workers", "2", env={"TMPDIR": str(tmp_path)})
    before = scrape(server.url)
    assert value(before, "daneel_requests_total") == 0
    assert value(before, "daneel_model_state", model="iris", state="READY") == 2, "one per worker"

    with requests.Session() as session:  # a new connection per request would be slower; workers share them anyway
        for _ in range(60):
            assert requests.post(f"{server.url}/v2/models/iris/infer", json=v2_body(), timeout=10).status_code == 200
        for _ in range(15):
            body = {"data": {"ndarray": [[5.1, 3.5, 1.4, 0.2]]}}
            assert session.post(f"{server.url}/api/v1.0/predictions", json=body, timeout=10).status_code == 200
        for _ in range(5):
            assert (
                requests.post(f"{server.url}/v2/models/iris/infer", json={"inputs": 3}, timeout=10).status_code == 400
            )
        assert requests.post(f"{server.url}/v2/models/nobody/infer", json=v2_body(), timeout=10).status_code == 404

    workers = [p for p in next(tmp_path.glob("daneel-metrics-*")).glob("*.series")]
    assert len(workers) == 2
    for _ in range(6):  # whichever worker answers the scrape, it reports both
        after = scrape(server.url)
        assert value(after, "daneel_requests_total", deployment="iris", protocol="v2", code="200") == 60
        assert value(after, "daneel_requests_total", deployment="iris", protocol="seldon", code="200") == 15
        assert value(after, "daneel_requests_total", deployment="iris", protocol="v2", code="400") == 5
        assert value(after, "daneel_requests_total", deployment="", code="404") == 1
        assert value(after, "daneel_request_duration_seconds_count", deployment="iris") == 80
        assert value(after, "seldon_api_executor_server_requests_seconds_count", deployment_name="iris") == 80
        assert value(after, "daneel_batch_size_count", model="iris") == 75
        assert value(after, "daneel_requests_in_flight") == 0


def test_graph_predictor_node_and_router_labels(serve: Any, iris: Any, tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(textwrap.dedent(MODELS))
    deploy = tmp_path / "deploy.yaml"
    deploy.write_text(
        textwrap.dedent(
            f"""
            apiVersion: daneel.dev/v1alpha1
            kind: ModelDeployment
            metadata: {{name: shop}}
            spec:
              predictors:
              - name: main
                traffic: 50
                graph:
                  name: bandit
                  implementation: EPSILON_GREEDY
                  parameters:
                  - {{name: n_branches, value: "2", type: INT}}
                  - {{name: epsilon, value: "0", type: FLOAT}}
                  children:
                  - {{name: first, implementation: SKLEARN_SERVER, modelUri: {iris.path}}}
                  - {{name: second, implementation: SKLEARN_SERVER, modelUri: {iris.path}}}
              - name: canary
                traffic: 50
                graph:
                  name: tagger
                  type: TRANSFORMER
                  implementation: models:Tagger
                  children:
                  - {{name: model, implementation: SKLEARN_SERVER, modelUri: {iris.path}}}
            """
        )
    )
    server = serve(deploy, cwd=tmp_path, env={"DANEEL_STATE_DIR": str(tmp_path / "state")})
    chosen: Counter[str] = Counter()
    for _ in range(40):
        answer = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[5.1, 3.5, 1.4, 0.2]]}})
        assert answer.status_code == 200
        chosen[answer.json()["meta"]["predictor"]] += 1
        if answer.json()["meta"]["predictor"] == "main":
            feedback = {"response": answer.json(), "reward": 0.5}
            assert requests.post(f"{server.url}/api/v1.0/feedback", json=feedback).status_code == 200
    assert requests.post(f"{server.url}/v2/models/model/infer", json=v2_body(3)).status_code == 200

    samples = scrape(server.url)
    for predictor in ("main", "canary"):
        assert (
            value(samples, "daneel_requests_total", deployment="shop", predictor=predictor, node="")
            == chosen[predictor]
        )
    assert value(samples, "daneel_requests_total", deployment="shop", node="model", protocol="v2") == 1
    assert (
        value(samples, "daneel_node_duration_seconds_count", predictor="main", node="bandit", method="route")
        == chosen["main"]
    )
    assert (
        value(samples, "daneel_node_duration_seconds_count", predictor="main", node="first", method="predict")
        == chosen["main"]
    )
    assert (
        value(samples, "daneel_node_duration_seconds_count", predictor="canary", node="tagger", code="ok")
        == chosen["canary"]
    )
    assert (
        value(samples, "seldon_api_executor_client_requests_seconds_count", predictor_name="canary", model_name="model")
        == chosen["canary"]
    )
    assert value(samples, "daneel_router_requests_total", router="bandit", branch="0") == chosen["main"]
    assert value(samples, "daneel_feedback_total", deployment="shop", predictor="main") == chosen["main"]
    assert value(samples, "daneel_feedback_reward_total", predictor="main") == pytest.approx(0.5 * chosen["main"])
    assert value(samples, "daneel_router_feedback_total", router="bandit", branch="0") == chosen["main"]
    assert value(samples, "daneel_router_reward_total", router="bandit", branch="0") == pytest.approx(
        0.5 * chosen["main"]
    )
    # Seldon's custom metrics, from the transformer's metrics()
    assert (
        value(samples, "tagged_rows_total", colour="blue", deployment="shop", predictor="canary")
        == 2 * chosen["canary"]
    )
    assert value(samples, "tagger_temperature") == (36.6 if chosen["canary"] else 0)
    assert value(samples, "tagger_lookup_seconds_sum") == pytest.approx(0.02 * chosen["canary"])
    # daneel's metrics API, which the transformer's init_metrics used
    assert value(samples, "tagger_calls_total", kind="rows") == chosen["canary"]


def test_grpc_requests_are_counted(serve: Any, iris: Any) -> None:
    server = serve(iris.path)
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    tensor = grpcclient.InferInput("x", [2, 4], "FP64")
    tensor.set_data_from_numpy(np.array([[5.1, 3.5, 1.4, 0.2]] * 2))
    for _ in range(3):
        client.infer("iris", [tensor])
    with pytest.raises(Exception, match="not found"):
        client.infer("nobody", [tensor])
    client.close()
    samples = scrape(server.url)
    assert value(samples, "daneel_requests_total", deployment="iris", protocol="grpc", code="OK") == 3
    assert value(samples, "daneel_requests_total", protocol="grpc", code="NOT_FOUND") == 1


def test_a_separate_metrics_port_and_turning_metrics_off(serve: Any, iris: Any) -> None:
    port = free_port()
    server = serve(iris.path, "--metrics-port", str(port))
    requests.post(f"{server.url}/v2/models/iris/infer", json=v2_body())
    assert value(scrape(f"http://127.0.0.1:{port}"), "daneel_requests_total", deployment="iris") == 1
    assert requests.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 404

    quiet = serve(iris.path, "--no-metrics")
    assert requests.post(f"{quiet.url}/v2/models/iris/infer", json=v2_body()).status_code == 200
    assert requests.get(f"{quiet.url}/metrics").status_code == 404
