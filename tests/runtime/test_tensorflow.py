import asyncio
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow", reason="TENSORFLOW_SERVER needs tensorflow: pip install 'daneel[tensorflow]'")
keras = pytest.importorskip("keras", reason="the tests build their SavedModels with Keras")

from daneel.errors import InvalidInput, LoadError  # noqa: E402
from daneel.protocol.payload import Payload  # noqa: E402
from daneel.runtime import prepackaged  # noqa: E402
from daneel.runtime.tensorflow import TensorFlowComponent  # noqa: E402

from .served import check_graph_node, check_seldon, check_triton  # noqa: E402

X = np.random.default_rng(0).normal(size=(5, 4))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A Keras MLP of random weights (input `features`, softmax over 3), exported as a SavedModel."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), name="features")
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    folder = tmp_path_factory.mktemp("tf") / "mlp"
    model.export(str(folder), verbose=False)
    return folder, model


@pytest.fixture(scope="module")
def two_by_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tf.Module whose serving_default takes a (FP32) and b (INT64), and returns sum (FP32) and twice (INT64)."""

    class Adder(tf.Module):  # type: ignore[misc]
        @tf.function(
            input_signature=[tf.TensorSpec([None, 2], tf.float32, "a"), tf.TensorSpec([None, 2], tf.int64, "b")]
        )
        def serve(self, a: Any, b: Any) -> dict[str, Any]:
            return {"sum": a + tf.cast(b, tf.float32), "twice": b * 2}

    module = Adder()
    folder = tmp_path_factory.mktemp("tf") / "adder"
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve, "other": module.serve})
    return folder


def loaded(folder: Path, **parameters: Any) -> TensorFlowComponent:
    component = TensorFlowComponent("m", folder, parameters)
    asyncio.run(component.load())
    return component


def predict(component: TensorFlowComponent, data: Any) -> Payload:
    return asyncio.run(component.predict(Payload(data)))


def test_predictions_are_kerass_own(classifier: tuple[Path, Any]) -> None:
    folder, model = classifier
    assert prepackaged.recognise(folder) == "TENSORFLOW_SERVER"
    result = predict(loaded(folder), X)
    assert result.output_name == "output_0"
    np.testing.assert_allclose(result.data, model.predict(X.astype(np.float32), verbose=0), rtol=1e-5)


def test_the_serving_signature_is_the_metadata(two_by_two: Path) -> None:
    assert loaded(two_by_two).metadata().v2() == {
        "name": "m",
        "versions": [],
        "platform": "tensorflow",
        "inputs": [
            {"name": "a", "datatype": "FP32", "shape": [-1, 2]},
            {"name": "b", "datatype": "INT64", "shape": [-1, 2]},
        ],
        "outputs": [
            {"name": "sum", "datatype": "FP32", "shape": [-1, 2]},
            {"name": "twice", "datatype": "INT64", "shape": [-1, 2]},
        ],
        "parameters": {"signature": "serving_default"},
    }


def test_named_inputs_are_matched_by_name_and_cast(two_by_two: Path) -> None:
    a = np.array([[0.5, 1.5], [2.0, -1.0]])
    b = np.array([[1, 2], [3, 4]], dtype=np.int32)
    result = predict(loaded(two_by_two, signature="other"), {"b": b, "a": a})
    assert result.names == ["sum", "twice"]
    np.testing.assert_array_equal(result.data["sum"], a + b)
    np.testing.assert_array_equal(result.data["twice"], 2 * b)
    assert result.data["twice"].dtype == np.int64


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"a": np.ones((1, 2))}, "b", "is missing; the model's inputs are a, b"),
        ({"a": np.ones((1, 2)), "b": np.ones((1, 2))}, "b", "expected datatype INT64, got FP64"),
        ({"a": np.ones((1, 3)), "b": np.ones((1, 2), dtype=np.int64)}, "a", r"expected shape \[-1, 2\], got \[1, 3\]"),
    ],
)
def test_inputs_unlike_the_signature_are_bad_input(two_by_two: Path, data: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        predict(loaded(two_by_two), data)
    assert caught.value.field == field


def test_an_unknown_signature_is_a_load_error(two_by_two: Path) -> None:
    with pytest.raises(LoadError, match="parameter signature: predict is not in the SavedModel; it has"):
        loaded(two_by_two, signature="predict")


def test_an_unknown_parameter_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"unknown parameter\(s\) device for TENSORFLOW_SERVER; expected signature"):
        TensorFlowComponent("m", tmp_path, {"device": "cpu"})


def test_an_unreadable_folder_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"not a SavedModel")
    with pytest.raises(LoadError, match="cannot be loaded as a TensorFlow SavedModel"):
        loaded(tmp_path)


def test_served_to_triton_seldon_and_a_graph(
    classifier: tuple[Path, Any], two_by_two: Path, serve: Any, tmp_path: Path
) -> None:
    folder, model = classifier
    server = serve(folder)
    rows = X.astype(np.float32)
    expected = model.predict(rows, verbose=0)
    metadata = check_triton(server, "mlp", {"features": rows}, {"output_0": expected})
    assert metadata["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}]
    check_seldon(server, X, expected)
    check_graph_node(
        serve, tmp_path, "TENSORFLOW_SERVER", folder, X, lambda rows: model.predict(rows.astype(np.float32), verbose=0)
    )
    adder = serve(two_by_two)
    a, b = np.ones((2, 2), dtype=np.float32), np.array([[1, 2], [3, 4]], dtype=np.int64)
    check_triton(adder, "adder", {"a": a, "b": b}, {"sum": a + b, "twice": 2 * b})
    bad = requests.post(
        f"{adder.url}/v2/models/adder/infer",
        json={"inputs": [{"name": "a", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]},
        timeout=30,
    )
    assert (bad.status_code, bad.json()) == (
        400,
        {"error": "inputs: the model has inputs a, b; send each as a named input"},
    )
