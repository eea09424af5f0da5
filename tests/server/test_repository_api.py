"""Several models in one `daneel serve DIR`, and the repository API that loads and unloads them."""

from __future__ import annotations

import shutil
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import tritonclient.http as triton

MODEL = """
    class Model:
        def predict(self, X, names):
            return {}
"""


def write_model(folder: Path, expression: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(textwrap.dedent(MODEL.format(expression)))
    return folder


@pytest.fixture
def models(tmp_path: Path, iris: Any) -> Path:
    """models/: iris (scikit-learn), and double and negate, each a `model.py` with a class `Model`."""
    root = tmp_path / "models"
    shutil.copytree(iris.path, root / "iris")
    write_model(root / "double", "X * 2")
    write_model(root / "negate", "-X")
    return root


def infer(url: str, model: str, values: list[float]) -> requests.Response:
    body = {"inputs": [{"name": "x", "shape": [1, len(values)], "datatype": "FP64", "data": values}]}
    return requests.post(f"{url}/v2/models/{model}/infer", json=body, timeout=30)


def outputs(url: str, model: str, values: list[float]) -> list[float]:
    response = infer(url, model, values)
    assert response.status_code == 200, response.text
    data: list[float] = response.json()["outputs"][0]["data"]
    return data


def index(url: str, body: Any = None) -> list[dict[str, Any]]:
    response = requests.post(f"{url}/v2/repository/index", json={} if body is None else body, timeout=30)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def post(url: str, path: str) -> requests.Response:
    return requests.post(url + path, timeout=60)


def test_each_folder_is_served_under_its_name(serve: Any, models: Path, iris: Any) -> None:
    server = serve(models)
    assert outputs(server.url, "double", [1.5, 2.0]) == [3.0, 4.0]
    assert outputs(server.url, "negate", [1.5, 2.0]) == [-1.5, -2.0]  # its own model.py, not double's
    np.testing.assert_allclose(outputs(server.url, "iris", iris.X[0].tolist()), iris.model.predict_proba(iris.X[:1])[0])
    assert "serving double, iris, negate on" in server.stderr


def test_seldons_paths_name_the_models_they_cannot_choose_between(serve: Any, models: Path) -> None:
    server = serve(models)
    response = requests.post(server.url + "/api/v1.0/predictions", json={"data": {"ndarray": [[1.0]]}}, timeout=30)
    assert response.status_code == 404
    assert (
        response.json()["status"]["info"] == "Seldon's paths address one model but 3 are served (double, iris, negate)"
    )


def test_the_index_lists_the_models_and_filters_the_ready_ones(serve: Any, models: Path) -> None:
    write_model(models / "broken", "X").joinpath("model.py").open("a").write("raise RuntimeError('no weights')\n")
    server = serve(models, "--keep-going", ready=False)  # the broken model keeps the server unready
    expected = [
        {"name": "broken", "state": "UNAVAILABLE", "reason": "..."},
        {"name": "double", "state": "READY", "reason": ""},
        {"name": "iris", "state": "READY", "reason": ""},
        {"name": "negate", "state": "READY", "reason": ""},
    ]
    for _ in range(600):
        found = index(server.url)
        if all(entry["state"] != "LOADING" for entry in found):
            break
        threading.Event().wait(0.1)
    assert found[0]["reason"] == "cannot import 'model' for model.Model: RuntimeError: no weights"
    assert [{**entry, "reason": entry["reason"] and "..."} for entry in found] == expected
    assert index(server.url, {"ready": True}) == expected[1:]
    assert requests.post(server.url + "/v2/repository/index", timeout=30).status_code == 200  # no body at all
    response = requests.post(server.url + "/v2/repository/index", json={"ready": "yes"}, timeout=30)
    assert (response.status_code, response.json()) == (400, {"error": "ready: expected true or false, got 'yes'"})
    assert "model_repository" in requests.get(server.url + "/v2", timeout=30).json()["extensions"]


def test_unloading_and_loading_a_model_leaves_the_others_serving(serve: Any, models: Path) -> None:
    server = serve(models)
    statuses: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        with requests.Session() as session:
            body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]}]}
            while not stop.is_set():
                statuses.append(session.post(f"{server.url}/v2/models/double/infer", json=body, timeout=30).status_code)

    streaming = threading.Thread(target=stream)
    streaming.start()
    try:
        for _ in range(3):
            assert post(server.url, "/v2/repository/models/negate/unload").status_code == 200
            response = infer(server.url, "negate", [1.0])
            assert (response.status_code, response.json()) == (503, {"error": "model 'negate' is not ready: unloaded"})
            assert {"name": "negate", "state": "UNAVAILABLE", "reason": "unloaded"} in index(server.url)
            assert requests.get(server.url + "/v2/health/ready", timeout=30).status_code == 200
            assert post(server.url, "/v2/repository/models/negate/load").status_code == 200
            assert outputs(server.url, "negate", [1.0]) == [-1.0]
    finally:
        stop.set()
        streaming.join()
    assert statuses and set(statuses) == {200}


def test_a_folder_added_after_start_loads_on_request(serve: Any, models: Path) -> None:
    server = serve(models)
    write_model(models / "triple", "X * 3")
    assert {"name": "triple", "state": "UNAVAILABLE", "reason": "not loaded"} in index(server.url)
    assert infer(server.url, "triple", [1.0]).status_code == 404
    assert post(server.url, "/v2/repository/models/triple/load").status_code == 200
    assert outputs(server.url, "triple", [1.0]) == [3.0]


def test_a_reload_serves_the_edited_code(serve: Any, models: Path) -> None:
    server = serve(models)
    write_model(models / "double", "X * 20")
    assert outputs(server.url, "double", [1.0]) == [2.0]
    assert post(server.url, "/v2/repository/models/double/load").status_code == 200
    assert outputs(server.url, "double", [1.0]) == [20.0]


def test_a_failed_reload_keeps_the_model_serving(serve: Any, models: Path) -> None:
    server = serve(models)
    (models / "double" / "model.py").write_text("raise RuntimeError('half-written')\n")
    response = post(server.url, "/v2/repository/models/double/load")
    assert response.status_code == 500
    assert response.json() == {
        "error": "model 'double' failed to load: cannot import 'model' for model.Model: RuntimeError: half-written"
    }
    assert outputs(server.url, "double", [1.0]) == [2.0]


def test_unknown_models_and_actions_are_not_found(serve: Any, models: Path) -> None:
    server = serve(models)
    response = post(server.url, "/v2/repository/models/nope/load")
    assert (response.status_code, response.json()) == (
        404,
        {"error": "model 'nope' not found; known models: double, iris, negate"},
    )
    assert post(server.url, "/v2/repository/models/nope/unload").status_code == 404
    assert post(server.url, "/v2/repository/models/double/reload").status_code == 404
    assert requests.get(server.url + "/v2/repository/models/double/load", timeout=30).status_code == 405


def test_tritons_client_drives_the_repository(serve: Any, models: Path) -> None:
    server = serve(models)
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        assert [entry["name"] for entry in client.get_model_repository_index()] == ["double", "iris", "negate"]
        client.unload_model("iris")
        assert not client.is_model_ready("iris")
        assert client.is_model_ready("double")
        client.load_model("iris")
        assert client.is_model_ready("iris")
    finally:
        client.close()


def test_two_models_of_one_name_stop_the_server_naming_both_folders(serve: Any, models: Path) -> None:
    (models / "negate" / "daneel.yaml").write_text("name: double\n")
    server = serve.exits(models)
    assert server.returncode == 1
    assert f"Error: {models}/double and {models}/negate are both named 'double'" in server.stderr


def test_with_several_workers_models_load_at_start_only(serve: Any, models: Path) -> None:
    server = serve(models, "--workers", "2")
    response = post(server.url, "/v2/repository/models/negate/unload")
    assert response.status_code == 501
    assert response.json()["error"].startswith("loading and unloading models at runtime needs --workers 1")
    assert outputs(server.url, "negate", [1.0]) == [-1.0]
