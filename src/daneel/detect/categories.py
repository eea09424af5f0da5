"""Categorical features: the codes seen in training, how often, and a chi-squared test of a window against them.

Categories are numbers (encoded before fitting). A window's counts are compared with the training frequencies
over the training categories plus one bin for every code training never saw. Every bin's training count is
smoothed by half a row (so the unseen bin, with no training rows, still expects a little): a window value that
training never saw then adds to the statistic as surprise, not as a division by zero, and many of them make a
small p-value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SMOOTHING = 0.5


@dataclass(frozen=True, slots=True, eq=False)
class Categories:
    """Per categorical column: the sorted training codes and their counts."""

    codes: tuple[np.ndarray, ...]
    counts: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, X: np.ndarray) -> Categories:
        """The categories of each column of `X` (training rows of the categorical columns only)."""
        found = [np.unique(X[:, j], return_counts=True) for j in range(X.shape[1])]
        return cls(tuple(codes for codes, _ in found), tuple(counts.astype(np.float64) for _, counts in found))

    def p_values(self, X: np.ndarray) -> list[float]:
        """The chi-squared p-value of each column of window `X` against the training frequencies."""
        from scipy import stats

        p_values = []
        for j, (codes, counts) in enumerate(zip(self.codes, self.counts, strict=True)):
            observed = _observed(X[:, j], codes)
            smoothed = np.append(counts, 0.0) + SMOOTHING
            expected = X.shape[0] * smoothed / smoothed.sum()
            statistic = float(((observed - expected) ** 2 / expected).sum())
            p_values.append(float(stats.chi2.sf(statistic, len(observed) - 1)))
        return p_values

    def arrays(self) -> dict[str, np.ndarray]:
        """Flat arrays for a detector folder: codes and counts one after another, and each column's count."""
        return {
            "category_codes": np.concatenate([np.empty(0), *self.codes]),
            "category_counts": np.concatenate([np.empty(0), *self.counts]),
            "category_sizes": np.array([len(codes) for codes in self.codes], dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Categories:
        sizes = arrays["category_sizes"]
        if len(sizes) == 0:
            return cls((), ())
        bounds = np.cumsum(sizes)[:-1]
        codes = np.split(arrays["category_codes"], bounds)
        return cls(tuple(codes), tuple(np.split(arrays["category_counts"], bounds)))


def _observed(column: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """How many values fall in each training category, then how many in none of them."""
    places = np.clip(np.searchsorted(codes, column), 0, len(codes) - 1)
    known = codes[places] == column
    counts = np.bincount(places[known], minlength=len(codes)).astype(np.float64)
    return np.append(counts, float(np.count_nonzero(~known)))
