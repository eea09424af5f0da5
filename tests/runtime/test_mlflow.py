import asyncio
import logging
import platform
import shutil
import warnings
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.models import ModelSignature, infer_signature
from mlflow.types import Schema, TensorSpec
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

from daneel.errors import InvalidInput, LoadError
from daneel.protocol.payload import Payload
from daneel.runtime import prepackaged
from daneel.runtime.mlflow import MLflowComponent

FRAME, Y = load_iris(return_X_y=True, as_frame=True)
X = FRAME.to_numpy()
COLUMNS = list(FRAME.columns)


class AddAndSubtract(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    # Unannotated, and MLflow told not to look for annotations: these models declare their signatures.
    _skip_type_hint_validation = True

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        if isinstance(model_input, dict):
            return {"sum": model_input["a"] + model_input["b"], "difference": model_input["a"] - model_input["b"]}
        return {"type": np.array([type(model_input).__name__]), "columns": np.array(list(model_input.columns))}


def save_custom(folder: Path, signature: ModelSignature | None = None) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # MLflow's advice on type hints and input examples
        mlflow.pyfunc.save_model(str(folder), python_model=AddAndSubtract(), signature=signature)
    return folder


def save_sklearn(model: Any, folder: Path, X: Any) -> Path:
    signature = infer_signature(X, model.predict(X))
    mlflow.sklearn.save_model(model, str(folder), signature=signature, serialization_format="cloudpickle")
    return folder


@pytest.fixture(scope="module")
def frame_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A classifier fitted on iris's named columns, saved with a column signature."""
    classifier = LogisticRegression(max_iter=500).fit(FRAME, Y)
    return save_sklearn(classifier, tmp_path_factory.mktemp("mlflow") / "iris", FRAME), classifier


@pytest.fixture(scope="module")
def array_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A regressor fitted on a numpy array, saved with a tensor signature of shape [-1, 3]."""
    regressor = LinearRegression().fit(X[:, 1:], X[:, 0])
    return save_sklearn(regressor, tmp_path_factory.mktemp("mlflow") / "petals", X[:, 1:]), regressor


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PythonModel of named tensor inputs a and b (FP32, [-1, 2]) and outputs sum and difference."""
    specs = [TensorSpec(np.dtype(np.float32), (-1, 2), name) for name in ("a", "b")]
    outputs = [TensorSpec(np.dtype(np.float32), (-1, 2), name) for name in ("sum", "difference")]
    folder = tmp_path_factory.mktemp("mlflow") / "adder"
    signature = ModelSignature(Schema(specs), Schema(outputs))  # type: ignore[arg-type]
    return save_custom(folder, signature)


def copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def loaded(folder: Path, **parameters: Any) -> MLflowComponent:
    component = MLflowComponent("m", folder, parameters)
    asyncio.run(component.load())
    return component


def predict(component: MLflowComponent, data: Any, names: list[str] | None = None) -> Payload:
    return asyncio.run(component.predict(Payload(data, names or [])))


def test_an_mlflow_folder_is_recognised_before_its_flavours_file(frame_model: Any) -> None:
    folder, _ = frame_model
    assert (folder / "model.pkl").is_file()
    assert prepackaged.recognise(folder) == "MLFLOW_SERVER"


def test_rows_become_a_frame_with_the_signatures_columns(frame_model: Any) -> None:
    folder, classifier = frame_model
    result = predict(loaded(folder), X[::10])
    np.testing.assert_array_equal(result.data, classifier.predict(FRAME[::10]))
    assert (result.output_name, result.names) == ("output-0", [])


def test_named_inputs_become_columns_in_any_order(frame_model: Any) -> None:
    folder, classifier = frame_model
    data = {name: FRAME[name].to_numpy()[::10] for name in reversed(COLUMNS)}
    np.testing.assert_array_equal(predict(loaded(folder), data).data, classifier.predict(FRAME[::10]))


def test_frames_pass_and_integers_are_cast_to_the_signatures_type(frame_model: Any) -> None:
    folder, classifier = frame_model
    rows = np.array([[5, 3, 1, 0], [7, 3, 6, 2]])
    frame = pd.DataFrame(rows, columns=COLUMNS)
    expected = classifier.predict(frame.astype(float))
    np.testing.assert_array_equal(predict(loaded(folder), rows).data, expected)
    np.testing.assert_array_equal(predict(loaded(folder), frame).data, expected)


def test_seldon_names_name_the_columns(frame_model: Any) -> None:
    folder, classifier = frame_model
    result = predict(loaded(folder), X[::10, ::-1], COLUMNS[::-1])
    np.testing.assert_array_equal(result.data, classifier.predict(FRAME[::10]))


def test_rows_of_another_width_are_bad_input(frame_model: Any) -> None:
    folder, _ = frame_model
    with pytest.raises(InvalidInput, match=r"expected rows of 4 columns \(sepal length \(cm\), .*got shape \[1, 3\]"):
        predict(loaded(folder), X[:1, :3])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sepal length (cm)": X[:1, 0]}, r"Model is missing inputs \['sepal width \(cm\)'"),
        # MLflow's own words, which changed between releases
        (
            pd.DataFrame([["a", "b", "c", "d"]], columns=COLUMNS),
            r"Incompatible input types|Failed to convert column sepal length \(cm\)",
        ),
        ("text", "expected rows or named columns, got str"),
    ],
)
def test_data_unlike_the_signature_is_bad_input(frame_model: Any, data: Any, message: str) -> None:
    folder, _ = frame_model
    with pytest.raises(InvalidInput, match=message) as caught:
        predict(loaded(folder), data)
    assert caught.value.field == "input"


def test_a_tensor_signature_takes_arrays_cast_to_its_type(array_model: Any) -> None:
    folder, regressor = array_model
    component = loaded(folder)
    np.testing.assert_allclose(predict(component, X[:5, 1:]).data, regressor.predict(X[:5, 1:]))
    single = X[:5, 1:].astype(np.float32)
    np.testing.assert_allclose(predict(component, single).data, regressor.predict(single.astype(np.float64)))
    with pytest.raises(InvalidInput, match=r"input: expected shape \[-1, 3\], got \[5, 4\]"):
        predict(component, X[:5])


def test_named_tensors_go_by_name_and_dict_results_come_back_by_name(custom_model: Path) -> None:
    ones = np.ones((1, 2))
    result = predict(loaded(custom_model), {"b": ones, "a": 3 * ones})
    assert result.names == ["sum", "difference"]
    np.testing.assert_array_equal(result.data["sum"], [[4.0, 4.0]])
    assert result.data["difference"].dtype == np.float32
    with pytest.raises(InvalidInput, match="is missing; the model's inputs are a, b") as caught:
        predict(loaded(custom_model), {"a": ones})
    assert caught.value.field == "b"


def test_without_a_signature_seldon_names_make_a_frame(tmp_path: Path) -> None:
    save_custom(tmp_path / "plain")
    result = predict(loaded(tmp_path / "plain"), np.zeros((1, 2)), ["x", "y"])
    assert (result.data["type"].tolist(), result.data["columns"].tolist()) == (["DataFrame"], ["x", "y"])
    assert loaded(tmp_path / "plain").metadata().v2()["inputs"] == []


def test_column_metadata(frame_model: Any) -> None:
    folder, _ = frame_model
    assert loaded(folder).metadata().v2() == {
        "name": "m",
        "versions": [],
        "platform": "mlflow",
        "inputs": [{"name": name, "datatype": "FP64", "shape": [-1]} for name in COLUMNS],
        "outputs": [{"name": "output-0", "datatype": "INT64", "shape": [-1]}],
        "parameters": {"content_type": "pd"},
    }


def test_tensor_metadata(array_model: Any, custom_model: Path) -> None:
    metadata = loaded(array_model[0]).metadata().v2()
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 3]}]
    assert metadata["outputs"] == [{"name": "output-0", "datatype": "FP64", "shape": [-1]}]
    assert "parameters" not in metadata
    metadata = loaded(custom_model).metadata().v2()
    assert [spec["name"] for spec in metadata["inputs"]] == ["a", "b"]
    assert metadata["outputs"][1] == {"name": "difference", "datatype": "FP32", "shape": [-1, 2]}


def test_requirements_met_by_this_environment_log_nothing(frame_model: Any, caplog: pytest.LogCaptureFixture) -> None:
    folder, _ = frame_model
    assert "mlflow==" in (folder / "requirements.txt").read_text()
    loaded(folder)
    assert [r for r in caplog.records if r.name == "daneel.mlflow"] == []


def unmet_copy(frame_model: Any, tmp_path: Path) -> Path:
    folder = copy(frame_model[0], tmp_path)
    with (folder / "requirements.txt").open("a") as f:
        f.write("\ndaneel-no-such-package==1.0\nnumpy<1 ; python_version >= '3'\nonly-on-py2 ; python_version < '3'\n")
    mlmodel = folder / "MLmodel"
    mlmodel.write_text(
        mlmodel.read_text().replace(f"python_version: {platform.python_version()}", "python_version: 2.7.18")
    )
    return folder


def test_unmet_requirements_are_logged_at_load(
    frame_model: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = unmet_copy(frame_model, tmp_path)
    with caplog.at_level(logging.WARNING, "daneel.mlflow"):
        loaded(folder)
    [record] = [r for r in caplog.records if r.name == "daneel.mlflow"]
    assert record.getMessage() == (
        "m: this environment does not meet the model's requirements: "
        f"python 2.7.18 (running {platform.python_version()}); daneel-no-such-package==1.0 (not installed); "
        f'numpy<1; python_version >= "3" (installed {np.__version__})'
        " (parameter strict_requirements makes this a load error)"
    )


@pytest.mark.parametrize("strict", [True, "true"])
def test_strict_requirements_make_them_a_load_error(frame_model: Any, tmp_path: Path, strict: Any) -> None:
    folder = unmet_copy(frame_model, tmp_path)
    with pytest.raises(LoadError, match=r"^this environment does not meet .*daneel-no-such-package==1\.0"):
        loaded(folder, strict_requirements=strict)


def test_requirements_come_from_conda_yaml_without_requirements_txt(frame_model: Any, tmp_path: Path) -> None:
    folder = copy(frame_model[0], tmp_path)
    (folder / "requirements.txt").unlink()
    (folder / "conda.yaml").write_text("dependencies:\n- python=3.11\n- pip:\n  - daneel-no-such-package\n")
    with pytest.raises(LoadError, match=r"requirements: daneel-no-such-package \(not installed\)$"):
        loaded(folder, strict_requirements=True)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"strict_requirements": "yes please"}, "parameter strict_requirements: expected true or false"),
        ({"method": "predict"}, r"unknown parameter\(s\) method for MLFLOW_SERVER; expected strict_requirements"),
    ],
)
def test_bad_parameters_are_load_errors(tmp_path: Path, parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(LoadError, match=message):
        MLflowComponent("m", tmp_path, parameters)


def test_a_folder_without_the_pyfunc_flavour_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors:\n  spark: {}\n")
    with pytest.raises(LoadError, match=r"MLmodel: no python_function flavour, .*\(flavours: spark\)"):
        loaded(tmp_path)


def test_an_unloadable_model_is_a_load_error(frame_model: Any, tmp_path: Path) -> None:
    folder = copy(frame_model[0], tmp_path)
    (folder / "model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(LoadError, match="cannot be loaded as an MLflow model"):
        loaded(folder)


def test_served_over_v2(frame_model: Any, serve: Any) -> None:
    folder, classifier = frame_model
    server = serve(folder)
    columns = [{"name": name, "shape": [3], "datatype": "FP64", "data": FRAME[name][::50].tolist()} for name in COLUMNS]
    response = requests.post(f"{server.url}/v2/models/iris/infer", json={"inputs": columns}, timeout=30)
    assert response.status_code == 200, response.text
    expected = classifier.predict(FRAME[::50]).tolist()
    assert response.json()["outputs"] == [{"name": "output-0", "shape": [3], "datatype": "INT64", "data": expected}]
    rows = {"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP64", "data": X[::50].ravel().tolist()}]}
    response = requests.post(f"{server.url}/v2/models/iris/infer", json=rows, timeout=30)
    assert response.json()["outputs"][0]["data"] == expected
    metadata = requests.get(f"{server.url}/v2/models/iris", timeout=30).json()
    assert [spec["name"] for spec in metadata["inputs"]] == COLUMNS
