"""A fitted detector, and fitting one from training rows.

Fitting and loading build a detector the same way (:func:`assemble`): from its features, its settings and the
arrays its folder holds, so what is saved is all that serving needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from daneel.detect import outliers
from daneel.detect.categories import Categories
from daneel.detect.drift import DriftTester, FeatureTests
from daneel.detect.features import Features
from daneel.detect.mmd import MMDTest
from daneel.detect.options import DEFAULTS, FIT_OPTIONS, METHODS, check
from daneel.detect.outliers import OutlierScorer
from daneel.errors import InvalidInput

#: Options that are fields of :class:`Fitted` rather than settings.
_FIELDS = ("threshold", "p_value", "window")


@dataclass(slots=True, eq=False)
class Fitted:
    kind: str  # "outlier" | "drift"
    method: str  # outlier: "zscore" | "mahalanobis" | "isolation-forest"; drift: "ks" | "chi2" | "mmd"
    features: Features
    threshold: float  # outlier: a row whose score is above it is an outlier; drift: the p-value (before correction)
    window: int  # drift: rows per test (tumbling windows); outlier: 0
    scorer: OutlierScorer | None  # set for kind outlier
    tester: DriftTester | None  # set for kind drift
    settings: dict[str, Any]  # what was chosen at fit time (percentile, correction, categorical, permutations, seed...)
    #: What the detector folder's arrays.npz holds besides the features: training scores, reference sample, ...
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def fit(kind: str, method: str, X: np.ndarray, names: Sequence[str], **options: Any) -> Fitted:
    """Fit a `kind` detector by `method` on training rows `X` (2-D, columns named `names`).

    Options (each method takes some; see :data:`daneel.detect.options.FIT_OPTIONS`): percentile or threshold,
    trees, seed for outliers; p_value, window, correction, categorical, permutations, reference_size, seed for
    drift. InvalidInput names the option or the data that is wrong.
    """
    check_method(kind, method)
    X = _training_rows(X, names)
    chosen = _options(method, options)
    features = Features.of(X, names)
    if kind == "outlier":
        return _fit_outlier(method, X, features, chosen)
    return _fit_drift(method, X, features, chosen)


def check_method(kind: str, method: str) -> None:
    if kind not in METHODS:
        raise InvalidInput("kind", f"expected one of {', '.join(METHODS)}; got {kind!r}")
    if method not in METHODS[kind]:
        article = "an" if kind == "outlier" else "a"
        expected = ", ".join(METHODS[kind])
        raise InvalidInput("method", f"{method!r} is not {article} {kind} method; expected one of {expected}")


def assemble(
    kind: str,
    method: str,
    features: Features,
    threshold: float,
    window: int,
    settings: dict[str, Any],
    arrays: dict[str, np.ndarray],
    model: Any = None,
) -> Fitted:
    """The detector that `settings` and `arrays` describe; `model` is isolation-forest's scikit-learn model."""
    if kind == "outlier":
        scorer = outliers.scorer(method, features, arrays, model)
        return Fitted(kind, method, features, threshold, 0, scorer, None, settings, arrays)
    tester = _tester(method, features, threshold, settings, arrays)
    return Fitted(kind, method, features, threshold, window, None, tester, settings, arrays)


def percentile_threshold(scores: np.ndarray, percentile: float) -> float:
    return float(np.percentile(scores, percentile))


def _tester(
    method: str, features: Features, alpha: float, settings: dict[str, Any], arrays: dict[str, np.ndarray]
) -> DriftTester:
    if method == "mmd":
        return MMDTest(arrays["reference"], features, alpha, settings["permutations"], settings["seed"])
    names = features.names
    categorical = _categorical_columns(method, names, settings)
    reference = arrays.get("reference", np.empty((0, len(names))))
    categories = Categories.from_arrays(arrays)
    return FeatureTests(names, reference, categorical, categories, alpha, settings["correction"])


def _categorical_columns(method: str, names: tuple[str, ...], settings: dict[str, Any]) -> tuple[int, ...]:
    if method == "chi2":
        return tuple(range(len(names)))
    return tuple(names.index(name) for name in settings.get("categorical", ()))


def _fit_outlier(method: str, X: np.ndarray, features: Features, chosen: dict[str, Any]) -> Fitted:
    arrays, model = outliers.train(method, X, chosen["seed"], chosen.get("trees", DEFAULTS["trees"]))
    settings = {key: value for key, value in chosen.items() if key not in _FIELDS}
    fitted = assemble("outlier", method, features, 0.0, 0, settings, arrays, model)
    assert fitted.scorer is not None
    arrays["scores"] = fitted.scorer.score(X)
    given = chosen["threshold"]
    fitted.threshold = given if given is not None else percentile_threshold(arrays["scores"], chosen["percentile"])
    return fitted


def _fit_drift(method: str, X: np.ndarray, features: Features, chosen: dict[str, Any]) -> Fitted:
    settings = {key: value for key, value in chosen.items() if key not in _FIELDS}
    if method == "ks":
        settings["categorical"] = _categorical(settings["categorical"], features.names)
    categorical = _categorical_columns(method, features.names, settings)
    arrays = Categories.of(X[:, list(categorical)]).arrays()
    if method != "chi2":
        arrays["reference"] = _subsample(X, settings["reference_size"], settings["seed"])
    return assemble("drift", method, features, chosen["p_value"], chosen["window"], settings, arrays)


def _options(method: str, options: dict[str, Any]) -> dict[str, Any]:
    """Every option `method` takes, from `options` where given (checked) and from the defaults otherwise."""
    allowed = FIT_OPTIONS[method]
    for key in options:
        if key not in allowed:
            raise InvalidInput(key, f"not an option of the {method} method; expected one of {', '.join(allowed)}")
    chosen = {key: DEFAULTS.get(key) for key in allowed}
    for key, value in options.items():
        try:
            chosen[key] = check(key, value)
        except ValueError as exc:
            raise InvalidInput(key, str(exc)) from None
    if "threshold" in options and "percentile" in options:
        raise InvalidInput("threshold", "give a threshold or a percentile, not both")
    if "threshold" in options:
        chosen["percentile"] = None
    return chosen


def _categorical(columns: Sequence[str], names: tuple[str, ...]) -> list[str]:
    """Column names (in column order) from names or 0-based indices."""
    found = set()
    for column in columns:
        if column in names:
            found.add(names.index(column))
        elif column.isdigit() and int(column) < len(names):
            found.add(int(column))
        else:
            raise InvalidInput("categorical", f"no column {column!r}; the columns are {', '.join(names)}")
    return [names[j] for j in sorted(found)]


def _subsample(X: np.ndarray, size: int, seed: int) -> np.ndarray:
    if X.shape[0] <= size:
        return X.copy()
    rows = np.sort(np.random.default_rng(seed).choice(X.shape[0], size=size, replace=False))
    return X[rows]


def _training_rows(X: np.ndarray, names: Sequence[str]) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
        raise InvalidInput("data", f"expected 2 or more rows of 1 or more features; got shape {X.shape}")
    if len(names) != X.shape[1] or len(set(names)) != len(names):
        raise InvalidInput("names", f"expected {X.shape[1]} different column names; got {list(names)}")
    if not np.isfinite(X).all():
        raise InvalidInput("data", "expected finite numbers; the training rows hold NaN or infinity")
    return X
