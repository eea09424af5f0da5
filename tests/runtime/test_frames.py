from typing import Any

import numpy as np
import pandas as pd
import pytest

from daneel.errors import InvalidInput
from daneel.runtime import frames

COLUMNS = ["age", "city", "score"]


def test_a_dataframe_in_the_models_order_passes_as_it_is() -> None:
    frame = pd.DataFrame({"age": [1], "city": ["a"], "score": [0.5]})
    assert frames.frame(frame, [], COLUMNS, "input") is frame


def test_a_dataframe_in_another_order_is_reordered() -> None:
    frame = pd.DataFrame({"score": [0.5], "age": [1], "city": ["a"]})
    assert list(frames.frame(frame, [], COLUMNS, "input").columns) == COLUMNS


def test_rows_of_strings_turn_back_into_numbers_except_in_string_columns() -> None:
    rows = np.asarray([["7", 33, 2.5]])  # numpy turns every value into a string
    types = {"city": np.dtype(object)}
    frame = frames.frame(rows, ["city", "age", "score"], COLUMNS, "data", types)
    assert frame.to_dict("records") == [{"age": 33, "city": "7", "score": 2.5}]
    assert frame["age"].dtype.kind == "i" and frame["score"].dtype.kind == "f"


def test_a_column_of_unknown_type_stays_text_when_a_value_is_not_a_number() -> None:
    rows = np.asarray([[33, "a", "1"], [34, "b", "x"]])
    frame = frames.frame(rows, [], COLUMNS, "data")
    assert frame["city"].tolist() == ["a", "b"] and frame["score"].tolist() == ["1", "x"]


def test_text_in_a_column_known_to_hold_numbers_is_bad_input() -> None:
    with pytest.raises(InvalidInput, match=r"^data: column age: expected numbers \(Unable to parse string 'x'"):
        frames.frame(np.asarray([["x", "a", 1.0]]), [], COLUMNS, "data", {"age": np.dtype(np.int64)})


def test_numeric_rows_keep_their_dtype() -> None:
    frame = frames.frame(np.array([[1.0, 2.0]]), ["b", "a"], ["a", "b"], "data")
    assert frame.to_dict("records") == [{"a": 2.0, "b": 1.0}]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (["age", "city"], "missing column(s) score"),
        (["age", "city", "score", "town"], "unknown column(s) town"),
        (["age", "city", "score", "age"], "repeated column(s) age"),
        (["town", "age", "age"], "missing column(s) city, score; unknown column(s) town; repeated column(s) age"),
    ],
)
def test_names_other_than_the_models_are_named(given: list[str], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        frames.check_names(given, COLUMNS, "data")
    assert caught.value.message == f"data: {message}; the model was fitted on age, city, score"


def test_names_in_any_order_are_the_models() -> None:
    frames.check_names(["score", "age", "city"], COLUMNS, "data")


def test_v2_columns_may_be_of_shape_n_or_n_by_1() -> None:
    inputs = {"age": np.array([[1], [2]]), "city": np.array(["a", "b"], dtype=object), "score": np.array([0.5, 1.5])}
    frame = frames.frame(inputs, [], COLUMNS, "input")
    assert frame.to_dict("list") == {"age": [1, 2], "city": ["a", "b"], "score": [0.5, 1.5]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"age": np.zeros((1, 2)), "city": ["a"], "score": [1.0]},
            "input.age: expected a column of shape [n] or [n, 1]",
        ),
        ({"age": [[1]], "city": ["a"], "score": [1.0]}, "input.age: expected a list of values, one a row"),
        ("text", "input: expected rows or named columns, got str"),
        ([[1, "a", 2.0], [1, "a"]], "input: expected rows of equal length"),
    ],
)
def test_data_that_is_not_columns_or_rows_is_bad_input(data: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        frames.frame(data, [], COLUMNS, "input")
    assert caught.value.message.startswith(message)
