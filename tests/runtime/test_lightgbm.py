import asyncio
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.datasets import load_iris

from daneel.errors import InvalidInput, LoadError
from daneel.protocol.payload import Payload
from daneel.runtime import prepackaged
from daneel.runtime.lightgbm import LightGBMComponent

X, Y = load_iris(return_X_y=True)


def save(booster: Any, folder: Path) -> Path:
    folder.mkdir()
    booster.save_model(folder / "model.txt")
    return folder


def loaded(folder: Path, **parameters: Any) -> LightGBMComponent:
    component = LightGBMComponent("m", folder, parameters)
    asyncio.run(component.load())
    return component


def predict(component: LightGBMComponent, data: Any) -> Payload:
    return asyncio.run(component.predict(Payload(data)))


@pytest.fixture(scope="module")
def multiclass() -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, Y)


def test_classifiers_predict_probabilities_as_the_booster_does(tmp_path: Path, multiclass: Any) -> None:
    folder = save(multiclass.booster_, tmp_path / "m")
    assert prepackaged.recognise(folder) == "LIGHTGBM_SERVER"
    result = predict(loaded(folder), X[::10])
    np.testing.assert_allclose(result.data, multiclass.predict_proba(X[::10]))
    assert (result.output_name, result.names) == ("predict", [])


def test_binary_classifiers_predict_the_positive_class(tmp_path: Path) -> None:
    classifier = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, Y == 2)
    result = predict(loaded(save(classifier.booster_, tmp_path / "m")), X[::10])
    np.testing.assert_allclose(result.data, classifier.predict_proba(X[::10])[:, 1])
    assert result.names == []


def test_a_booster_of_the_native_api_is_served(tmp_path: Path) -> None:
    booster = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(X[:, 1:], X[:, 0]), num_boost_round=4)
    result = predict(loaded(save(booster, tmp_path / "m")), X[:3, 1:])
    np.testing.assert_allclose(result.data, booster.predict(X[:3, 1:]))


def test_one_row_may_come_flat(tmp_path: Path, multiclass: Any) -> None:
    result = predict(loaded(save(multiclass.booster_, tmp_path / "m")), X[100])
    np.testing.assert_allclose(result.data, multiclass.predict_proba(X[100:101]))


def test_named_features_take_rows_by_position_and_frames_by_name(tmp_path: Path) -> None:
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    regressor = lgb.LGBMRegressor(n_estimators=4, verbose=-1).fit(frame, Y)
    component = loaded(save(regressor.booster_, tmp_path / "m"))
    expected = regressor.predict(frame[:3])
    np.testing.assert_allclose(predict(component, X[:3]).data, expected)
    np.testing.assert_allclose(predict(component, frame[["d", "c", "b", "a"]][:3]).data, expected)
    with pytest.raises(InvalidInput, match=r"missing column\(s\) a; the model was trained on a, b, c, d"):
        predict(component, frame[["b", "c", "d"]])


@pytest.mark.parametrize("data", [np.zeros((1, 3)), np.zeros(5), np.zeros((2, 2, 4))])
def test_wrong_feature_count_is_bad_input(tmp_path: Path, multiclass: Any, data: Any) -> None:
    with pytest.raises(InvalidInput, match="expected rows of 4 features, got shape") as caught:
        predict(loaded(save(multiclass.booster_, tmp_path / "m")), data)
    assert caught.value.field == "input"


def test_values_lightgbm_rejects_are_bad_input(tmp_path: Path, multiclass: Any) -> None:
    with pytest.raises(InvalidInput, match="expected numbers, got datatype BYTES"):
        predict(loaded(save(multiclass.booster_, tmp_path / "m")), np.array([["a", "b", "c", "d"]], dtype=object))
    regressor = lgb.LGBMRegressor(n_estimators=2, verbose=-1).fit(pd.DataFrame({"a": X[:, 0], "b": X[:, 1]}), Y)
    with pytest.raises(InvalidInput, match="pandas dtypes must be int, float or bool") as caught:
        predict(loaded(save(regressor.booster_, tmp_path / "named")), pd.DataFrame({"a": ["x"], "b": [1.0]}))
    assert caught.value.field == "input"


def test_any_parameter_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"unknown parameter\(s\) method for LIGHTGBM_SERVER; expected none"):
        LightGBMComponent("m", tmp_path, {"method": "predict"})


def test_a_missing_model_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"no model\.txt"):
        loaded(tmp_path)


def test_an_unreadable_model_file_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "model.txt").write_text("not a model\n")
    with pytest.raises(LoadError, match=r"model\.txt: cannot be read as a LightGBM model"):
        loaded(tmp_path)


def test_metadata_describes_rows_and_classes(tmp_path: Path, multiclass: Any) -> None:
    assert loaded(save(multiclass.booster_, tmp_path / "m")).metadata().v2() == {
        "name": "m",
        "versions": [],
        "platform": "lightgbm",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1, 3]}],
    }


def test_metadata_of_a_single_output(tmp_path: Path) -> None:
    regressor = lgb.LGBMRegressor(n_estimators=2, verbose=-1).fit(X[:, :2], Y)
    metadata = loaded(save(regressor.booster_, tmp_path / "m")).metadata().v2()
    assert (metadata["inputs"][0]["shape"], metadata["outputs"][0]["shape"]) == ([-1, 2], [-1])


def test_served_over_v2(tmp_path: Path, multiclass: Any, serve: Any) -> None:
    server = serve(save(multiclass.booster_, tmp_path / "irises"))
    body = {"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP64", "data": X[::50].ravel().tolist()}]}
    response = requests.post(f"{server.url}/v2/models/irises/infer", json=body, timeout=30)
    assert response.status_code == 200, response.text
    [output] = response.json()["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("predict", "FP64", [3, 3])
    np.testing.assert_array_equal(np.reshape(output["data"], (3, 3)), multiclass.predict_proba(X[::50]))
    metadata = requests.get(f"{server.url}/v2/models/irises", timeout=30).json()
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
