import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
import xgboost as xgb
from sklearn.datasets import load_iris

from daneel.errors import InvalidInput, LoadError
from daneel.protocol.payload import Payload
from daneel.runtime import prepackaged
from daneel.runtime.xgboost import XGBoostComponent

X, Y = load_iris(return_X_y=True)


def save(model: Any, folder: Path, file: str = "model.json") -> Path:
    folder.mkdir()
    model.save_model(folder / file)
    return folder


def loaded(folder: Path, **parameters: Any) -> XGBoostComponent:
    component = XGBoostComponent("m", folder, parameters)
    asyncio.run(component.load())
    return component


def predict(component: XGBoostComponent, data: Any) -> Payload:
    return asyncio.run(component.predict(Payload(data)))


@pytest.fixture(scope="module")
def softprob() -> xgb.XGBClassifier:
    return xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, Y)


@pytest.fixture(scope="module")
def binary() -> xgb.XGBClassifier:
    return xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, Y == 2)


@pytest.mark.filterwarnings("ignore:.*UBJSON")
@pytest.mark.parametrize("file", ["model.json", "model.ubj", "model.bst"])
def test_predict_is_the_boosters_own_output(tmp_path: Path, softprob: Any, file: str) -> None:
    folder = save(softprob, tmp_path / "m", file)
    assert prepackaged.recognise(folder) == "XGBOOST_SERVER"
    result = predict(loaded(folder), X[::10])
    np.testing.assert_allclose(result.data, softprob.get_booster().predict(xgb.DMatrix(X[::10])))
    assert (result.output_name, result.names) == ("predict", [])


def test_predict_proba_of_a_binary_classifier_gives_both_classes(tmp_path: Path, binary: Any) -> None:
    folder = save(binary, tmp_path / "m")
    result = predict(loaded(folder, method="predict_proba"), X[::10])
    np.testing.assert_allclose(result.data, binary.predict_proba(X[::10]))
    assert result.data.shape == (15, 2)
    np.testing.assert_allclose(predict(loaded(folder), X[::10]).data, binary.predict_proba(X[::10])[:, 1])


def test_predict_proba_of_a_softprob_classifier(tmp_path: Path, softprob: Any) -> None:
    result = predict(loaded(save(softprob, tmp_path / "m"), method="predict_proba"), X[::10])
    np.testing.assert_allclose(result.data, softprob.predict_proba(X[::10]))
    assert result.output_name == "predict_proba"


def test_predict_proba_of_a_softmax_classifier_comes_from_the_margins(tmp_path: Path) -> None:
    classifier = xgb.XGBClassifier(n_estimators=5, max_depth=2, objective="multi:softmax").fit(X, Y)
    folder = save(classifier, tmp_path / "m")
    np.testing.assert_allclose(
        predict(loaded(folder, method="predict_proba"), X[::10]).data, classifier.predict_proba(X[::10]), rtol=1e-6
    )
    assert predict(loaded(folder), X[::10]).data.tolist() == classifier.predict(X[::10]).tolist()


def test_a_booster_of_the_native_api_is_served(tmp_path: Path) -> None:
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X[:, 1:], label=X[:, 0]), num_boost_round=4)
    result = predict(loaded(save(booster, tmp_path / "m")), X[:3, 1:])
    np.testing.assert_allclose(result.data, booster.predict(xgb.DMatrix(X[:3, 1:])))
    assert result.names == []


def test_one_row_may_come_flat(tmp_path: Path, softprob: Any) -> None:
    result = predict(loaded(save(softprob, tmp_path / "m")), X[100])
    np.testing.assert_allclose(result.data, softprob.predict_proba(X[100:101]))


def test_named_features_take_rows_by_position_and_frames_by_name(tmp_path: Path) -> None:
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    regressor = xgb.XGBRegressor(n_estimators=4).fit(frame, Y)
    component = loaded(save(regressor, tmp_path / "m"))
    expected = regressor.predict(frame[:3])
    np.testing.assert_allclose(predict(component, X[:3]).data, expected)
    np.testing.assert_allclose(predict(component, frame[["d", "c", "b", "a"]][:3]).data, expected)
    with pytest.raises(InvalidInput, match="missing column\\(s\\) d; the model was trained on a, b, c, d"):
        predict(component, frame[["a", "b", "c"]])


def test_a_frame_of_unnamed_features_is_taken_by_position(tmp_path: Path, softprob: Any) -> None:
    frame = pd.DataFrame(X[:2], columns=["w", "x", "y", "z"])
    result = predict(loaded(save(softprob, tmp_path / "m")), frame)
    np.testing.assert_allclose(result.data, softprob.predict_proba(X[:2]))


@pytest.mark.parametrize("data", [np.zeros((1, 3)), np.zeros(5), np.zeros((1, 2, 4))])
def test_wrong_feature_count_is_bad_input(tmp_path: Path, softprob: Any, data: Any) -> None:
    with pytest.raises(InvalidInput, match="expected rows of 4 features, got shape") as caught:
        predict(loaded(save(softprob, tmp_path / "m")), data)
    assert caught.value.field == "input"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.array([["a", "b", "c", "d"]]), "expected numbers, got datatype BYTES"),
        ({"a": np.zeros(4), "b": np.zeros(4)}, "got 2 named entries"),
        ("text", "expected an array of rows, got str"),
    ],
)
def test_inputs_other_than_rows_of_numbers_are_bad_input(
    tmp_path: Path, softprob: Any, data: Any, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        predict(loaded(save(softprob, tmp_path / "m")), data)


def test_predict_proba_of_a_regressor_is_a_load_error(tmp_path: Path) -> None:
    folder = save(xgb.XGBRegressor(n_estimators=2).fit(X, Y), tmp_path / "m")
    with pytest.raises(LoadError, match=r"predict_proba needs a classification objective .*; this model's is reg:"):
        loaded(folder, method="predict_proba")


def test_an_unknown_method_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="parameter method: 'decision' is not one of predict, predict_proba"):
        XGBoostComponent("m", tmp_path, {"method": "decision"})


def test_an_unknown_parameter_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"unknown parameter\(s\) nthread for XGBOOST_SERVER; expected method"):
        XGBoostComponent("m", tmp_path, {"nthread": 2})


def test_a_missing_model_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"no model\.json or model\.ubj or model\.bst"):
        loaded(tmp_path)


def test_an_unreadable_model_file_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text("not a model")
    with pytest.raises(LoadError, match=r"model\.json: cannot be read as an XGBoost model"):
        loaded(tmp_path)


def test_metadata_describes_rows_and_classes(tmp_path: Path, softprob: Any) -> None:
    assert loaded(save(softprob, tmp_path / "m")).metadata().v2() == {
        "name": "m",
        "versions": [],
        "platform": "xgboost",
        "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "predict", "datatype": "FP32", "shape": [-1, 3]}],
    }


@pytest.mark.parametrize(
    ("model", "method", "shape"),
    [
        (xgb.XGBClassifier(n_estimators=2), "predict", [-1]),
        (xgb.XGBClassifier(n_estimators=2), "predict_proba", [-1, 2]),
        (xgb.XGBRegressor(n_estimators=2), "predict", [-1]),
        (xgb.XGBRegressor(n_estimators=2, tree_method="hist", multi_strategy="one_output_per_tree"), "two", [-1, 2]),
    ],
)
def test_output_shapes(tmp_path: Path, model: Any, method: str, shape: list[int]) -> None:
    target = np.c_[Y, Y] if method == "two" else Y == 1
    method = "predict" if method == "two" else method
    component = loaded(save(model.fit(X, target), tmp_path / "m"), method=method)
    assert component.metadata().v2()["outputs"] == [{"name": method, "datatype": "FP32", "shape": shape}]
    assert list(predict(component, X[:3]).data.shape) == [3, *shape[1:]]


def test_served_over_both_protocols(tmp_path: Path, softprob: Any, serve: Any) -> None:
    folder = save(softprob, tmp_path / "flowers")
    server = serve(folder, "--parameters", '{"method": "predict_proba"}')
    body = {"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP64", "data": X[::50].ravel().tolist()}]}
    response = requests.post(f"{server.url}/v2/models/flowers/infer", json=body, timeout=30)
    assert response.status_code == 200, response.text
    [output] = response.json()["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("predict_proba", "FP32", [3, 3])
    expected = softprob.predict_proba(X[::50])
    np.testing.assert_array_equal(np.float32(output["data"]).reshape(3, 3), expected)
    seldon = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": X[:1].tolist()}}, timeout=30)
    np.testing.assert_array_equal(np.float32(seldon.json()["data"]["ndarray"]), expected[:1])
    bad = requests.post(
        f"{server.url}/v2/models/flowers/infer",
        json={**body, "inputs": [{**body["inputs"][0], "shape": [4, 3]}]},
        timeout=30,
    )
    assert (bad.status_code, bad.json()) == (400, {"error": "input: expected rows of 4 features, got shape [4, 3]"})
