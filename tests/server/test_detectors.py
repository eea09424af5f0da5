"""Outlier and drift detectors on live traffic, end to end: detectors fitted by `daneel detector fit` on iris
training data, a real `daneel serve` of a deployment that uses them, real clients for both protocols and gRPC.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import requests
import tritonclient.grpc as grpcclient
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import Iris, Server, Servers
from tritonclient.utils import InferenceServerException

NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
FAR = [5.0, 3.4, 19.0, 0.2]  # a petal 19 cm long: iris petals are 1 to 7 cm
DRIFT = "io.daneel.detector.drift"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, iris: Iris) -> Path:
    """A folder with the iris model, training data as CSV, and an outlier and a drift detector fitted on it."""
    from sklearn.datasets import load_iris
    from tests.conftest import run_daneel

    folder = tmp_path_factory.mktemp("detected")
    X = load_iris().data
    train = folder / "train.csv"
    train.write_text(",".join(NAMES) + "\n" + "\n".join(",".join(map(str, row)) for row in X[::2]) + "\n")
    fits = [
        ("outlier", "mahalanobis", "odd", ["--percentile", "99.5"]),
        ("drift", "ks", "shift", ["--window", "100"]),
    ]
    for kind, method, out, extra in fits:
        done = run_daneel("detector", "fit", "--kind", kind, "--method", method, "--data", str(train),
                          "--out", str(folder / out), *extra)  # fmt: skip
        assert done.returncode == 0, done.stderr
    (folder / "model").symlink_to(iris.path)
    return folder


def deployment(folder: Path, name: str, action: str = "tag") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: daneel.dev/v1alpha1
            kind: ModelDeployment
            metadata: {{name: {name}}}
            spec:
              logger: {{file: {name}-events.jsonl}}
              predictors:
              - name: main
                detectors:
                - {{name: shift, kind: drift, modelUri: shift}}
                graph:
                  name: classifier
                  implementation: SKLEARN_SERVER
                  modelUri: model
                  detectors:
                  - {{name: odd, kind: outlier, modelUri: odd, action: {action}}}
            """
        )
    )
    return path


@pytest.fixture(scope="module")
def tagging(module_serve: Servers, project: Path) -> Iterator[Server]:
    yield module_serve(deployment(project, "tagging"))


def seldon(server: Server, rows: list[list[float]]) -> requests.Response:
    return requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": rows}}, timeout=30)


def v2(server: Server, model: str, rows: list[list[float]]) -> requests.Response:
    body = {"inputs": [{"name": "x", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}]}
    return requests.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=30)


def held_out() -> np.ndarray:
    from sklearn.datasets import load_iris

    return load_iris().data[1::2]


def test_rows_like_the_training_data_are_not_flagged(tagging: Server) -> None:
    rows = held_out().tolist()
    answer = seldon(tagging, rows)
    assert answer.status_code == 200, answer.text
    tags = answer.json()["meta"]["tags"]
    assert len(tags["outlier"]) == len(rows) == len(tags["outlier_score"])
    assert sum(tags["outlier"]) <= 0.05 * len(rows)
    centre = np.mean(held_out(), axis=0).tolist()
    assert seldon(tagging, [centre]).json()["meta"]["tags"]["outlier"] == [False]


def test_a_row_far_outside_is_flagged_in_both_protocols(tagging: Server) -> None:
    tags = seldon(tagging, [held_out()[0].tolist(), FAR]).json()["meta"]["tags"]
    assert tags["outlier"] == [False, True]
    assert tags["outlier_score"][1] > 10 * tags["outlier_score"][0]
    assert set(tags["outlier_scores"]) == {"odd"}
    answer = v2(tagging, "tagging", [FAR])
    assert answer.status_code == 200, answer.text
    parameters = answer.json()["parameters"]
    assert parameters["outlier"] == [True]
    assert parameters["outlier_score"] == parameters["tags"]["outlier_score"]
    assert len(answer.json()["outputs"][0]["data"]) == 3  # the model still answered


def test_the_node_is_watched_when_called_on_its_own(tagging: Server) -> None:
    answer = v2(tagging, "classifier", [FAR])
    assert answer.status_code == 200, answer.text
    assert answer.json()["parameters"]["outlier"] == [True]


def test_rows_of_the_wrong_width_are_a_400_naming_what_the_detector_expects(tagging: Server) -> None:
    answer = seldon(tagging, [[1.0, 2.0, 3.0]])
    assert answer.status_code == 400
    info = answer.json()["status"]["info"]
    assert "data.ndarray" in info and "4 features" in info and "petal_length" in info


def metric(server: Server, name: str, **labels: str) -> float | None:
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def events(path: Path, kind: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return [line for line in lines if line["type"] == kind]


def test_outliers_are_counted_in_metrics(tagging: Server) -> None:
    before = metric(tagging, "daneel_outliers_total", detector="odd", node="classifier") or 0.0
    seldon(tagging, [FAR, FAR])
    assert metric(tagging, "daneel_outliers_total", detector="odd", node="classifier") == before + 2
    assert (metric(tagging, "daneel_outlier_score_count", detector="odd") or 0) >= 2


def test_drift_fires_after_shifted_rows_and_not_before(
    module_serve: Servers, project: Path, wait_for: Callable[..., None]
) -> None:
    tagging = module_serve(deployment(project, "drifting"))  # its own: every row it sees is this test's
    rng = np.random.default_rng(7)
    train = np.loadtxt(project / "train.csv", delimiter=",", skiprows=1)
    same = train[rng.integers(0, len(train), 300)]
    for chunk in np.split(same, 30):
        assert seldon(tagging, chunk.tolist()).status_code == 200
    labels = {"detector": "shift", "predictor": "main"}

    def tested(outcome: str, count: float) -> bool:
        return metric(tagging, "daneel_drift_tests_total", outcome=outcome, **labels) == count

    wait_for(lambda: tested("no_drift", 3), "three windows tested without drift")
    assert metric(tagging, "daneel_drift_detected", **labels) == 0
    assert events(project / "drifting-events.jsonl", DRIFT) == []

    shifted = train[rng.integers(0, len(train), 300)] + np.array([0.0, 0.0, 2.0, 0.0])
    for chunk in np.split(shifted, 30):
        assert seldon(tagging, chunk.tolist()).status_code == 200
    wait_for(lambda: tested("drift", 3), "three windows found to drift")
    assert metric(tagging, "daneel_drift_detected", **labels) == 1
    assert (metric(tagging, "daneel_drift_p_value", feature="petal_length", **labels) or 1) < 0.01
    wait_for(lambda: len(events(project / "drifting-events.jsonl", DRIFT)) == 3, "three drift events in the log")
    event = events(project / "drifting-events.jsonl", DRIFT)[0]
    assert event["data"]["detector"] == "shift" and "petal_length" in event["data"]["drifted"]
    assert event["deployment"] == "drifting"


def test_reject_refuses_outliers_with_a_422_naming_the_features(module_serve: Servers, project: Path) -> None:
    server = module_serve(deployment(project, "rejecting", action="reject"))
    assert seldon(server, held_out()[:3].tolist()).status_code == 200
    answer = seldon(server, [held_out()[0].tolist(), FAR])
    assert answer.status_code == 422
    status = answer.json()["status"]
    assert status["reason"] == "REJECTED"
    assert "row 1" in status["info"] and "petal_length 19" in status["info"] and "odd" in status["info"]
    answer = v2(server, "rejecting", [FAR])
    assert answer.status_code == 422
    assert "petal_length" in answer.json()["error"]
    client = grpcclient.InferenceServerClient(server.grpc_target)
    tensor = grpcclient.InferInput("x", [1, 4], "FP64")
    tensor.set_data_from_numpy(np.array([FAR]))
    with pytest.raises(InferenceServerException) as caught:
        client.infer("rejecting", [tensor])
    assert "INVALID_ARGUMENT" in str(caught.value.status()) and "petal_length" in caught.value.message()


def test_with_two_workers_drift_found_by_either_shows_in_the_merged_gauges(
    serve: Servers, project: Path, wait_for: Callable[..., None]
) -> None:
    server = serve(deployment(project, "workers"), "--workers", "2")
    rng = np.random.default_rng(11)
    train = np.loadtxt(project / "train.csv", delimiter=",", skiprows=1)
    shifted = train[rng.integers(0, len(train), 600)] + np.array([0.0, 0.0, 2.0, 0.0])
    for chunk in np.split(shifted, 60):  # a new connection each: the kernel hands them to either worker
        assert seldon(server, chunk.tolist()).status_code == 200
    labels = {"detector": "shift", "predictor": "main"}
    # Each worker tests its own windows; at least one of them saw 300 rows or more.
    wait_for(lambda: (metric(server, "daneel_drift_tests_total", outcome="drift", **labels) or 0) >= 3, "drift tests")
    assert metric(server, "daneel_drift_detected", **labels) == 1  # the highest over workers, not a sum
    assert (metric(server, "daneel_drift_p_value", feature="petal_length", **labels) or 1) < 0.01
