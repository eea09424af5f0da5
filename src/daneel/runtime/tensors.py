"""Input checks the prepackaged servers share: rows of features, named inputs, safe casts, shapes.

Each raises :class:`InvalidInput` naming the field, so that a framework never
sees data it would reject with a message of its own (or, worse, accept).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from daneel.errors import InvalidInput
from daneel.protocol.datatypes import from_numpy

_PD_HINT = "several V2 inputs are taken as columns with content_type 'pd'"


def rows(data: Any, features: int, field: str = "input") -> np.ndarray:
    """A numeric array of rows of `features` columns; a flat array is one row."""
    if isinstance(data, dict):
        raise InvalidInput(field, f"expected one array of rows, got {len(data)} named entries; {_PD_HINT}")
    if not isinstance(data, np.ndarray):
        raise InvalidInput(field, f"expected an array of rows, got {type(data).__name__}")
    if data.dtype.kind not in "biuf":
        raise InvalidInput(field, f"expected numbers, got datatype {datatype(data.dtype)}")
    array: np.ndarray = data.reshape(1, -1) if data.ndim == 1 else data
    if array.ndim != 2 or array.shape[1] != features:
        raise InvalidInput(field, f"expected rows of {features} features, got shape {list(array.shape)}")
    return array


def columns(frame: Any, names: Sequence[str], field: str = "input") -> Any:
    """The DataFrame's columns `names`, in that order; other columns are dropped."""
    missing = [name for name in names if name not in frame.columns]
    if missing:
        trained = ", ".join(names)
        raise InvalidInput(field, f"missing column(s) {', '.join(missing)}; the model was trained on {trained}")
    return frame[list(names)]


def named(data: Any, names: Sequence[str]) -> dict[str, Any]:
    """Inputs by name: a dict holding exactly `names`, or one value for a model with one input."""
    expected = ", ".join(names)
    if not isinstance(data, dict):
        if len(names) != 1:
            raise InvalidInput("inputs", f"the model has inputs {expected}; send each as a named input")
        return {names[0]: data}
    for name in data:
        if name not in names:
            raise InvalidInput(name, f"not an input of this model; its inputs are {expected}")
    for name in names:
        if name not in data:
            raise InvalidInput(name, f"is missing; the model's inputs are {expected}")
    return data


def cast(array: np.ndarray, dtype: np.dtype, field: str) -> np.ndarray:
    """`array` as `dtype` when no value changes kind: numbers to floats, integers to integers that hold them."""
    if array.dtype == dtype:
        return array
    kind = array.dtype.kind
    if dtype.kind in "OUS" and kind in "OUS":
        return array.astype(object) if dtype.kind == "O" else array
    if (dtype.kind == "f" and kind in "iuf") or (dtype.kind in "iu" and kind in "iu" and _fits(array, dtype)):
        return array.astype(dtype)
    got = datatype(array.dtype)
    raise InvalidInput(field, f"expected datatype {datatype(dtype)}, got {got}, which does not convert to it")


def _fits(array: np.ndarray, dtype: np.dtype) -> bool:
    if not array.size:
        return True
    info = np.iinfo(dtype)
    return bool(array.min() >= info.min and array.max() <= info.max)


def check_shape(array: np.ndarray, shape: Sequence[int] | None, field: str) -> np.ndarray:
    """`array` if it has the declared rank and every fixed dimension (-1 is any size)."""
    if shape is None:
        return array
    fits = array.ndim == len(shape) and all(want in (-1, got) for want, got in zip(shape, array.shape, strict=True))
    if not fits:
        raise InvalidInput(field, f"expected shape {list(shape)}, got {list(array.shape)}")
    return array


def datatype(dtype: np.dtype) -> str:
    """The V2 datatype of `dtype` for messages, or numpy's own name where V2 has none."""
    try:
        return from_numpy(dtype)
    except InvalidInput:
        return str(dtype)
