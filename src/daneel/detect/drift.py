"""Drift tests: does one window of live rows look drawn from the training data?

`ks` and `chi2` test each feature on its own (Kolmogorov-Smirnov for numbers, chi-squared for categories) and
correct for testing several at once; `mmd` (:mod:`daneel.detect.mmd`) tests all features together. scipy is
imported when a window is tested.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from daneel.detect.categories import Categories


@dataclass(frozen=True, slots=True)
class DriftResult:
    """One window's test: its p-values, the level they were compared with, and which of them drifted."""

    p_values: dict[str, float]  # per feature for ks and chi2; {"all": p} for mmd
    level: float  # the significance level each p-value was compared with, after correction
    drifted: tuple[str, ...]  # the keys of p_values found to drift (empty: no drift)
    rows: int  # rows in the window tested

    @property
    def drift(self) -> bool:
        return bool(self.drifted)


class DriftTester(Protocol):
    def test(self, X: np.ndarray) -> DriftResult:
        """X: one window, 2-D float64 (rows, features)."""
        ...


def corrected(p_values: Mapping[str, float], alpha: float, correction: str) -> tuple[float, tuple[str, ...]]:
    """The level each p-value is compared with, and the keys at or below it, after correcting for m tests.

    bonferroni: alpha / m. fdr (Benjamini-Hochberg): k·alpha / m for the largest k whose k-th smallest p-value
    is at most that; alpha / m when none is, which the smallest p-value then exceeds.
    """
    m = max(len(p_values), 1)
    level = alpha / m
    if correction == "fdr":
        ordered = sorted(p_values.values())
        passing = [k for k, p in enumerate(ordered, start=1) if p <= k * alpha / m]
        level = max(passing, default=1) * alpha / m
    return level, tuple(key for key, p in p_values.items() if p <= level)


class FeatureTests:
    """A test per feature: Kolmogorov-Smirnov against a reference sample, chi-squared for categorical columns."""

    def __init__(
        self,
        names: tuple[str, ...],
        reference: np.ndarray,
        categorical: tuple[int, ...],
        categories: Categories,
        alpha: float,
        correction: str,
    ) -> None:
        self.names = names
        self.reference = reference  # rows x every feature; only the continuous columns are read
        self.categorical = categorical
        self.categories = categories
        self.alpha = alpha
        self.correction = correction
        self.continuous = tuple(j for j in range(len(names)) if j not in categorical)

    def test(self, X: np.ndarray) -> DriftResult:
        from scipy import stats

        found = {j: float(stats.ks_2samp(self.reference[:, j], X[:, j]).pvalue) for j in self.continuous}
        if self.categorical:
            found.update(zip(self.categorical, self.categories.p_values(X[:, list(self.categorical)]), strict=True))
        p_values = {self.names[j]: found[j] for j in sorted(found)}
        level, drifted = corrected(p_values, self.alpha, self.correction)
        return DriftResult(p_values, level, drifted, X.shape[0])
