"""Features: the training ranges and moments saved with every detector, and why a row is unusual."""

from __future__ import annotations

from typing import Any

import numpy as np

from daneel.detect import Features
from daneel.detect.features import shown


def test_a_value_above_the_range_is_named_with_the_range(iris_split: Any) -> None:
    features = Features.of(iris_split.train, iris_split.names)
    low, high = iris_split.train[:, 2].min(), iris_split.train[:, 2].max()
    row = np.array([5.8, 3.0, 19.0, 1.3])
    assert features.unusual(row) == [f"petal_length 19.0 is above the training range {shown(low)} to {shown(high)}"]


def test_every_feature_outside_its_range_is_named(iris_split: Any) -> None:
    features = Features.of(iris_split.train, iris_split.names)
    reasons = features.unusual(np.array([-1.0, 3.0, 19.0, 1.3]))
    assert [reason.split()[0] for reason in reasons] == ["sepal_length", "petal_length"]
    assert "below the training range" in reasons[0]


def test_a_row_in_range_names_its_feature_furthest_from_the_mean() -> None:
    X = np.array([[0.0, 10.0], [1.0, 10.0], [2.0, 10.0], [3.0, 20.0]])
    features = Features.of(X, ["a", "b"])
    # a: 3.0 is 1.34 std from 1.5; b: 12.0 is 0.5 std from 12.5
    assert features.unusual(np.array([3.0, 12.0])) == ["a 3.0 is 1.3 standard deviations from the training mean 1.5"]


def test_a_constant_feature_that_changes_is_out_of_range_and_scores_finitely() -> None:
    features = Features.of(np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]]), ["a", "b"])
    assert features.unusual(np.array([2.0, 6.0])) == ["b 6.0 is above the training range 5.0 to 5.0"]
    assert features.unusual(np.array([2.0, 5.0])) == ["a 2.0 is 0.0 standard deviations from the training mean 2.0"]
    far = features.outside(np.array([[2.0, 6.0]]))
    assert np.isfinite(far).all() and far[0] > 1e6


def test_a_missing_value_is_named() -> None:
    features = Features.of(np.array([[1.0], [2.0]]), ["a"])
    assert features.unusual(np.array([np.nan])) == ["a is not a number"]


def test_outside_is_zero_inside_the_range_and_grows_in_standard_deviations() -> None:
    features = Features.of(np.array([[0.0], [2.0]]), ["a"])  # std 1
    assert features.outside(np.array([[1.0], [2.0], [5.0], [-1.0]])).tolist() == [0.0, 0.0, 3.0, 1.0]


def test_numbers_are_shown_with_three_significant_digits_but_whole_parts_kept() -> None:
    assert [shown(v) for v in (19.0, 3.0567, 12345.6, 0.0012345, 0.0, -4.25)] == [
        "19.0",
        "3.06",
        "12346.0",
        "0.00123",
        "0.0",
        "-4.25",
    ]
