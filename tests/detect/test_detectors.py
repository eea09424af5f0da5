"""fit: methods per kind, options per method, and what a fitted detector records."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from daneel.detect import fit
from daneel.errors import InvalidInput


@pytest.mark.parametrize(
    ("kind", "method", "message"),
    [
        (
            "outlier",
            "ks",
            r"method: 'ks' is not an outlier method; expected one of zscore, mahalanobis, isolation-forest",
        ),
        ("drift", "zscore", r"method: 'zscore' is not a drift method; expected one of ks, chi2, mmd"),
        ("novelty", "zscore", r"kind: expected one of outlier, drift; got 'novelty'"),
    ],
)
def test_a_method_of_another_kind_lists_the_valid_ones(kind: str, method: str, message: str, iris_split: Any) -> None:
    with pytest.raises(InvalidInput, match=message):
        fit(kind, method, iris_split.train, iris_split.names)


@pytest.mark.parametrize(
    ("kind", "method", "options", "message"),
    [
        ("outlier", "zscore", {"window": 10}, r"window: not an option of the zscore method; expected one of"),
        ("outlier", "zscore", {"trees": 10}, r"trees: not an option of the zscore method"),
        ("drift", "chi2", {"categorical": "a"}, r"categorical: not an option of the chi2 method"),
        ("outlier", "zscore", {"percentile": 0}, r"percentile: expected a percentile above 0 and at most 100; got 0"),
        ("outlier", "zscore", {"threshold": 1, "percentile": 90}, r"threshold: give a threshold or a percentile"),
        ("drift", "ks", {"p_value": 1.0}, r"p_value: expected a p-value between 0 and 1; got 1.0"),
        ("drift", "ks", {"categorical": "petal"}, r"categorical: no column 'petal'; the columns are sepal_length, "),
        ("drift", "ks", {"categorical": "4"}, r"categorical: no column '4'"),
        ("drift", "mmd", {"reference_size": 1}, r"reference_size: expected a whole number of rows, 2 or more"),
        ("drift", "mmd", {"seed": -1}, r"seed: expected a whole number, 0 or more; got -1"),
    ],
)
def test_a_bad_option_names_it(kind: str, method: str, options: dict[str, Any], message: str, iris_split: Any) -> None:
    with pytest.raises(InvalidInput, match=message):
        fit(kind, method, iris_split.train, iris_split.names, **options)


@pytest.mark.parametrize(
    ("X", "names", "message"),
    [
        (
            np.array([[1.0, 2.0]]),
            ["a", "b"],
            r"data: expected 2 or more rows of 1 or more features; got shape \(1, 2\)",
        ),
        (np.array([1.0, 2.0, 3.0]), ["a"], r"data: expected 2 or more rows"),
        (np.array([[1.0], [np.inf]]), ["a"], r"data: expected finite numbers"),
        (np.array([[1.0, 2.0], [3.0, 4.0]]), ["a"], r"names: expected 2 different column names; got \['a'\]"),
        (np.array([[1.0, 2.0], [3.0, 4.0]]), ["a", "a"], r"names: expected 2 different column names"),
    ],
)
def test_bad_training_rows_are_refused(X: np.ndarray, names: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        fit("outlier", "zscore", X, names)


def test_mahalanobis_needs_more_rows_than_features() -> None:
    with pytest.raises(InvalidInput, match=r"data: mahalanobis needs more rows than features; got 3 x 4"):
        fit("outlier", "mahalanobis", np.arange(12.0).reshape(3, 4), ["a", "b", "c", "d"])


def test_settings_record_what_was_chosen(iris_split: Any) -> None:
    outlier = fit("outlier", "isolation-forest", iris_split.train, iris_split.names)
    assert outlier.settings == {"percentile": 99.0, "seed": 0, "trees": 100}
    assert (outlier.kind, outlier.window, outlier.tester) == ("outlier", 0, None)
    drift = fit("drift", "mmd", iris_split.train, iris_split.names, permutations=20, window=40)
    assert drift.settings == {"permutations": 20, "reference_size": 500, "seed": 0}
    assert (drift.kind, drift.threshold, drift.window, drift.scorer) == ("drift", 0.05, 40, None)


def test_options_may_be_given_as_text(iris_split: Any) -> None:
    fitted = fit("drift", "ks", iris_split.train, iris_split.names, p_value="0.01", window="50")
    assert (fitted.threshold, fitted.window) == (0.01, 50)


def test_importing_the_package_costs_numpy_only() -> None:
    code = "import sys, daneel.detect; print(sorted(m for m in ('scipy', 'sklearn', 'pandas') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "[]"
