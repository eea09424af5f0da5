from typing import Any

import numpy as np
import pandas as pd
import pytest

from daneel.protocol.payload import Payload
from daneel.runtime.merging import answer, merge, rows_key, same_meta, split


@pytest.mark.parametrize(
    "data",
    [np.array([1.0, 2.0]), np.array(3.0), np.zeros((0, 2)), "text", b"bytes", {"a": 1}, [[1.0, 2.0]], {}],
    ids=["1-D", "scalar", "no rows", "str", "bytes", "json", "list", "empty dict"],
)
def test_what_cannot_merge_has_no_key(data: Any) -> None:
    assert rows_key(Payload(data)) is None


def test_keys_tell_apart_what_cannot_be_joined() -> None:
    def key(data: Any, names: list[str] | None = None, form: str = "ndarray") -> Any:
        found = rows_key(Payload(data, names or [], {}, form))
        assert found is not None
        return found[0]

    base = key(np.ones((1, 3)))
    assert key(np.zeros((5, 3))) == base
    assert base != key(np.ones((1, 4)))
    assert base != key(np.ones((1, 3), dtype=np.float32))
    assert base != key(np.ones((1, 3)), ["a", "b", "c"])
    assert base != key(np.ones((1, 3)), form="tensor")
    assert key({"a": np.ones(2), "b": np.ones((2, 3))}) == key({"a": np.zeros(7), "b": np.zeros((7, 3))})
    assert key({"a": np.ones(2)}) != key({"b": np.ones(2)})
    assert rows_key(Payload({"a": np.ones(2), "b": np.ones(3)})) is None  # rows disagree
    assert key(pd.DataFrame({"a": [1, 2]})) != key(pd.DataFrame({"a": [1.0, 2.0]}))


def test_rows_are_counted_along_the_first_axis() -> None:
    assert rows_key(Payload(np.ones((4, 2))))[1] == 4  # type: ignore[index]
    assert rows_key(Payload({"a": np.ones(3)}))[1] == 3  # type: ignore[index]
    assert rows_key(Payload(pd.DataFrame({"a": [1, 2]})))[1] == 2  # type: ignore[index]


def test_merge_joins_rows_in_order_and_keeps_the_first_requests_names_and_meta() -> None:
    merged = merge([Payload(np.array([[1, 2]]), ["x", "y"], {"puid": "a"}, "tensor"), Payload(np.array([[3, 4]]))])
    np.testing.assert_array_equal(merged.data, [[1, 2], [3, 4]])
    assert (merged.names, merged.meta, merged.form) == (["x", "y"], {"puid": "a"}, "tensor")
    frames = merge([Payload(pd.DataFrame({"a": [1]})), Payload(pd.DataFrame({"a": [2, 3]}))])
    assert frames.data["a"].tolist() == [1, 2, 3] and frames.data.index.tolist() == [0, 1, 2]


def test_split_needs_one_row_per_input_row() -> None:
    parts = split(np.arange(6).reshape(3, 2), [1, 2])
    assert parts is not None
    np.testing.assert_array_equal(parts[1], [[2, 3], [4, 5]])
    assert split(np.arange(4).reshape(2, 2), [1, 2]) is None
    assert split(np.float64(1.0), [1, 2]) is None
    assert split({"a": np.arange(3), "b": np.arange(2)}, [1, 2]) is None
    assert split("abc", [1, 2]) is None
    assert split([1, 2, 3], [2, 1]) == [[1, 2], [3]]


def test_meta_must_match_apart_from_puid() -> None:
    assert same_meta(Payload(1, [], {"puid": "a", "tags": {"t": 1}}), Payload(1, [], {"puid": "b", "tags": {"t": 1}}))
    assert not same_meta(Payload(1, [], {"puid": "a"}), Payload(1, [], {}))
    assert not same_meta(Payload(1, [], {"tags": {"t": 1}}), Payload(1, [], {"tags": {"t": 2}}))
    assert not same_meta(Payload(1, [], {"x": np.ones(2)}), Payload(1, [], {"x": np.ones(2)}))


def test_each_answer_keeps_its_own_puid() -> None:
    result = Payload(np.ones((2, 1)), ["p"], {"puid": "first", "tags": {"t": 1}}, "ndarray", "out")
    own = answer(result.data[1:], result, Payload(None, [], {"puid": "second"}))
    assert (own.meta, own.names, own.output_name) == ({"puid": "second", "tags": {"t": 1}}, ["p"], "out")
    assert answer(result.data[1:], result, Payload(None)).meta == {"tags": {"t": 1}}
