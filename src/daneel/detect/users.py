"""Your own detector: a class with `score(X)` and a `threshold`, named by `implementation: pkg.module:Class`.

The deployment's `parameters` are its constructor's keyword arguments; a `load()` method, if it has one, runs
once before serving (on a thread: it may read files). For an outlier detector `score(X)` takes a 2-D array of
rows and returns one score per row, higher meaning more unusual; a row scoring above `threshold` is an outlier.
For a drift detector `score(X)` takes one window of rows (`window` of them, 100 unless the class says) and
returns a p-value, or one per feature (a mapping or a sequence); the window has drifted when one is at or below
`threshold`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from daneel.detect import DriftResult
from daneel.errors import LoadError, ModelError, describe
from daneel.runtime.imports import import_class

DEFAULT_WINDOW = 100


class UserDetector:
    """A user's detector object behind the interface daneel's own detectors have."""

    def __init__(self, obj: Any, kind: str, name: str) -> None:
        self.obj = obj
        self.name = name
        self.threshold = _number(getattr(obj, "threshold", None), f"{name}: the class's threshold")
        window = getattr(obj, "window", DEFAULT_WINDOW) if kind == "drift" else 0
        if isinstance(window, bool) or not isinstance(window, int) or window < 0 or (kind == "drift" and window < 2):
            raise LoadError(f"{name}: the class's window must be a whole number of rows, 2 or more; got {window!r}")
        self.window = window

    def score(self, X: np.ndarray) -> np.ndarray:
        scores = np.asarray(self._call(X), dtype=np.float64).reshape(-1)
        if scores.shape[0] != X.shape[0]:
            raise ModelError(f"{self.name}: score returned {scores.shape[0]} scores for {X.shape[0]} rows")
        return scores

    def test(self, X: np.ndarray) -> DriftResult:
        p_values = _p_values(self._call(X), self.name)
        drifted = tuple(key for key, p in p_values.items() if p <= self.threshold)
        return DriftResult(p_values, self.threshold, drifted, X.shape[0])

    def _call(self, X: np.ndarray) -> Any:
        try:
            return self.obj.score(X)
        except Exception as exc:
            raise ModelError(f"{self.name}: score raised {describe(exc)}") from exc


def load_user(
    implementation: str, folder: Path | None, kind: str, name: str, parameters: Mapping[str, Any]
) -> UserDetector:
    cls = import_class(implementation, folder)
    if not callable(getattr(cls, "score", None)):
        raise LoadError(f"{name}: {implementation} has no score(X) method")
    try:
        obj = cls(**parameters)
        if callable(getattr(obj, "load", None)):
            obj.load()
    except Exception as exc:
        raise LoadError(f"{name}: {implementation} failed to start: {describe(exc)}") from exc
    return UserDetector(obj, kind, name)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise LoadError(f"{what} must be a number (set it in the class, or pass it as the threshold parameter)")
    return float(value)


def _p_values(value: Any, name: str) -> dict[str, float]:
    try:
        if isinstance(value, Mapping):
            return {str(key): float(p) for key, p in value.items()}
        array = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{name}: score returned {type(value).__name__}; expected p-values ({exc})") from None
    return {"all": float(array[0])} if array.shape[0] == 1 else {str(i): float(p) for i, p in enumerate(array)}
