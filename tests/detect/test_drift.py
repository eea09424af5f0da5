"""Per-feature drift tests (Kolmogorov-Smirnov) on iris windows, and the multiple-testing corrections."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from daneel.detect import DriftResult, fit
from daneel.detect.drift import corrected


def _shifted(X: np.ndarray, column: int, stds: float, reference: np.ndarray) -> np.ndarray:
    shifted = X.copy()
    shifted[:, column] += stds * reference[:, column].std()
    return shifted


def test_held_out_rows_do_not_drift(iris_split: Any) -> None:
    fitted = fit("drift", "ks", iris_split.train, iris_split.names)
    assert fitted.tester is not None
    result = fitted.tester.test(iris_split.test)
    assert result.drifted == () and not result.drift
    assert list(result.p_values) == list(iris_split.names)
    assert result.rows == len(iris_split.test)
    assert result.level == pytest.approx(0.05 / 4)


def test_windows_bootstrapped_from_the_training_data_rarely_drift(iris_split: Any) -> None:
    fitted = fit("drift", "ks", iris_split.train, iris_split.names)
    assert fitted.tester is not None
    rng = np.random.default_rng(7)
    windows = [iris_split.train[rng.integers(0, len(iris_split.train), 100)] for _ in range(20)]
    assert sum(fitted.tester.test(window).drift for window in windows) <= 1


@pytest.mark.parametrize("column", [0, 1, 2, 3])
def test_a_shifted_feature_drifts_and_is_named(column: int, iris_split: Any) -> None:
    fitted = fit("drift", "ks", iris_split.train, iris_split.names)
    assert fitted.tester is not None
    result = fitted.tester.test(_shifted(iris_split.test, column, 1.5, iris_split.train))
    assert result.drifted == (iris_split.names[column],)
    assert result.drift


def test_a_categorical_column_is_tested_by_chi_squared(iris_split: Any) -> None:
    rng = np.random.default_rng(0)
    train = np.column_stack([iris_split.train, rng.choice(3, len(iris_split.train), p=[0.6, 0.3, 0.1])])
    names = [*iris_split.names, "colour"]
    fitted = fit("drift", "ks", train, names, categorical="colour")
    assert fitted.tester is not None and fitted.settings["categorical"] == ["colour"]
    same = np.column_stack([iris_split.test, rng.choice(3, len(iris_split.test), p=[0.6, 0.3, 0.1])])
    assert fitted.tester.test(same).drifted == ()
    changed = np.column_stack([iris_split.test, rng.choice(3, len(iris_split.test), p=[0.1, 0.3, 0.6])])
    assert fitted.tester.test(changed).drifted == ("colour",)


def test_categorical_columns_may_be_given_by_index(iris_split: Any) -> None:
    fitted = fit("drift", "ks", iris_split.train, iris_split.names, categorical=["3", "petal_length"])
    assert fitted.settings["categorical"] == ["petal_length", "petal_width"]


def test_bonferroni_divides_the_level_by_the_number_of_tests() -> None:
    level, drifted = corrected({"a": 0.01, "b": 0.02, "c": 0.2, "d": 0.9}, 0.05, "bonferroni")
    assert level == pytest.approx(0.0125)
    assert drifted == ("a",)


def test_fdr_finds_more_than_bonferroni_where_several_features_move_a_little() -> None:
    p_values = {"a": 0.01, "b": 0.02, "c": 0.03, "d": 0.9}
    assert corrected(p_values, 0.05, "bonferroni")[1] == ("a",)
    level, drifted = corrected(p_values, 0.05, "fdr")
    assert level == pytest.approx(3 * 0.05 / 4)
    assert drifted == ("a", "b", "c")


def test_fdr_and_bonferroni_agree_when_nothing_is_close() -> None:
    p_values = {"a": 0.2, "b": 0.5}
    assert corrected(p_values, 0.05, "fdr") == corrected(p_values, 0.05, "bonferroni") == (0.025, ())


def test_fdr_finds_drift_that_bonferroni_misses_on_iris(iris_split: Any) -> None:
    """Sepal width shifted enough for both; sepal length only for BH (its p-value between alpha/4 and 2·alpha/4)."""
    bonferroni = fit("drift", "ks", iris_split.train, iris_split.names)
    fdr = fit("drift", "ks", iris_split.train, iris_split.names, correction="fdr")
    assert bonferroni.tester is not None and fdr.tester is not None
    window = _shifted(_shifted(iris_split.test, 0, 0.6, iris_split.train), 1, 0.4, iris_split.train)
    loose, strict = fdr.tester.test(window), bonferroni.tester.test(window)
    assert 0.05 / 4 < loose.p_values["sepal_length"] <= 2 * 0.05 / 4
    assert loose.drifted == ("sepal_length", "sepal_width")
    assert strict.drifted == ("sepal_width",)
    assert loose.p_values == strict.p_values


def test_a_result_drifts_when_any_key_drifted() -> None:
    assert DriftResult({"all": 0.01}, 0.05, ("all",), 10).drift
    assert not DriftResult({"all": 0.5}, 0.05, (), 10).drift
