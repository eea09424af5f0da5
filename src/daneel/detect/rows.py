"""A request's input as the rows a detector scores: a 2-D float64 array, columns in the detector's order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from daneel.errors import InvalidInput
from daneel.protocol import v1, v2
from daneel.protocol.payload import Payload


def rows(payload: Payload, names: Sequence[str] | None, detector: str) -> np.ndarray:
    """The payload's rows, a copy the model cannot change; InvalidInput naming the field when it holds no numbers.

    Named columns (a DataFrame's, V2 inputs by name, Seldon's `names`) are put in the order the detector was
    fitted in when every one of its features is among them.
    """
    field = "inputs" if payload.form == "v2" else f"data.{payload.form}"
    try:
        array = np.array(_columns(payload, names), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(field, f"expected numbers for detector {detector!r}; {exc}") from None
    if array.ndim == 1:
        array = array.reshape(1, -1)
    elif array.ndim > 2:
        array = array.reshape(array.shape[0], -1)
    if array.ndim != 2:
        raise InvalidInput(field, f"expected rows of numbers for detector {detector!r}; got a single value")
    return array


def _columns(payload: Payload, names: Sequence[str] | None) -> Any:
    data = payload.data
    if isinstance(data, dict):
        if names and all(name in data for name in names):
            return np.column_stack([np.asarray(data[name]).reshape(-1) for name in names])
        if len(data) == 1:
            return next(iter(data.values()))
        raise ValueError(f"got several inputs ({', '.join(map(str, data))}) that do not name its features")
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):  # a pandas DataFrame
        if names and all(name in data.columns for name in names):
            data = data[list(names)]
        return data.to_numpy()
    if names and payload.names and all(name in payload.names for name in names):
        array = np.asarray(data)
        if array.ndim == 2 and array.shape[1] == len(payload.names):
            return array[:, [payload.names.index(name) for name in names]]
    return data


def check_width(array: np.ndarray, width: int, names: Sequence[str], payload: Payload, detector: str) -> None:
    """Rows of the number of features the detector was fitted on, or InvalidInput saying how many are expected."""
    if array.shape[1] == width:
        return
    field = "inputs" if payload.form == "v2" else f"data.{payload.form}"
    listed = f" ({', '.join(names)})" if names else ""
    raise InvalidInput(
        field, f"expected rows of {width} features{listed} for detector {detector!r}; got {array.shape[1]}"
    )


def decode_raw(message: Any) -> Payload:
    """A message a `*_raw` method takes, decoded only so that detectors can read it: V2 or Seldon."""
    if isinstance(message, dict) and "inputs" in message:
        return v2.to_payload(v2.decode_request(message))
    return v1.decode_message(message)
