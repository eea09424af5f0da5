"""Outlier detectors fitted on iris: held-out rows pass, rows far outside (or breaking correlations) do not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from daneel.detect import fit
from daneel.detect.options import METHODS

OUTLIER_METHODS = METHODS["outlier"]
FAR = np.array([[5.8, 3.0, 19.0, 1.3], [5.8, -20.0, 4.0, 1.3], [60.0, 30.0, 40.0, 20.0]])
#: Every feature inside its iris range, but petal length of a setosa with petal width of a virginica.
UNCORRELATED = np.array([[5.8, 3.0, 1.5, 2.3]])


@pytest.mark.parametrize("method", OUTLIER_METHODS)
def test_held_out_rows_are_mostly_not_flagged(method: str, iris_split: Any) -> None:
    fitted = fit("outlier", method, iris_split.train, iris_split.names)
    assert fitted.scorer is not None
    flagged = fitted.scorer.score(iris_split.test) > fitted.threshold
    assert flagged.mean() <= 0.05


@pytest.mark.parametrize("method", OUTLIER_METHODS)
def test_rows_far_outside_the_training_data_are_flagged(method: str, iris_split: Any) -> None:
    fitted = fit("outlier", method, iris_split.train, iris_split.names)
    assert fitted.scorer is not None
    assert (fitted.scorer.score(FAR) > fitted.threshold).all()


@pytest.mark.parametrize("method", OUTLIER_METHODS)
def test_the_threshold_is_the_percentile_of_training_scores(method: str, iris_split: Any) -> None:
    fitted = fit("outlier", method, iris_split.train, iris_split.names, percentile=90)
    assert fitted.scorer is not None
    training = fitted.scorer.score(iris_split.train)
    assert fitted.threshold == pytest.approx(np.percentile(training, 90))
    assert (training > fitted.threshold).mean() == pytest.approx(0.1, abs=0.02)
    assert fitted.settings["percentile"] == 90


def test_mahalanobis_flags_a_row_that_breaks_the_correlations_and_zscore_does_not(iris_split: Any) -> None:
    mahalanobis = fit("outlier", "mahalanobis", iris_split.train, iris_split.names)
    zscore = fit("outlier", "zscore", iris_split.train, iris_split.names)
    assert mahalanobis.scorer is not None and zscore.scorer is not None
    assert mahalanobis.scorer.score(UNCORRELATED)[0] > mahalanobis.threshold
    assert zscore.scorer.score(UNCORRELATED)[0] < zscore.threshold


def test_zscore_is_the_largest_standardised_distance() -> None:
    X = np.array([[0.0, 0.0], [2.0, 10.0]])  # means 1 and 5, stds 1 and 5
    fitted = fit("outlier", "zscore", X, ["a", "b"])
    assert fitted.scorer is not None
    assert fitted.scorer.score(np.array([[4.0, 5.0], [1.0, -5.0]])).tolist() == [3.0, 2.0]


def test_isolation_forest_scores_keep_growing_beyond_the_training_range(iris_split: Any) -> None:
    fitted = fit("outlier", "isolation-forest", iris_split.train, iris_split.names, trees=50)
    assert fitted.scorer is not None
    rows = np.array([[5.8, 3.0, petal, 1.3] for petal in (7.0, 10.0, 19.0)])
    scores = fitted.scorer.score(rows)
    assert scores[0] < scores[1] < scores[2]
    assert fitted.settings["trees"] == 50


@pytest.mark.parametrize("method", OUTLIER_METHODS)
def test_the_same_data_and_seed_give_the_same_scores(method: str, iris_split: Any) -> None:
    first = fit("outlier", method, iris_split.train, iris_split.names, seed=3)
    second = fit("outlier", method, iris_split.train, iris_split.names, seed=3)
    assert first.scorer is not None and second.scorer is not None
    assert np.array_equal(first.scorer.score(iris_split.test), second.scorer.score(iris_split.test))
    assert first.threshold == second.threshold


def test_a_given_threshold_is_kept() -> None:
    fitted = fit("outlier", "zscore", np.array([[0.0], [2.0]]), ["a"], threshold=5)
    assert fitted.threshold == 5.0
    assert fitted.settings["percentile"] is None
