"""Outlier scorers: one score per row, higher meaning more unlike the training rows.

zscore and mahalanobis serve with numpy alone; isolation-forest needs scikit-learn, imported when one is fitted
or loaded.
"""

from __future__ import annotations

import warnings
from typing import Any, Protocol

import numpy as np

from daneel.detect.features import Features
from daneel.errors import InvalidInput


class OutlierScorer(Protocol):
    def score(self, X: np.ndarray) -> np.ndarray:
        """X: 2-D float64 (rows, features) → one float64 score per row, higher = more unusual."""
        ...


class ZScore:
    """The largest number of training standard deviations any of the row's features lies from its mean."""

    def __init__(self, features: Features) -> None:
        self.mean = features.mean
        self.scale = features.scale

    def score(self, X: np.ndarray) -> np.ndarray:
        return np.asarray((np.abs(X - self.mean) / self.scale).max(axis=1), dtype=np.float64)


class Mahalanobis:
    """The Mahalanobis distance from a robust (minimum covariance determinant) centre and covariance."""

    def __init__(self, location: np.ndarray, precision: np.ndarray) -> None:
        self.location = location
        self.precision = precision

    def score(self, X: np.ndarray) -> np.ndarray:
        centred = X - self.location
        squared = np.einsum("ij,jk,ik->i", centred, self.precision, centred)
        return np.asarray(np.sqrt(np.maximum(squared, 0.0)), dtype=np.float64)


class IsolationForestScorer:
    """scikit-learn's isolation forest score (`-score_samples`, 0 to 1), growing beyond the training range.

    Trees split only between the training minimum and maximum of a feature, so on their own they score a value
    of 19 as they score the training maximum of 6.9. Each row's distance outside the training range, in
    training standard deviations, is added: nothing for rows inside it, and a score that keeps growing outside.
    """

    def __init__(self, model: Any, features: Features) -> None:
        self.model = model
        self.features = features

    def score(self, X: np.ndarray) -> np.ndarray:
        isolated = -np.asarray(self.model.score_samples(X), dtype=np.float64)
        return np.asarray(isolated + self.features.outside(X), dtype=np.float64)


def train(method: str, X: np.ndarray, seed: int, trees: int) -> tuple[dict[str, np.ndarray], Any]:
    """What a scorer is rebuilt from: its arrays and, for isolation-forest, the fitted scikit-learn model."""
    if method == "mahalanobis":
        return _robust_covariance(X, seed), None
    if method == "isolation-forest":
        ensemble = _sklearn("sklearn.ensemble")
        return {}, ensemble.IsolationForest(n_estimators=trees, random_state=seed).fit(X)
    return {}, None


def scorer(method: str, features: Features, arrays: dict[str, np.ndarray], model: Any) -> OutlierScorer:
    """The scorer of `method` from what :func:`train` returned (or a detector folder held)."""
    if method == "mahalanobis":
        return Mahalanobis(arrays["location"], arrays["precision"])
    if method == "isolation-forest":
        return IsolationForestScorer(model, features)
    return ZScore(features)


def _robust_covariance(X: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    covariance = _sklearn("sklearn.covariance")
    if X.shape[0] <= X.shape[1]:
        raise InvalidInput("data", f"mahalanobis needs more rows than features; got {X.shape[0]} x {X.shape[1]}")
    with warnings.catch_warnings():
        # A singular covariance (a constant or duplicated feature) is fitted with a pseudo-inverse: that feature
        # then carries no weight, which the method's documentation says.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            fitted = covariance.MinCovDet(random_state=seed).fit(X)
        except ValueError as exc:
            raise InvalidInput("data", f"cannot fit a robust covariance: {exc}") from exc
    return {"location": np.asarray(fitted.location_), "precision": np.asarray(fitted.precision_)}


def _sklearn(module: str) -> Any:
    from daneel.runtime.prepackaged import needs

    return needs(module, "detectors")
