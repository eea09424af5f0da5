"""What each detector method takes: options when it is fitted, parameters when it is loaded, each one checked.

A checker returns the value in its one form (a float, an int, a tuple of names) or raises ValueError with what
was expected; the caller names the option (`percentile`, or `parameters.percentile` at load).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

METHODS: dict[str, tuple[str, ...]] = {
    "outlier": ("zscore", "mahalanobis", "isolation-forest"),
    "drift": ("ks", "chi2", "mmd"),
}
CORRECTIONS = ("bonferroni", "fdr")

DEFAULTS: dict[str, Any] = {
    "percentile": 99.0,
    "p_value": 0.05,
    "window": 100,
    "correction": "bonferroni",
    "categorical": (),
    "permutations": 100,
    "reference_size": 500,
    "seed": 0,
    "trees": 100,
}

_OUTLIER_FIT = ("percentile", "threshold", "seed")
_DRIFT_FIT = ("p_value", "window", "seed")
#: The options `fit` takes, per method.
FIT_OPTIONS: dict[str, tuple[str, ...]] = {
    "zscore": _OUTLIER_FIT,
    "mahalanobis": _OUTLIER_FIT,
    "isolation-forest": (*_OUTLIER_FIT, "trees"),
    "ks": (*_DRIFT_FIT, "correction", "categorical", "reference_size"),
    "chi2": (*_DRIFT_FIT, "correction"),
    "mmd": (*_DRIFT_FIT, "permutations", "reference_size"),
}
#: The parameters `load` takes, per method: what can change without fitting again.
LOAD_OPTIONS: dict[str, tuple[str, ...]] = {
    "zscore": ("threshold", "percentile"),
    "mahalanobis": ("threshold", "percentile"),
    "isolation-forest": ("threshold", "percentile"),
    "ks": ("p_value", "window", "correction"),
    "chi2": ("p_value", "window", "correction"),
    "mmd": ("p_value", "window", "permutations", "seed"),
}


def check(name: str, value: Any) -> Any:
    """The option's value in its one form; ValueError saying what was expected."""
    return _CHECKERS[name](value)


def _number(value: Any, expected: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"expected {expected}; got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"expected {expected}; got {value!r}")
    return float(value)


def _between(low: float, high: float, expected: str, *, closed_high: bool = False) -> Callable[[Any], float]:
    def checked(value: Any) -> float:
        number = _number(value, expected)
        if not (low < number < high or (closed_high and number == high)):
            raise ValueError(f"expected {expected}; got {value!r}")
        return number

    return checked


def _whole(least: int, expected: str) -> Callable[[Any], int]:
    def checked(value: Any) -> int:
        number = _number(value, expected)
        if number != int(number) or number < least:
            raise ValueError(f"expected {expected}; got {value!r}")
        return int(number)

    return checked


def _correction(value: Any) -> str:
    if value not in CORRECTIONS:
        raise ValueError(f"expected one of {', '.join(CORRECTIONS)}; got {value!r}")
    return str(value)


def _columns(value: Any) -> tuple[str, ...]:
    """Column names or 0-based indices, as a comma-separated string or a list; kept as strings."""
    items: Sequence[Any] = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or any(isinstance(item, bool) for item in items):
        raise ValueError(f"expected column names or 0-based indices; got {value!r}")
    return tuple(str(item).strip() for item in items if str(item).strip())


_CHECKERS: dict[str, Callable[[Any], Any]] = {
    "percentile": _between(0, 100, "a percentile above 0 and at most 100", closed_high=True),
    "threshold": lambda value: _number(value, "a number"),
    "p_value": _between(0, 1, "a p-value between 0 and 1"),
    "window": _whole(2, "a whole number of rows, 2 or more"),
    "correction": _correction,
    "categorical": _columns,
    "permutations": _whole(1, "a whole number of permutations, 1 or more"),
    "reference_size": _whole(2, "a whole number of rows, 2 or more"),
    "seed": _whole(0, "a whole number, 0 or more"),
    "trees": _whole(1, "a whole number of trees, 1 or more"),
}
