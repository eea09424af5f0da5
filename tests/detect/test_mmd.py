"""mmd drift detectors: one permutation-test p-value over all features."""

from __future__ import annotations

from typing import Any

import numpy as np

from daneel.detect import fit


def test_held_out_rows_do_not_drift(iris_split: Any) -> None:
    fitted = fit("drift", "mmd", iris_split.train, iris_split.names)
    assert fitted.tester is not None
    result = fitted.tester.test(iris_split.test)
    assert result.drifted == ()
    assert list(result.p_values) == ["all"]
    assert result.level == 0.05


def test_a_window_with_one_feature_shifted_drifts(iris_split: Any) -> None:
    fitted = fit("drift", "mmd", iris_split.train, iris_split.names)
    assert fitted.tester is not None
    window = iris_split.test.copy()
    window[:, 1] += 1.5 * iris_split.train[:, 1].std()
    result = fitted.tester.test(window)
    assert result.drifted == ("all",)
    assert result.p_values["all"] == 1 / 101  # no permutation came near the real split


def test_the_same_window_and_seed_give_the_same_p_value(iris_split: Any) -> None:
    first = fit("drift", "mmd", iris_split.train, iris_split.names, seed=5, permutations=50)
    second = fit("drift", "mmd", iris_split.train, iris_split.names, seed=5, permutations=50)
    assert first.tester is not None and second.tester is not None
    p = first.tester.test(iris_split.test).p_values
    assert p == first.tester.test(iris_split.test).p_values == second.tester.test(iris_split.test).p_values


def test_the_reference_is_subsampled_to_its_size(iris_split: Any) -> None:
    fitted = fit("drift", "mmd", iris_split.train, iris_split.names, reference_size=40)
    assert fitted.arrays["reference"].shape == (40, 4)
    rows = {tuple(row) for row in iris_split.train.tolist()}
    assert all(tuple(row) in rows for row in fitted.arrays["reference"].tolist())


def test_a_constant_reference_still_tests() -> None:
    X = np.column_stack([np.ones(50), np.arange(50.0)])
    fitted = fit("drift", "mmd", X, ["one", "n"], permutations=20)
    assert fitted.tester is not None
    assert fitted.tester.test(np.column_stack([np.full(30, 2.0), np.arange(30.0)])).drift
