"""Shapes are checked before anything is built from them, at a cost that their length cannot raise."""

from __future__ import annotations

from typing import Any

import pytest

from daneel.errors import InvalidInput
from daneel.protocol.shapes import MAX_COUNT, MAX_DIMS, element_count, flat_length


@pytest.mark.parametrize(
    ("shape", "count"),
    [([], 1), ([0], 0), ([3, 4], 12), ([1] * MAX_DIMS, 1), ([MAX_COUNT], MAX_COUNT), ([2**31, 2**31, 0], 0)],
)
def test_a_good_shape_gives_its_element_count(shape: list[int], count: int) -> None:
    assert element_count(shape, "s") == count


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (None, "s: expected a list of non-negative integers"),
        ("3", "s: expected a list of non-negative integers"),
        ([1] * (MAX_DIMS + 1), f"s: has {MAX_DIMS + 1} dimensions; at most {MAX_DIMS} are allowed"),
        ([2] * 1_000_000, f"s: has 1000000 dimensions; at most {MAX_DIMS} are allowed"),
        ([1, True], "s: dimension 1 must be a non-negative integer below 2**63, not true"),
        ([False], "s: dimension 0 must be a non-negative integer below 2**63, not false"),
        ([1.0], "s: dimension 0 must be a non-negative integer below 2**63, not 1.0"),
        ([-1], "s: dimension 0 must be a non-negative integer below 2**63, not -1"),
        ([MAX_COUNT + 1], "s: dimension 0 must be a non-negative integer below 2**63, not 9223372036854775808"),
        (["x" * 100], "s: dimension 0 must be a non-negative integer below 2**63, not '" + "x" * 36 + "..."),
        ([2**32, 2**32], "s: holds 18446744073709551616 elements, more than 2**63 - 1"),
    ],
)
def test_a_bad_shape_is_invalid_input_naming_the_field(shape: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        element_count(shape, "s")
    assert (caught.value.field, caught.value.message) == ("s", message)


@pytest.mark.parametrize(
    ("data", "length"),
    [(5, None), ([], 0), ([1, 2, 3], 3), ([[1, 2], [3, 4], [5, 6]], 6), ([[[1]], [[2]]], 2), ([[], []], 0)],
)
def test_the_flat_length_of_nested_lists_follows_their_first_items(data: Any, length: int | None) -> None:
    assert flat_length(data) == length


def test_lists_nested_deeper_than_any_shape_have_no_flat_length() -> None:
    data: Any = [1]
    for _ in range(MAX_DIMS + 1):
        data = [data]
    assert flat_length(data) is None
