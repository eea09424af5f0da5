import asyncio
import json
import mmap
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from tests.conftest import People

from daneel.errors import InvalidInput, LoadError
from daneel.protocol.payload import Payload
from daneel.runtime.sklearn import SKLearnComponent

Save = Callable[..., Path]
X, Y = load_iris(return_X_y=True)


def loaded(folder: Path, method: str | None = None) -> SKLearnComponent:
    component = SKLearnComponent("iris", folder, {"method": method} if method else None)
    asyncio.run(component.load())
    return component


def predict(component: SKLearnComponent, data: Any) -> Payload:
    return asyncio.run(component.predict(Payload(data)))


@pytest.fixture
def classifier() -> LogisticRegression:
    return LogisticRegression(max_iter=500).fit(X, Y)


def test_classifiers_answer_with_probabilities_by_default(model_folder: Save, classifier: Any) -> None:
    result = predict(loaded(model_folder(classifier)), X[:2])
    np.testing.assert_allclose(result.data, classifier.predict_proba(X[:2]))
    assert result.output_name == "predict_proba"
    assert result.names == []  # Seldon responses name them t:0.. (protocol.v1)


@pytest.mark.parametrize("file", ["model.joblib", "model.pkl"])
def test_predict_gives_the_classes(model_folder: Save, classifier: Any, file: str) -> None:
    result = predict(loaded(model_folder(classifier, file), "predict"), X[[0, 100]])
    assert result.data.tolist() == [0, 2]
    assert (result.output_name, result.names) == ("predict", [])


def test_regressors_predict_by_default(model_folder: Save) -> None:
    regressor = LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
    result = predict(loaded(model_folder(regressor)), np.array([[3.0]]))
    np.testing.assert_allclose(result.data, [7.0])


def test_transformers_transform(model_folder: Save) -> None:
    scaler = StandardScaler().fit([[0.0, 10.0], [2.0, 30.0]])
    result = predict(loaded(model_folder(scaler)), np.array([[1.0, 20.0], [2.0, 30.0]]))
    np.testing.assert_allclose(result.data, [[0.0, 0.0], [1.0, 1.0]])
    assert result.output_name == "transform"


def test_one_row_may_come_flat(model_folder: Save, classifier: Any) -> None:
    result = predict(loaded(model_folder(classifier), "predict"), X[100])
    assert result.data.tolist() == [2]


def test_dataframes_pass_to_the_estimator(model_folder: Save) -> None:
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0], "b": [1.0, 1.0, 1.0]})
    regressor = LinearRegression().fit(frame, [0.0, 2.0, 4.0])
    result = predict(loaded(model_folder(regressor)), frame.iloc[:1])
    np.testing.assert_allclose(result.data, [0.0], atol=1e-9)


@pytest.mark.parametrize("data", [np.zeros((1, 3)), np.zeros((1, 5)), np.zeros((1, 2, 4))])
def test_wrong_feature_count_is_bad_input(model_folder: Save, classifier: Any, data: Any) -> None:
    with pytest.raises(InvalidInput, match="expected rows of 4 features") as caught:
        predict(loaded(model_folder(classifier)), data)
    assert caught.value.field == "input"


@pytest.mark.parametrize("data", [{"a": np.zeros(4), "b": np.zeros(4)}, "text", [[1.0, 2.0, 3.0, 4.0]]])
def test_inputs_other_than_one_array_are_bad_input(model_folder: Save, classifier: Any, data: Any) -> None:
    with pytest.raises(InvalidInput):
        predict(loaded(model_folder(classifier)), data)


def test_several_named_inputs_are_bad_input_pointing_at_columns(model_folder: Save, classifier: Any) -> None:
    with pytest.raises(InvalidInput, match=r"expected one array of rows, got 2 named entries; .*'pd'"):
        predict(loaded(model_folder(classifier)), {"a": np.zeros(4), "b": np.zeros(4)})


def test_values_the_estimator_rejects_are_bad_input(model_folder: Save, classifier: Any) -> None:
    with pytest.raises(InvalidInput, match="numeric") as caught:
        predict(loaded(model_folder(classifier)), np.array([["a", "b", "c", "d"]]))
    assert caught.value.field == "input"


def test_columns_unlike_the_fitted_ones_are_bad_input(model_folder: Save) -> None:
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0], "b": [1.0, 1.0, 1.0]})
    regressor = LinearRegression().fit(frame, [0.0, 2.0, 4.0])
    with pytest.raises(
        InvalidInput, match=r"missing column\(s\) b; unknown column\(s\) c; the model was fitted on a, b"
    ):
        predict(loaded(model_folder(regressor)), pd.DataFrame({"a": [1.0], "c": [1.0]}))


# A pipeline fitted on a DataFrame of mixed columns (tests/conftest.py's `people`)

ROW = [33, "a", 2.2]
ROW_OBJECT = {"age": 33, "city": "a", "score": 2.2}


def people_predict(people: People, data: Any, names: list[str] | None = None, form: str = "ndarray") -> np.ndarray:
    component = SKLearnComponent("people", people.path)
    asyncio.run(component.load())
    result = asyncio.run(component.predict(Payload(data, names or [], {}, form)))
    assert isinstance(result.data, np.ndarray)
    return result.data


def expected(people: People, rows: list[list[Any]]) -> np.ndarray:
    frame = pd.DataFrame(rows, columns=["age", "city", "score"])
    return np.asarray(people.model.predict_proba(frame))


@pytest.mark.parametrize(
    ("names", "row"),
    [(["age", "city", "score"], ROW), (["score", "age", "city"], [2.2, 33, "a"]), ([], ROW)],
    ids=["in-order", "permuted", "unnamed"],
)
def test_mixed_rows_reach_a_dataframe_pipeline_as_a_dataframe(people: People, names: list[str], row: Any) -> None:
    rows = np.asarray([row, row])  # as Seldon's ndarray decodes them: every value a string
    np.testing.assert_allclose(people_predict(people, rows, names), expected(people, [ROW, ROW]))


def test_numeric_rows_reach_a_dataframe_pipeline_too(model_folder: Save) -> None:
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0], "b": [1.0, 2.0, 1.0]})
    regressor = LinearRegression().fit(frame, [0.0, 2.0, 4.0])
    component = loaded(model_folder(regressor))
    rows = np.array([[3.0, 1.0]])
    result = asyncio.run(component.predict(Payload(rows[:, ::-1], ["b", "a"])))
    np.testing.assert_allclose(result.data, regressor.predict(pd.DataFrame(rows, columns=["a", "b"])))


@pytest.mark.parametrize(
    "data",
    [
        {"age": [33], "city": ["a"], "score": [2.2]},
        {"score": 2.2, "city": "a", "age": 33},
        [ROW_OBJECT],
    ],
    ids=["columns", "one-row", "records"],
)
def test_json_columns_and_records_reach_it_as_a_dataframe(people: People, data: Any) -> None:
    np.testing.assert_allclose(people_predict(people, data, form="jsonData"), expected(people, [ROW]))


def test_v2_inputs_named_after_the_columns_reach_it_as_a_dataframe(people: People) -> None:
    inputs = {"city": np.array([["a"]], dtype=object), "age": np.array([33]), "score": np.array([2.2])}
    np.testing.assert_allclose(people_predict(people, inputs, ["city", "age", "score"], "v2"), expected(people, [ROW]))
    frame = people.frame[["score", "city", "age"]]
    np.testing.assert_allclose(people_predict(people, frame, form="v2"), people.model.predict_proba(people.frame))


FITTED = "; the model was fitted on age, city, score"


@pytest.mark.parametrize(
    ("data", "names", "form", "message"),
    [
        (
            np.asarray([ROW]),
            ["age", "town", "score"],
            "ndarray",
            f"data: missing column(s) city; unknown column(s) town{FITTED}",
        ),
        (
            np.asarray([ROW]),
            ["age", "age", "score"],
            "ndarray",
            f"data: missing column(s) city; repeated column(s) age{FITTED}",
        ),
        (np.asarray([ROW[:2]]), [], "ndarray", "data: expected rows of 3 columns (age, city, score), got shape [1, 2]"),
        ({"age": [33], "city": ["a"]}, [], "jsonData", f"jsonData: missing column(s) score{FITTED}"),
        ([ROW_OBJECT, {**ROW_OBJECT, "x": 1}], [], "jsonData", f"jsonData[1]: unknown column(s) x{FITTED}"),
        (
            {"age": [33, 34], "city": ["a"], "score": [2.2]},
            [],
            "jsonData",
            "jsonData: columns differ in length (1, 2 values)",
        ),
        (pd.DataFrame({"age": [33], "score": [2.2]}), [], "v2", f"input: missing column(s) city{FITTED}"),
    ],
)
def test_columns_that_do_not_match_are_bad_input_naming_them(
    people: People, data: Any, names: list[str], form: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        people_predict(people, data, names, form)
    assert caught.value.message == message


def test_text_in_a_column_of_numbers_is_bad_input_in_scikit_learns_words(people: People) -> None:
    with pytest.raises(InvalidInput, match="could not convert string to float: 'x'") as caught:
        people_predict(people, np.asarray([["x", "a", 2.2]]), ["age", "city", "score"])
    assert caught.value.field == "input"


def test_dataframe_pipeline_metadata_lists_its_columns(people: People) -> None:
    component = SKLearnComponent("people", people.path)
    asyncio.run(component.load())
    metadata = component.metadata().v2()
    assert metadata["inputs"] == [
        {"name": "age", "datatype": "FP64", "shape": [-1]},
        {"name": "city", "datatype": "BYTES", "shape": [-1]},
        {"name": "score", "datatype": "FP64", "shape": [-1]},
    ]
    assert metadata["parameters"] == {"content_type": "pd"}


@pytest.mark.parametrize("selected", [["city"], [1], slice(1, 2), [False, True, False]])
def test_an_encoded_columns_type_is_found_however_it_was_selected(model_folder: Save, selected: Any) -> None:
    frame = pd.DataFrame({"age": [33, 45, 23, 51], "city": ["a", "b", "a", "c"], "score": [2.2, 1.0, 3.5, 0.4]})
    encode = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder())
    columns = ColumnTransformer([("city", encode, selected)], remainder=StandardScaler())
    model = make_pipeline(columns, LogisticRegression()).fit(frame, [1, 0, 1, 0])
    inputs = loaded(model_folder(model)).metadata().v2()["inputs"]
    assert [(spec["name"], spec["datatype"]) for spec in inputs] == [
        ("age", "FP64"),
        ("city", "BYTES"),
        ("score", "FP64"),
    ]


def test_without_pandas_a_dataframe_model_fails_to_load_naming_the_extra(
    people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(LoadError, match=r"pip install 'daneel\[pandas\]'"):
        asyncio.run(SKLearnComponent("people", people.path).load())


# A process where pandas is not installed: importing it fails and sys.modules never holds it. (A None
# in sys.modules of this process is not that: scikit-learn before 1.5 reads it as pandas itself.)
WITHOUT_PANDAS = """
import asyncio, json, sys
from pathlib import Path

import numpy as np


class NoPandas:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pandas":
            raise ModuleNotFoundError("No module named 'pandas'", name="pandas")


sys.meta_path.insert(0, NoPandas())
from daneel.protocol.payload import Payload
from daneel.runtime.sklearn import SKLearnComponent

component = SKLearnComponent("iris", Path(sys.argv[1]))
asyncio.run(component.load())
print(json.dumps(asyncio.run(component.predict(Payload(np.array(json.loads(sys.argv[2]))))).data.tolist()))
"""


def test_without_pandas_other_models_still_serve(model_folder: Save, classifier: Any) -> None:
    folder = model_folder(classifier)
    rows = json.dumps(X[:2].tolist())
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PANDAS, str(folder), rows], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(json.loads(done.stdout), classifier.predict_proba(X[:2]))


def test_an_unknown_method_is_a_load_error_naming_method(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"parameter method: 'decision' is not one of predict_proba, predict"):
        SKLearnComponent("iris", tmp_path, {"method": "decision"})


def test_a_method_the_estimator_lacks_is_a_load_error_naming_method(model_folder: Save, classifier: Any) -> None:
    with pytest.raises(LoadError, match=r"parameter method: LogisticRegression has no 'transform'") as caught:
        loaded(model_folder(classifier), "transform")
    assert "predict_proba, predict" in caught.value.message


def test_a_missing_model_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"no model\.joblib or model\.pkl"):
        loaded(tmp_path)


def test_an_unreadable_model_file_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"not a model")
    with pytest.raises(LoadError, match="cannot be read"):
        loaded(tmp_path)


def test_classifier_metadata(model_folder: Save, classifier: Any) -> None:
    assert loaded(model_folder(classifier)).metadata().v2() == {
        "name": "iris",
        "versions": [],
        "platform": "sklearn",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [{"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}],
    }


@pytest.mark.parametrize(
    ("labels", "datatype"),
    [([0, 1, 1, 0], "INT64"), (["no", "yes", "yes", "no"], "BYTES"), ([False, True] * 2, "BOOL")],
)
def test_predicted_classes_have_the_labels_datatype(model_folder: Save, labels: list[Any], datatype: str) -> None:
    classifier = LogisticRegression().fit([[0.0], [1.0], [2.0], [-1.0]], labels)
    [output] = loaded(model_folder(classifier), "predict").metadata().v2()["outputs"]
    assert output == {"name": "predict", "datatype": datatype, "shape": [-1]}


@pytest.mark.parametrize(
    ("estimator", "output"),
    [
        (LinearRegression(), {"name": "predict", "datatype": "FP64", "shape": [-1]}),
        (StandardScaler(), {"name": "transform", "datatype": "FP64", "shape": [-1, -1]}),
    ],
)
def test_regressor_and_transformer_metadata(model_folder: Save, estimator: Any, output: dict[str, Any]) -> None:
    estimator.fit([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], [0.0, 1.0, 2.0])
    metadata = loaded(model_folder(estimator)).metadata().v2()
    assert metadata["inputs"][0]["shape"] == [-1, 2]
    assert metadata["outputs"] == [output]


def mapped(array: Any) -> bool:
    """Whether the array's memory is a mapping of a file: a numpy.memmap, or a view of one or of an mmap."""
    while array is not None:
        if isinstance(array, (np.memmap, mmap.mmap)):
            return True
        array = getattr(array, "base", None)
    return False


def test_an_uncompressed_joblib_file_is_memory_mapped_and_predicts_the_same(model_folder: Save) -> None:
    wide = np.random.default_rng(0).normal(size=(300, 400))
    classifier = LogisticRegression(max_iter=50).fit(wide, np.arange(300) % 3)
    component = loaded(model_folder(classifier))
    assert mapped(component.estimator.coef_)
    assert type(component.estimator.coef_) is np.ndarray  # a view of the mapping: no memmap cost per call
    np.testing.assert_array_equal(predict(component, wide).data, classifier.predict_proba(wide))


def test_a_mapped_pipeline_has_plain_arrays_in_every_step(model_folder: Save) -> None:
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(X, Y)
    component = loaded(model_folder(pipeline))
    scaler, model = (step for _, step in component.estimator.steps)
    assert type(scaler.mean_) is np.ndarray and mapped(scaler.mean_)
    assert type(model.coef_) is np.ndarray and mapped(model.coef_)
    np.testing.assert_array_equal(predict(component, X).data, pipeline.predict_proba(X))


def test_a_compressed_joblib_file_loads_unmapped_and_quietly(tmp_path: Path, classifier: Any) -> None:
    joblib.dump(classifier, tmp_path / "model.joblib", compress=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # joblib warns when asked to map a compressed file
        component = loaded(tmp_path)
    assert not mapped(component.estimator.coef_)
    np.testing.assert_array_equal(predict(component, X).data, classifier.predict_proba(X))


def test_a_mapped_estimator_that_writes_to_its_arrays_still_predicts(model_folder: Save) -> None:
    svc = SVC().fit(X, Y)  # libsvm takes its support vectors as writable buffers
    component = loaded(model_folder(svc))
    assert mapped(component.estimator.support_vectors_)
    assert predict(component, X).data.tolist() == svc.predict(X).tolist()


def test_writes_to_a_mapped_array_stay_in_the_process(model_folder: Save, classifier: Any) -> None:
    folder = model_folder(classifier)
    loaded(folder).estimator.coef_[0, 0] = 42.0
    assert loaded(folder).estimator.coef_[0, 0] == classifier.coef_[0, 0]
