"""What the training data looked like, per feature: saved with every detector, and used to say why a row is odd."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True, eq=False)
class Features:
    """Each feature's name, training range (`low` to `high`), mean and standard deviation."""

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray, names: Sequence[str]) -> Features:
        """The features of training rows `X` (2-D), columns named by `names`."""
        return cls(tuple(names), X.min(axis=0), X.max(axis=0), X.mean(axis=0), X.std(axis=0))

    @property
    def scale(self) -> np.ndarray:
        """The standard deviations, with a tiny positive stand-in where a feature was constant in training.

        A constant feature that changes is as unusual as a feature can be; dividing by a tiny scale says so with a
        large finite number, where zero would give infinities that metrics and JSON cannot carry.
        """
        tiny = np.finfo(np.float64).eps * np.maximum(1.0, np.abs(self.mean))
        return np.where(self.std > 0, self.std, tiny)

    def outside(self, X: np.ndarray) -> np.ndarray:
        """How far each row lies outside the training range, in standard deviations (0 inside it), per row."""
        beyond = np.maximum(self.low - X, 0.0) + np.maximum(X - self.high, 0.0)
        return np.asarray((beyond / self.scale).max(axis=1), dtype=np.float64)

    def unusual(self, row: np.ndarray) -> list[str]:
        """Why one row is unusual: every feature outside the training range, else the one furthest from the mean."""
        row = np.asarray(row, dtype=np.float64).reshape(-1)
        reasons = [self._out_of_range(i, float(value)) for i, value in enumerate(row.tolist())]
        found = [reason for reason in reasons if reason]
        return found if found else [self._furthest(row)]

    def _out_of_range(self, i: int, value: float) -> str:
        name, low, high = self.names[i], float(self.low[i]), float(self.high[i])
        if math.isnan(value):
            return f"{name} is not a number"
        if low <= value <= high:
            return ""
        side = "above" if value > high else "below"
        return f"{name} {shown(value)} is {side} the training range {shown(low)} to {shown(high)}"

    def _furthest(self, row: np.ndarray) -> str:
        z = np.where(self.std > 0, np.abs(row - self.mean) / self.scale, 0.0)
        i = int(np.argmax(z))
        return (
            f"{self.names[i]} {shown(float(row[i]))} is {z[i]:.1f} standard deviations"
            f" from the training mean {shown(float(self.mean[i]))}"
        )


def shown(value: float) -> str:
    """A number for people: three significant digits, but never fewer than its whole part (12346.0, 3.06, 19.0)."""
    value = float(value)  # a numpy float's repr names its type
    if value == 0 or not math.isfinite(value):
        return repr(value)
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return repr(round(value, digits))
