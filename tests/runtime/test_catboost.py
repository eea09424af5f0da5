import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.datasets import load_iris

catboost = pytest.importorskip("catboost", reason="CATBOOST_SERVER needs catboost: pip install 'daneel[catboost]'")

from daneel.errors import InvalidInput, LoadError  # noqa: E402
from daneel.protocol.payload import Payload  # noqa: E402
from daneel.runtime import prepackaged  # noqa: E402
from daneel.runtime.catboost import CatBoostComponent  # noqa: E402

from .served import check_graph_node, check_seldon, check_triton  # noqa: E402

X, Y = load_iris(return_X_y=True)
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# allow_writing_files: no catboost_info/ folder of training logs in the working directory
SMALL = {
    "iterations": 20,
    "depth": 3,
    "verbose": False,
    "thread_count": 1,
    "random_seed": 0,
    "allow_writing_files": False,
}


@pytest.fixture(scope="module")
def classifier() -> Any:
    return catboost.CatBoostClassifier(**SMALL).fit(X, Y)


@pytest.fixture(scope="module")
def regressor() -> Any:
    return catboost.CatBoostRegressor(**SMALL).fit(X[:, :3], X[:, 3])


def save(model: Any, folder: Path) -> Path:
    folder.mkdir()
    model.save_model(str(folder / "model.cbm"))
    return folder


def loaded(folder: Path, **parameters: Any) -> CatBoostComponent:
    component = CatBoostComponent("m", folder, parameters)
    asyncio.run(component.load())
    return component


def predict(component: CatBoostComponent, data: Any) -> Payload:
    return asyncio.run(component.predict(Payload(data)))


def test_predict_gives_the_classifiers_labels(tmp_path: Path, classifier: Any) -> None:
    folder = save(classifier, tmp_path / "m")
    assert prepackaged.recognise(folder) == "CATBOOST_SERVER"
    result = predict(loaded(folder), X[::10])
    assert result.output_name == "predict"
    np.testing.assert_array_equal(result.data, classifier.predict(X[::10]).ravel())


def test_predict_proba_gives_one_probability_per_class(tmp_path: Path, classifier: Any) -> None:
    result = predict(loaded(save(classifier, tmp_path / "m"), method="predict_proba"), X[::10])
    np.testing.assert_allclose(result.data, classifier.predict_proba(X[::10]))
    assert (result.output_name, result.names) == ("predict_proba", ["0", "1", "2"])


def test_a_regressor_answers_its_values(tmp_path: Path, regressor: Any) -> None:
    result = predict(loaded(save(regressor, tmp_path / "m")), X[:5, :3])
    np.testing.assert_allclose(result.data, regressor.predict(X[:5, :3]))


def test_named_features_take_frames_by_name(tmp_path: Path) -> None:
    frame = pd.DataFrame(X, columns=COLUMNS)
    model = catboost.CatBoostClassifier(**SMALL).fit(frame, Y)
    component = loaded(save(model, tmp_path / "m"), method="predict_proba")
    shuffled = frame[list(reversed(COLUMNS))].iloc[::10]
    np.testing.assert_allclose(predict(component, shuffled).data, model.predict_proba(frame.iloc[::10]))
    np.testing.assert_allclose(predict(component, X[::10]).data, model.predict_proba(frame.iloc[::10]))


@pytest.mark.parametrize("data", [X[:2, :3], np.ones((2, 5))])
def test_wrong_feature_count_is_bad_input(tmp_path: Path, classifier: Any, data: Any) -> None:
    with pytest.raises(InvalidInput, match=r"expected rows of 4 features, got shape \[2, \d\]"):
        predict(loaded(save(classifier, tmp_path / "m")), data)


def test_predict_proba_of_a_regressor_is_a_load_error(tmp_path: Path, regressor: Any) -> None:
    with pytest.raises(LoadError, match=r"predict_proba needs a classifier .* this model's loss function is RMSE"):
        loaded(save(regressor, tmp_path / "m"), method="predict_proba")


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"method": "predict_log_proba"}, "parameter method: 'predict_log_proba' is not one of predict, predict_p"),
        ({"device": "cpu"}, r"unknown parameter\(s\) device for CATBOOST_SERVER; expected method"),
    ],
)
def test_bad_parameters_are_load_errors(tmp_path: Path, parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(LoadError, match=message):
        CatBoostComponent("m", tmp_path, parameters)


def test_an_unreadable_model_file_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "model.cbm").write_text("not a model")
    with pytest.raises(LoadError, match=r"model\.cbm: cannot be read as a CatBoost model"):
        loaded(tmp_path)


def test_metadata_describes_rows_and_classes(tmp_path: Path, classifier: Any) -> None:
    folder = save(classifier, tmp_path / "m")
    assert loaded(folder, method="predict_proba").metadata().v2() == {
        "name": "m",
        "versions": [],
        "platform": "catboost",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [{"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}],
    }
    assert loaded(folder).metadata().v2()["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]}]


def test_served_to_triton_seldon_and_a_graph(tmp_path: Path, classifier: Any, serve: Any) -> None:
    folder = save(classifier, tmp_path / "flowers")
    (folder / "daneel.yaml").write_text("parameters: {method: predict_proba}\n")
    server = serve(folder)
    expected = classifier.predict_proba(X[::10])
    check_triton(server, "flowers", {"input-0": X[::10]}, {"predict_proba": expected})
    check_seldon(server, X[::10], expected)
    bad = requests.post(
        f"{server.url}/v2/models/flowers/infer",
        json={"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
        timeout=30,
    )
    assert (bad.status_code, bad.json()) == (400, {"error": "input: expected rows of 4 features, got shape [1, 3]"})
    # The node takes its own parameters, not the folder's daneel.yaml: method predict, the default.
    labels = classifier.predict(X[::10] * 2).ravel()
    assert len(set(labels)) > 1
    check_graph_node(serve, tmp_path, "CATBOOST_SERVER", folder, X[::10], lambda rows: classifier.predict(rows).ravel())
