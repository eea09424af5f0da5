from typing import Any

import numpy as np
import pandas as pd
import pytest

from daneel.errors import InvalidInput
from daneel.runtime import tensors


def test_rows_take_a_flat_array_as_one_row() -> None:
    assert tensors.rows(np.arange(3.0), 3).shape == (1, 3)
    rows = np.zeros((2, 3), dtype=np.int32)
    assert tensors.rows(rows, 3) is rows


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((2, 4)), r"expected rows of 3 features, got shape \[2, 4\]"),
        (np.zeros((2, 3, 1)), r"expected rows of 3 features, got shape \[2, 3, 1\]"),
        (np.array([["a", "b", "c"]], dtype=object), "expected numbers, got datatype BYTES"),
        ({"a": np.zeros(3)}, "expected one array of rows, got 1 named entries"),
        ([[1, 2, 3]], "expected an array of rows, got list"),
    ],
)
def test_rows_reject_all_else_naming_the_field(data: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        tensors.rows(data, 3, field="x")
    assert caught.value.field == "x"


def test_columns_are_picked_and_ordered_by_name() -> None:
    frame = pd.DataFrame({"b": [2], "extra": [0], "a": [1]})
    assert list(tensors.columns(frame, ["a", "b"]).columns) == ["a", "b"]
    with pytest.raises(InvalidInput, match="missing column\\(s\\) c; the model was trained on a, b, c"):
        tensors.columns(frame, ["a", "b", "c"])


def test_named_gives_a_lone_value_to_the_only_input() -> None:
    value = np.zeros(2)
    assert tensors.named(value, ["x"]) == {"x": value}
    assert tensors.named({"b": 1, "a": 2}, ["a", "b"]) == {"b": 1, "a": 2}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (np.zeros(2), "inputs", "the model has inputs a, b; send each as a named input"),
        ({"a": 1, "c": 2}, "c", "not an input of this model; its inputs are a, b"),
        ({"a": 1}, "b", "is missing; the model's inputs are a, b"),
    ],
)
def test_named_names_what_does_not_match(data: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        tensors.named(data, ["a", "b"])
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("values", "source", "target"),
    [
        ([1.5, -2.0], np.float64, np.float32),
        ([1, 2], np.int64, np.float64),
        ([1, 2], np.uint8, np.float32),
        ([1, 2**31 - 1], np.int64, np.int32),
        ([0, 2**63 - 1], np.uint64, np.int64),
        ([-5, 7], np.int8, np.int64),
    ],
)
def test_cast_converts_without_changing_a_value(values: list[Any], source: Any, target: Any) -> None:
    result = tensors.cast(np.array(values, dtype=source), np.dtype(target), "x")
    assert result.dtype == target
    assert result.tolist() == values


@pytest.mark.parametrize(
    ("array", "target", "message"),
    [
        (np.array([1.5]), np.int64, "expected datatype INT64, got FP64, which does not convert to it"),
        (np.array([2**31]), np.int32, "expected datatype INT32, got INT64"),
        (np.array([-1]), np.uint8, "expected datatype UINT8, got INT64"),
        (np.array([True]), np.float32, "expected datatype FP32, got BOOL"),
        (np.array([1]), np.bool_, "expected datatype BOOL, got INT64"),
        (np.array(["1"], dtype=object), np.float64, "expected datatype FP64, got BYTES"),
        (np.array([1.0]), np.dtype(object), "expected datatype BYTES, got FP64"),
    ],
)
def test_cast_refuses_what_would_change_values(array: np.ndarray, target: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        tensors.cast(array, np.dtype(target), "x")
    assert caught.value.field == "x"


def test_cast_keeps_text_as_text() -> None:
    assert tensors.cast(np.array(["a", "b"]), np.dtype(object), "x").dtype == object
    text = np.array(["a"], dtype=object)
    assert tensors.cast(text, np.dtype("<U0"), "x") is text


def test_check_shape_takes_minus_one_for_any_size() -> None:
    array = np.zeros((5, 2))
    assert tensors.check_shape(array, [-1, 2], "x") is array
    assert tensors.check_shape(array, None, "x") is array
    for shape in ([-1, 3], [-1], [5, 2, 1]):
        with pytest.raises(InvalidInput, match=r"x: expected shape \[.*\], got \[5, 2\]"):
            tensors.check_shape(array, shape, "x")
