"""SKLEARN_SERVER: a scikit-learn estimator saved as `model.joblib` or `model.pkl`.

Parameter `method` picks what is called: `predict_proba` (the default when the
estimator has it, as in Seldon), `predict` or `transform`. An estimator fitted on a
DataFrame (it has `feature_names_in_`) is called with a DataFrame of its columns,
however the request named them (see :mod:`daneel.runtime.frames`); it needs pandas.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from daneel.errors import InvalidInput, LoadError
from daneel.protocol import codecs
from daneel.protocol.datatypes import from_numpy
from daneel.protocol.payload import Payload
from daneel.runtime import frames, tensors
from daneel.runtime.component import Metadata, TensorSpec
from daneel.runtime.imports import off_loop
from daneel.runtime.invoke import Invoker
from daneel.runtime.names import column_names
from daneel.runtime.prepackaged import SavedModel, needs

METHODS = ("predict_proba", "predict", "transform")
#: Where in each wire form the columns of a request are, for error messages.
_FIELDS = {"ndarray": "data", "tensor": "data", "jsonData": "jsonData"}
_PD_HINT = "several V2 inputs are taken as columns with content_type 'pd'"
_NAMED_HINT = "columns are taken by name only by an estimator fitted on a DataFrame (with feature_names_in_)"


class SKLearnComponent(SavedModel):
    implementation = "SKLEARN_SERVER"
    PARAMETERS = ("method",)

    def configure(self) -> None:
        self.method: str | None = self.choice("method", METHODS, None)
        self.estimator: Any = None
        self._features: int | None = None  # columns the estimator was fitted on, where it says
        self._columns: list[str] = []  # their names, where it was fitted on a DataFrame
        self._types: dict[str, np.dtype] = {}  # the dtypes of those whose dtype it shows

    async def load(self) -> None:
        self.estimator = await off_loop(_read, self.model_file())
        self.method = self.method or _default_method(self.estimator)
        fn = getattr(self.estimator, self.method, None)
        if fn is None:
            available = [m for m in METHODS if hasattr(self.estimator, m)]
            raise LoadError(
                f"parameter method: {type(self.estimator).__name__} has no {self.method!r};"
                f" expected one of {', '.join(available)}"
            )
        self._features = getattr(self.estimator, "n_features_in_", None)
        names = getattr(self.estimator, "feature_names_in_", None)
        if names is not None:
            needs("pandas", "pandas")
            self._columns = [str(name) for name in names]
            self._types = _column_types(self.estimator, self._columns)
        self._call = Invoker(fn, self._policy, executor=self._executor)

    async def predict(self, payload: Payload) -> Payload:
        # scikit-learn validates its input with ValueError: a bad request, not a broken model.
        X = self._frame(payload) if self._columns else self._check(payload.data, payload.form)
        result = await self.call(X)
        return Payload(result, column_names(result, None), {}, output_name=self.method)

    def _frame(self, payload: Payload) -> Any:
        field = _FIELDS.get(payload.form, "input")
        return frames.frame(payload.data, payload.names, self._columns, field, self._types)

    def _check(self, X: Any, form: str) -> Any:
        if isinstance(X, np.ndarray):
            return self._rows(X)
        if isinstance(X, dict):
            hint = _NAMED_HINT if form == "jsonData" else _PD_HINT
            raise InvalidInput("input", f"expected one array of rows, got {len(X)} named entries; {hint}")
        if codecs.is_dataframe(X):
            return self._rows(X.to_numpy())
        raise InvalidInput("input", f"expected an array of rows, got {type(X).__name__}")

    def _rows(self, X: np.ndarray) -> np.ndarray:
        expected = self._features
        if expected is None:
            return X
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != expected:
            raise InvalidInput("input", f"expected rows of {expected} features, got shape {list(X.shape)}")
        return X

    def metadata(self) -> Metadata:
        outputs = [self._output_spec()]
        if self._columns:
            inputs = [TensorSpec(name, _datatype(self._types.get(name)), [-1]) for name in self._columns]
            return Metadata(self.name, "sklearn", [], inputs, outputs, {"content_type": "pd"})
        features = getattr(self.estimator, "n_features_in_", -1)
        return Metadata(self.name, "sklearn", [], [TensorSpec("input-0", "FP64", [-1, int(features)])], outputs)

    def _output_spec(self) -> TensorSpec:
        method = self.method or "predict"
        classes = getattr(self.estimator, "classes_", None)
        if method == "predict_proba" and classes is not None:
            return TensorSpec(method, "FP64", [-1, len(classes)])
        if method == "predict" and classes is not None:
            return TensorSpec(method, from_numpy(np.asarray(classes).dtype), [-1])
        if method == "transform":
            return TensorSpec(method, "FP64", [-1, -1])
        return TensorSpec(method, "FP64", [-1])


def _column_types(estimator: Any, columns: list[str]) -> dict[str, np.dtype]:
    """The dtypes of the columns that a fitted encoder shows (its categories'); others are not known.

    scikit-learn keeps no dtypes of the DataFrame it was fitted on. In a Pipeline, the first step
    that shows any is taken: an imputer before an encoder keeps its columns.
    """
    for step in [step for _, step in getattr(estimator, "steps", ())] or [estimator]:
        categories = getattr(step, "categories_", None)
        if categories is not None and len(categories) == len(columns):
            return {name: np.asarray(values).dtype for name, values in zip(columns, categories, strict=True)}
        types: dict[str, np.dtype] = {}
        for _, transformer, selected in getattr(step, "transformers_", ()):
            types.update(_column_types(transformer, _selected(selected, columns)))
        if types:
            return types
    return {}


def _selected(selected: Any, columns: list[str]) -> list[str]:
    """The names of the columns a ColumnTransformer gave one transformer: by name, position, slice or mask."""
    if isinstance(selected, str):
        return [selected]
    if isinstance(selected, (list, np.ndarray)) and all(isinstance(item, str) for item in selected):
        return [str(item) for item in selected]
    try:
        return [str(name) for name in np.atleast_1d(np.asarray(columns, dtype=object)[selected])]
    except (IndexError, TypeError, ValueError):
        return []


def _datatype(dtype: np.dtype | None) -> str:
    return "FP64" if dtype is None else tensors.datatype(dtype)


def _read(path: Path) -> Any:
    """The estimator; an uncompressed joblib file's arrays are memory-mapped, so --workers share their pages.

    Copy-on-write ("c"), not read-only: some estimators (SVC) need writable arrays, and a page
    written stays private to that process while the rest remain shared through the page cache.
    """
    joblib = needs("joblib", "sklearn")
    try:
        if path.suffix == ".pkl":
            with path.open("rb") as f:
                return pickle.load(f)
        if not _is_plain_pickle(path):
            return joblib.load(path)
        return _plain(joblib.load(path, mmap_mode="c"), set())
    except Exception as exc:
        raise LoadError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from exc


def _plain(value: Any, seen: set[int], depth: int = 0) -> Any:
    """`value` with every numpy.memmap in it (an estimator's attributes, a pipeline's steps) seen as a plain array.

    The view reads the same mapped pages, still shared by workers; but numpy treats a memmap as a subclass
    on every operation, which costs a LogisticRegression's predict_proba of one row 1 to 3 µs of its ~100.
    """
    if isinstance(value, np.memmap):
        return value.view(np.ndarray)
    if depth > 16 or id(value) in seen:
        return value
    seen.add(id(value))
    if isinstance(value, list):
        value[:] = [_plain(item, seen, depth + 1) for item in value]
    elif isinstance(value, tuple):
        return type(value)(_plain(item, seen, depth + 1) for item in value) if type(value) is tuple else value
    elif isinstance(value, dict):
        value.update((key, _plain(item, seen, depth + 1)) for key, item in value.items())
    elif hasattr(value, "get_params") and hasattr(value, "__dict__"):  # an estimator, not any object
        vars(value).update((key, _plain(item, seen, depth + 1)) for key, item in vars(value).items())
    return value


def _is_plain_pickle(path: Path) -> bool:
    """Whether the file starts as a pickle does (PROTO opcode) rather than as a compressed stream (zlib, gzip, lz4...).

    joblib ignores mmap_mode for compressed files only after warning about it; this spares the warning.
    """
    with path.open("rb") as f:
        return f.read(1) == b"\x80"


def _default_method(estimator: Any) -> str:
    for method in METHODS:
        if hasattr(estimator, method):
            return method
    raise LoadError(f"{type(estimator).__name__} has none of {', '.join(METHODS)}")
