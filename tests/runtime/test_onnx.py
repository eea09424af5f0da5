import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import requests
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from daneel.errors import InvalidInput, LoadError
from daneel.protocol.payload import Payload
from daneel.runtime import prepackaged
from daneel.runtime.onnx import ONNXComponent

X, Y = load_iris(return_X_y=True)
CLASSIFIER = LogisticRegression(max_iter=500).fit(X, Y)


def save(model: onnx.ModelProto, folder: Path) -> Path:
    folder.mkdir()
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    return folder


def iris(folder: Path, zipmap: bool = False) -> Path:
    """The iris classifier converted by skl2onnx: input X, outputs label and probabilities."""
    return save(to_onnx(CLASSIFIER, X[:1].astype(np.float32), options={"zipmap": zipmap}), folder)


def two_by_two(folder: Path, width: int = 2) -> Path:
    """A graph of inputs a (FP32) and b (INT64), outputs sum = a + b (FP32) and twice = b + b (INT64)."""
    nodes = [
        helper.make_node("Cast", ["b"], ["b_float"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["a", "b_float"], ["sum"]),
        helper.make_node("Add", ["b", "b"], ["twice"]),
    ]
    inputs = [
        helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", width]),
        helper.make_tensor_value_info("b", TensorProto.INT64, ["batch", width]),
    ]
    outputs = [
        helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", width]),
        helper.make_tensor_value_info("twice", TensorProto.INT64, ["batch", width]),
    ]
    graph = helper.make_graph(nodes, "two_by_two", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return save(model, folder)


def loaded(folder: Path, **parameters: Any) -> ONNXComponent:
    component = ONNXComponent("m", folder, parameters)
    asyncio.run(component.load())
    return component


def predict(component: ONNXComponent, data: Any) -> Payload:
    return asyncio.run(component.predict(Payload(data)))


def run(folder: Path, feeds: dict[str, np.ndarray]) -> list[Any]:
    """onnxruntime's own answer."""
    return list(ort.InferenceSession(folder / "model.onnx", providers=["CPUExecutionProvider"]).run(None, feeds))


A = np.array([[0.5, 1.5], [2.0, -1.0]], dtype=np.float32)
B = np.array([[1, 2], [3, 4]], dtype=np.int64)


def test_one_array_feeds_the_only_input_and_every_output_comes_back(tmp_path: Path) -> None:
    folder = iris(tmp_path / "m")
    assert prepackaged.recognise(folder) == "ONNX_SERVER"
    result = predict(loaded(folder), X[::10].astype(np.float32))
    label, probabilities = run(folder, {"X": X[::10].astype(np.float32)})
    assert list(result.data) == ["label", "probabilities"]
    np.testing.assert_array_equal(result.data["label"], label)
    np.testing.assert_allclose(result.data["probabilities"], probabilities)
    np.testing.assert_allclose(result.data["probabilities"], CLASSIFIER.predict_proba(X[::10]), rtol=1e-5, atol=1e-6)


def test_values_are_cast_to_the_declared_type(tmp_path: Path) -> None:
    folder = iris(tmp_path / "m")
    result = predict(loaded(folder), X[::10])
    assert result.data["probabilities"].dtype == np.float32
    np.testing.assert_allclose(result.data["probabilities"], run(folder, {"X": X[::10].astype(np.float32)})[1])


def test_named_inputs_are_matched_by_name(tmp_path: Path) -> None:
    folder = two_by_two(tmp_path / "m")
    result = predict(loaded(folder), {"b": B.astype(np.int32), "a": A.astype(np.float64)})
    assert result.names == ["sum", "twice"]
    np.testing.assert_array_equal(result.data["sum"], A + B)
    np.testing.assert_array_equal(result.data["twice"], 2 * B)
    assert result.data["twice"].dtype == np.int64
    [expected_sum, _] = run(folder, {"a": A, "b": B})
    np.testing.assert_array_equal(result.data["sum"], expected_sum)


def test_frame_columns_feed_inputs_of_one_column_by_name(tmp_path: Path) -> None:
    frame = pd.DataFrame({"b": [1, 2, 3], "a": [0.5, 1.5, 2.5]})
    result = predict(loaded(two_by_two(tmp_path / "m", width=1)), frame)
    np.testing.assert_array_equal(result.data["sum"], [[1.5], [3.5], [5.5]])


def test_a_frame_is_the_rows_of_a_graphs_only_input(tmp_path: Path) -> None:
    folder = iris(tmp_path / "m")
    result = predict(loaded(folder), pd.DataFrame(X[:2], columns=["a", "b", "c", "d"]))
    np.testing.assert_array_equal(result.data["label"], run(folder, {"X": X[:2].astype(np.float32)})[0])


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"a": A, "b": B, "c": B}, "c", "not an input of this model; its inputs are a, b"),
        ({"a": A}, "b", "is missing; the model's inputs are a, b"),
        (A, "inputs", "the model has inputs a, b; send each as a named input"),
        ({"a": A, "b": B.astype(np.float64)}, "b", "expected datatype INT64, got FP64, which does not convert to it"),
        ({"a": A[:1], "b": np.array([[2**63, 1]], dtype=np.uint64)}, "b", "expected datatype INT64, got UINT64"),
        ({"a": A, "b": B[0]}, "b", r"expected shape \[-1, 2\], got \[2\]"),
        ({"a": A[:, :1], "b": B}, "a", r"expected shape \[-1, 2\], got \[2, 1\]"),
        ({"a": "text", "b": B}, "a", "expected an array, got str"),
    ],
)
def test_inputs_unlike_the_graphs_are_bad_input_naming_the_input(
    tmp_path: Path, data: Any, field: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        predict(loaded(two_by_two(tmp_path / "m")), data)
    assert caught.value.field == field


def test_sizes_of_one_symbolic_dimension_must_agree(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="dimension 'batch' is 3, but 2 in input 'a'") as caught:
        predict(loaded(two_by_two(tmp_path / "m")), {"a": A, "b": np.ones((3, 2), dtype=np.int64)})
    assert caught.value.field == "b"


def test_the_outputs_parameter_picks_outputs(tmp_path: Path) -> None:
    folder = two_by_two(tmp_path / "m")
    result = predict(loaded(folder, outputs=["twice"]), {"a": A, "b": B})
    assert (result.output_name, result.names) == ("twice", [])
    np.testing.assert_array_equal(result.data, 2 * B)
    assert list(predict(loaded(folder, outputs="twice, sum"), {"a": A, "b": B}).data) == ["twice", "sum"]


def test_an_unknown_output_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="parameter outputs: diff not in the model; it has sum, twice"):
        loaded(two_by_two(tmp_path / "m"), outputs=["sum", "diff"])


def test_zipmap_outputs_become_rows_of_probabilities_named_by_class(tmp_path: Path) -> None:
    folder = iris(tmp_path / "m", zipmap=True)
    component = loaded(folder, outputs="output_probability")
    result = predict(component, X[::10])
    np.testing.assert_allclose(result.data, CLASSIFIER.predict_proba(X[::10]), rtol=1e-5, atol=1e-6)
    assert result.names == ["0", "1", "2"]
    assert component.metadata().v2()["outputs"] == [
        {"name": "output_probability", "datatype": "FP32", "shape": [-1, -1]}
    ]


def test_thread_counts_set_the_session_options(tmp_path: Path) -> None:
    component = loaded(iris(tmp_path / "m"), intra_op_threads=1, inter_op_threads="2")
    options = component.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 2)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"intra_op_threads": -1}, "parameter intra_op_threads: expected a non-negative integer"),
        ({"inter_op_threads": "many"}, "parameter inter_op_threads: expected a non-negative integer"),
        ({"outputs": 3}, "parameter outputs: expected a list of names or a comma-separated string"),
        ({"threads": 2}, r"unknown parameter\(s\) threads for ONNX_SERVER; expected intra_op_threads, inter_op"),
    ],
)
def test_bad_parameters_are_load_errors(tmp_path: Path, parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(LoadError, match=message):
        ONNXComponent("m", tmp_path, parameters)


def test_an_unavailable_provider_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"parameter providers: NoSuchExecutionProvider not available; .*CPUExecution"):
        loaded(iris(tmp_path / "m"), providers="NoSuchExecutionProvider")


def test_an_unreadable_model_file_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_text("not a graph")
    with pytest.raises(LoadError, match=r"model\.onnx: cannot be loaded by onnxruntime \(.*INVALID_PROTOBUF"):
        loaded(tmp_path)


def test_metadata_gives_the_graphs_names_datatypes_and_shapes(tmp_path: Path) -> None:
    assert loaded(two_by_two(tmp_path / "m")).metadata().v2() == {
        "name": "m",
        "versions": [],
        "platform": "onnx",
        "inputs": [
            {"name": "a", "datatype": "FP32", "shape": [-1, 2]},
            {"name": "b", "datatype": "INT64", "shape": [-1, 2]},
        ],
        "outputs": [
            {"name": "sum", "datatype": "FP32", "shape": [-1, 2]},
            {"name": "twice", "datatype": "INT64", "shape": [-1, 2]},
        ],
    }


def test_served_over_v2_with_two_inputs_and_two_outputs(tmp_path: Path, serve: Any) -> None:
    server = serve(two_by_two(tmp_path / "adder"))
    inputs = [
        {"name": "a", "shape": [2, 2], "datatype": "FP32", "data": A.ravel().tolist()},
        {"name": "b", "shape": [2, 2], "datatype": "INT64", "data": B.ravel().tolist()},
    ]
    response = requests.post(f"{server.url}/v2/models/adder/infer", json={"inputs": inputs}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"] == [
        {"name": "sum", "shape": [2, 2], "datatype": "FP32", "data": (A + B).ravel().tolist()},
        {"name": "twice", "shape": [2, 2], "datatype": "INT64", "data": (2 * B).ravel().tolist()},
    ]
    only = {"inputs": inputs, "outputs": [{"name": "twice"}]}
    response = requests.post(f"{server.url}/v2/models/adder/infer", json=only, timeout=30)
    assert [output["name"] for output in response.json()["outputs"]] == ["twice"]
    wrong = {"inputs": [{**inputs[0], "name": "c"}, inputs[1]]}
    response = requests.post(f"{server.url}/v2/models/adder/infer", json=wrong, timeout=30)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "c: not an input of this model; its inputs are a, b"},
    )
