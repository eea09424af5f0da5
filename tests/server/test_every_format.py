"""A model of every prepackaged format, trained here, served together from one folder.

Each is called through tritonclient over REST (JSON and binary tensors) and gRPC,
and must answer exactly what its framework's own predict gives.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True)
ROWS = X[::15].astype(np.float32)


def _sklearn(folder: Path) -> Callable[[np.ndarray], np.ndarray]:
    model = LogisticRegression(max_iter=1000).fit(X, y)
    joblib.dump(model, folder / "model.joblib")
    return lambda rows: np.asarray(model.predict_proba(rows.astype(np.float64)))


def _xgboost(folder: Path) -> Callable[[np.ndarray], np.ndarray]:
    import xgboost

    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    model.save_model(folder / "model.json")
    booster = xgboost.Booster(model_file=str(folder / "model.json"))
    return lambda rows: np.asarray(booster.predict(xgboost.DMatrix(rows)))


def _lightgbm(folder: Path) -> Callable[[np.ndarray], np.ndarray]:
    import lightgbm

    data = lightgbm.Dataset(X, label=y)
    booster = lightgbm.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, data, num_boost_round=5)
    booster.save_model(str(folder / "model.txt"))
    saved = lightgbm.Booster(model_file=str(folder / "model.txt"))
    return lambda rows: np.asarray(saved.predict(rows))


def _onnx(folder: Path) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime
    from skl2onnx import to_onnx

    model = LogisticRegression(max_iter=1000).fit(X, y)
    graph = to_onnx(model, X[:1].astype(np.float32), options={"zipmap": False})
    (folder / "model.onnx").write_bytes(graph.SerializeToString())
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return lambda rows: np.asarray(session.run(["probabilities"], {session.get_inputs()[0].name: rows})[0])


def _mlflow(folder: Path) -> Callable[[np.ndarray], np.ndarray]:
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import infer_signature

    model = LogisticRegression(max_iter=1000).fit(X, y)
    signature = infer_signature(X, model.predict(X))
    folder.rmdir()  # MLflow writes the folder itself
    mlflow.sklearn.save_model(model, str(folder), signature=signature, serialization_format="cloudpickle")
    loaded = mlflow.pyfunc.load_model(str(folder))
    return lambda rows: np.asarray(loaded.predict(rows.astype(np.float64)))


def _catboost(folder: Path) -> Callable[[np.ndarray], np.ndarray]:
    import catboost

    model = catboost.CatBoostClassifier(iterations=5, depth=2, verbose=False, thread_count=1, allow_writing_files=False)
    model.fit(X, y)
    model.save_model(str(folder / "model.cbm"))
    (folder / "daneel.yaml").write_text("parameters: {method: predict_proba}\n")
    return lambda rows: np.asarray(model.predict_proba(rows))


def _pytorch(folder: Path) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    program = torch.export.export(module, (torch.zeros(2, 4),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(folder / "model.pt2"))
    return lambda rows: module(torch.from_numpy(rows)).detach().numpy()


def _tensorflow(folder: Path) -> Callable[[np.ndarray], np.ndarray]:
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    model.export(str(folder), verbose=False)
    return lambda rows: np.asarray(model.predict(rows, verbose=0))


FORMATS = {
    "sklearn": (_sklearn, "predict_proba"),
    "xgboost": (_xgboost, None),
    "lightgbm": (_lightgbm, None),
    "onnx": (_onnx, "probabilities"),
    "mlflow": (_mlflow, None),
}
# The deep-learning runtimes' frameworks are the `dl` extra, which a plain `.[dev]` leaves out.
FORMATS.update(
    {
        name: (train, None)
        for name, train, module in [
            ("catboost", _catboost, "catboost"),
            ("pytorch", _pytorch, "torch"),
            ("tensorflow", _tensorflow, "tensorflow"),
        ]
        if importlib.util.find_spec(module) is not None
    }
)


@pytest.fixture(scope="module")
def served(module_serve: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    root = tmp_path_factory.mktemp("formats")
    expected = {}
    for name, (train, _) in FORMATS.items():
        (root / name).mkdir()
        expected[name] = train(root / name)
    return module_serve(root), expected


def _output(response: Any, model: str) -> np.ndarray:
    name = FORMATS[model][1] or response.get_response()["outputs"][0]["name"]
    return np.asarray(response.as_numpy(name))


@pytest.mark.parametrize("model", list(FORMATS))
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_each_format_answers_as_its_framework_over_rest(served: Any, model: str, binary: bool) -> None:
    server, expected = served
    with httpclient.InferenceServerClient(f"127.0.0.1:{server.port}") as client:
        tensor = httpclient.InferInput("input-0", list(ROWS.shape), "FP32")
        tensor.set_data_from_numpy(ROWS, binary_data=binary)
        outputs = None
        if FORMATS[model][1]:
            outputs = [httpclient.InferRequestedOutput(FORMATS[model][1], binary_data=binary)]
        response = client.infer(model, [tensor], outputs=outputs)
        np.testing.assert_allclose(_output(response, model), expected[model](ROWS), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model", list(FORMATS))
def test_each_format_answers_as_its_framework_over_grpc(served: Any, model: str) -> None:
    server, expected = served
    with grpcclient.InferenceServerClient(server.grpc_target) as client:
        assert client.is_model_ready(model)
        tensor = grpcclient.InferInput("input-0", list(ROWS.shape), "FP32")
        tensor.set_data_from_numpy(ROWS)
        response = client.infer(model, [tensor])
        name = FORMATS[model][1] or response.get_response(as_json=True)["outputs"][0]["name"]
        np.testing.assert_allclose(response.as_numpy(name), expected[model](ROWS), rtol=1e-5, atol=1e-6)


def test_the_repository_index_lists_every_format(served: Any) -> None:
    server, _ = served
    with httpclient.InferenceServerClient(f"127.0.0.1:{server.port}") as client:
        index = client.get_model_repository_index()
    assert sorted((m["name"], m["state"]) for m in index) == sorted((name, "READY") for name in FORMATS)
