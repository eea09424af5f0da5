"""Maximum mean discrepancy: one test of a window against the reference sample over all features at once.

Rows are standardised with the training mean and standard deviation, compared through an RBF kernel whose
bandwidth is the median distance between reference rows, and the p-value comes from a permutation test: how
often shuffling which rows are "reference" and which "window" gives a discrepancy at least as large as the
real split. The permutations are drawn from `seed` afresh for every window, so a window always gets the same
p-value.
"""

from __future__ import annotations

import numpy as np

from daneel.detect.drift import DriftResult
from daneel.detect.features import Features


class MMDTest:
    def __init__(self, reference: np.ndarray, features: Features, alpha: float, permutations: int, seed: int) -> None:
        self.mean = features.mean
        self.scale = features.scale
        self.reference = (reference - self.mean) / self.scale
        self.bandwidth = _median_distance(self.reference)
        self.alpha = alpha
        self.permutations = permutations
        self.seed = seed

    def test(self, X: np.ndarray) -> DriftResult:
        pooled = np.vstack([self.reference, (X - self.mean) / self.scale])
        kernel = np.exp(-_squared_distances(pooled, pooled) / (2 * self.bandwidth**2))
        n = self.reference.shape[0]
        signs = np.concatenate([np.full(n, 1.0 / n), np.full(X.shape[0], -1.0 / X.shape[0])])
        rng = np.random.default_rng(self.seed)
        # Column 0 is the real split; each other column is one shuffle of it. s'Ks is the (biased) squared MMD.
        splits = np.column_stack([signs, *(rng.permutation(signs) for _ in range(self.permutations))])
        discrepancies = np.einsum("ip,ip->p", splits, kernel @ splits)
        # A shuffle that reproduces the real split sums in another order: it must still count as "as large".
        at_least = discrepancies[1:] >= discrepancies[0] * (1 - 1e-9)
        p = float((1 + np.count_nonzero(at_least)) / (1 + self.permutations))
        drifted = ("all",) if p <= self.alpha else ()
        return DriftResult({"all": p}, self.alpha, drifted, X.shape[0])


def _squared_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    squared = (A**2).sum(axis=1)[:, None] + (B**2).sum(axis=1)[None, :] - 2 * A @ B.T
    return np.asarray(np.maximum(squared, 0.0), dtype=np.float64)


def _median_distance(reference: np.ndarray) -> float:
    """The median distance between two different reference rows; 1 when they are all the same point."""
    upper = np.triu_indices(reference.shape[0], k=1)
    distances = np.sqrt(_squared_distances(reference, reference)[upper])
    median = float(np.median(distances)) if distances.size else 0.0
    return median if median > 0 else 1.0
