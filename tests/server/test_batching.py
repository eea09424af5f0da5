"""Dynamic batching end to end: many concurrent clients against real `daneel serve` processes."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import requests

CLIENTS = 64

RECORDER = """
    import time

    import numpy as np


    class Recorder:
        # Slow enough to run on a worker thread, so that requests queue while it is busy.
        batchable = True
        max_batch_size = 8

        def __init__(self, log, factor=10.0):
            self.log = log
            self.factor = float(factor)

        def predict(self, X, names=None, meta=None):
            time.sleep(0.02)
            with open(self.log, "a") as f:
                f.write(f"{len(X)}\\n")
            return np.asarray(X) * self.factor


    class Plain(Recorder):
        batchable = False
"""


def v2(session: requests.Session, url: str, model: str, rows: np.ndarray) -> np.ndarray:
    body = {"inputs": [{"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}]}
    response = session.post(f"{url}/v2/models/{model}/infer", json=body, timeout=60)
    assert response.status_code == 200, response.text
    [output] = response.json()["outputs"]
    return np.array(output["data"]).reshape(output["shape"])


def seldon(session: requests.Session, url: str, rows: np.ndarray) -> np.ndarray:
    response = session.post(f"{url}/api/v1.0/predictions", json={"data": {"ndarray": rows.tolist()}}, timeout=60)
    assert response.status_code == 200, response.text
    return np.array(response.json()["data"]["ndarray"])


def hammer(url: str, model: str, requests_per_client: int, clients: int = CLIENTS) -> list[tuple[np.ndarray, Any]]:
    """Each client, a thread with a session of its own, sends its own rows in both protocols in turn."""

    def client(number: int) -> list[tuple[np.ndarray, Any]]:
        seen = []
        with requests.Session() as session:
            for i in range(requests_per_client):
                rows = np.array([[5.0 + number / 100, 3.0 + i / 10, 1.5, 0.2]] * (1 + (number + i) % 3))
                answer = v2(session, url, model, rows) if (number + i) % 2 else seldon(session, url, rows)
                seen.append((rows, answer))
        return seen

    with ThreadPoolExecutor(clients) as pool:
        return [pair for pairs in pool.map(client, range(clients)) for pair in pairs]


def sizes(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()]


def test_an_sklearn_model_answers_every_concurrent_request_with_its_own_rows(serve: Any, iris: Any) -> None:
    server = serve(iris.path)
    answers = hammer(server.url, "iris", requests_per_client=6)
    assert len(answers) == CLIENTS * 6
    for rows, answer in answers:
        np.testing.assert_allclose(answer, iris.model.predict_proba(rows), rtol=1e-12, atol=0)


def test_a_class_that_declares_itself_batchable_gets_batches_in_both_protocols(
    serve: Any, make_model: Callable[..., Path], tmp_path: Path
) -> None:
    log = tmp_path / "batches.log"
    folder = make_model(RECORDER, "recorder")
    server = serve(folder, "--parameters", json.dumps({"log": str(log)}))
    answers = hammer(server.url, "recorder", requests_per_client=4, clients=16)
    for rows, answer in answers:
        np.testing.assert_array_equal(answer, rows * 10)
    seen = sizes(log)
    assert sum(seen) == sum(len(rows) for rows, _ in answers)  # rows, as every request's are merged whole
    assert max(seen) > 1
    assert max(seen) <= 8 * 3  # at most max_batch_size requests of up to 3 rows


def test_a_deployment_node_sets_batching_over_the_class(serve: Any, tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(textwrap.dedent(RECORDER))
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    deploy = tmp_path / "deploy.yaml"
    deploy.write_text(
        textwrap.dedent(
            f"""
            apiVersion: daneel.dev/v1alpha1
            kind: ModelDeployment
            metadata: {{name: batched}}
            spec:
              predictors:
              - name: main
                graph:
                  name: first
                  implementation: models:Recorder
                  parameters: [{{name: log, value: "{first}", type: STRING}}]
                  batching: {{max_batch_size: 1}}
                  children:
                  - name: second
                    implementation: models:Plain
                    parameters: [{{name: log, value: "{second}", type: STRING}}]
                    batching: {{max_batch_size: 2}}
            """
        )
    )
    server = serve(deploy, cwd=tmp_path)
    answers = hammer(server.url, "batched", requests_per_client=4, clients=16)
    for rows, answer in answers:
        np.testing.assert_array_equal(answer, rows * 10 * 10)
    requests_rows = sorted(len(rows) for rows, _ in answers)
    assert sorted(sizes(first)) == requests_rows  # max_batch_size 1: one call per request, class notwithstanding
    second_sizes = sizes(second)
    assert len(second_sizes) < len(answers)  # the node's batching batches a class that does not declare it
    assert max(second_sizes) <= 2 * 3
