"""The console's page and data endpoints, read from real `daneel serve` processes."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

ROW = [5.1, 3.5, 1.4, 0.2]
V2_BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
SELDON_BODY = {"data": {"ndarray": [ROW]}}


def get(server: Any, path: str) -> Any:
    response = requests.get(f"{server.url}{path}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def models(server: Any) -> dict[str, dict[str, Any]]:
    return {model["name"]: model for model in get(server, "/console/api/models")["models"]}


def test_the_page_and_its_assets_are_served_at_the_root_and_under_console(module_serve: Any, examples: Path) -> None:
    server = module_serve(examples / "iris")
    for path in ("/", "/console", "/console/"):
        page = requests.get(server.url + path, timeout=10)
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert '<script src="/console/static/console.js"' in page.text
    script = requests.get(server.url + "/console/static/console.js", timeout=10)
    assert script.headers["content-type"].startswith("text/javascript")
    assert "/console/api" in script.text
    assert requests.get(server.url + "/console/static/console.css", timeout=10).headers["content-type"] == "text/css"
    missing = requests.get(server.url + "/console/static/nothing.js", timeout=10)
    assert missing.status_code == 404
    assert requests.post(server.url + "/", timeout=10).status_code == 405


def test_a_model_is_listed_with_its_state_runtime_and_tensors(module_serve: Any, examples: Path) -> None:
    server = module_serve(examples / "iris")
    iris = models(server)["iris"]
    assert (iris["state"], iris["kind"], iris["implementation"], iris["platform"]) == (
        "READY",
        "model",
        "SKLEARN_SERVER",
        "sklearn",
    )
    assert iris["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert iris["outputs"][0]["name"] == "predict_proba"
    assert get(server, "/console/api/models")["metrics"] is True


def test_a_model_that_failed_to_load_is_listed_with_the_reason(serve: Any, examples: Path, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(examples / "iris", folder / "iris")
    (folder / "broken").mkdir()
    (folder / "broken" / "model.joblib").write_bytes(b"not a pickle")
    server = serve(folder, "--keep-going", ready=False)
    found = _until(lambda: models(server), lambda shown: shown.get("broken", {}).get("state") == "FAILED")
    assert found["iris"]["state"] in ("LOADING", "READY")
    assert found["broken"]["reason"]
    assert "inputs" not in found["broken"]


def test_figures_add_up_every_workers_requests_and_errors(serve: Any, examples: Path, tmp_path: Path) -> None:
    server = serve(examples / "iris", "--workers", "2", env={"TMPDIR": str(tmp_path)})
    for _ in range(10):
        assert requests.post(f"{server.url}/v2/models/iris/infer", json=V2_BODY, timeout=10).status_code == 200
    assert requests.post(f"{server.url}/v2/models/iris/infer", json={"inputs": 3}, timeout=10).status_code == 400
    for _ in range(6):  # whichever worker answers, it adds up both
        figures = get(server, "/console/api/figures")
        (iris,) = [row for row in figures["requests"] if row["deployment"] == "iris"]
        assert (iris["count"], iris["errors"]) == (11, 1)
        assert sum(iris["buckets"]) == 11
        assert len(iris["buckets"]) == len(figures["bounds"]) + 1
        assert iris["sum"] > 0


def test_an_ab_test_shows_both_predictors_their_graphs_and_their_own_figures(module_serve: Any, examples: Path) -> None:
    server = module_serve(examples / "deployments" / "abtest.yaml")
    deployment = models(server)["iris-abtest"]
    assert deployment["kind"] == "deployment"
    spec = deployment["deployment"]
    assert spec["sticky"] is None
    assert [(p["name"], p["traffic"], p["shadow"]) for p in spec["predictors"]] == [
        ("main", 75, False),
        ("candidate", 25, False),
    ]
    graph = spec["predictors"][0]["graph"]
    assert (graph["name"], graph["type"], graph["implementation"], graph["children"]) == (
        "classifier",
        "MODEL",
        "SKLEARN_SERVER",
        [],
    )
    served = Counter(
        requests.post(f"{server.url}/api/v1.0/predictions", json=SELDON_BODY, timeout=10).headers["x-daneel-predictor"]
        for _ in range(30)
    )
    figures = get(server, "/console/api/figures")
    counted = {row["predictor"]: row["count"] for row in figures["requests"] if row["deployment"] == "iris-abtest"}
    assert counted == dict(served)
    nodes = {(row["predictor"], row["node"]): row["count"] for row in figures["nodes"]}
    assert nodes == {(predictor, "classifier"): count for predictor, count in served.items()}


def test_a_bandit_routers_arms_count_requests_feedback_and_rewards(serve: Any, examples: Path, tmp_path: Path) -> None:
    server = serve(examples / "deployments" / "bandit.yaml", env={"DANEEL_STATE_DIR": str(tmp_path)})
    (predictor,) = models(server)["iris-bandit"]["deployment"]["predictors"]
    assert predictor["graph"]["type"] == "ROUTER"
    assert [child["name"] for child in predictor["graph"]["children"]] == ["probabilities", "classes"]
    answer = {}
    for _ in range(8):
        answer = requests.post(f"{server.url}/api/v1.0/predictions", json=SELDON_BODY, timeout=10).json()
    feedback = {"request": SELDON_BODY, "response": answer, "reward": 1.0}
    assert requests.post(f"{server.url}/api/v1.0/feedback", json=feedback, timeout=10).status_code == 200
    arms = get(server, "/console/api/figures")["routers"]
    assert {arm["router"] for arm in arms} == {"bandit"}
    assert sum(arm["requests"] for arm in arms) == 8
    assert sum(arm["feedback"] for arm in arms) == 1
    assert sum(arm["reward"] for arm in arms) == 1.0


def test_the_last_requests_and_responses_are_shown_when_request_logging_is_on(
    serve: Any, examples: Path, tmp_path: Path
) -> None:
    server = serve(examples / "iris", "--request-log", str(tmp_path / "requests.jsonl"))
    assert get(server, "/console/api/requests") == {"logging": True, "records": []}
    for i in range(3):
        body = {**V2_BODY, "id": f"request-{i}"}
        assert requests.post(f"{server.url}/v2/models/iris/infer", json=body, timeout=10).status_code == 200
    records = get(server, "/console/api/requests")["records"]
    assert [(r["kind"], r["request_id"]) for r in records] == [
        (kind, f"request-{i}") for i in (2, 1, 0) for kind in ("response", "request")
    ]
    assert records[1]["body"]["inputs"][0]["data"] == ROW
    assert records[0]["body"]["outputs"][0]["name"] == "predict_proba"
    assert {r["model"] for r in records} == {"iris"}


def test_without_request_logging_or_metrics_the_console_says_so(serve: Any, examples: Path) -> None:
    server = serve(examples / "iris", "--no-metrics")
    assert get(server, "/console/api/requests") == {"logging": False, "records": []}
    assert get(server, "/console/api/figures") == {"metrics": False}
    assert get(server, "/console/api/models")["metrics"] is False


def _until(read: Any, done: Any, tries: int = 120) -> Any:
    value = None
    for _ in range(tries):
        value = read()
        if done(value):
            return value
        time.sleep(0.5)
    pytest.fail(f"never happened; last read: {value}")
