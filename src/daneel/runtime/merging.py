"""How requests' rows are merged into one payload and a batch's result cut back into each request's share.

Two payloads merge when their :func:`rows_key` is equal and their meta is the same apart from
`puid` (:func:`same_meta`): joining their rows along the first axis and splitting the model's
answer by the same rows then gives each request what it would have got alone, for a model that
answers row by row.
"""

from __future__ import annotations

from collections.abc import Hashable
from itertools import accumulate
from typing import Any

import numpy as np

from daneel.protocol import codecs
from daneel.protocol.payload import Payload


def rows_key(payload: Payload) -> tuple[Hashable, int] | None:
    """What a payload must share with others to merge, and its rows; None when it cannot merge.

    A lone 1-D array is left alone: the prepackaged servers read it as one row, not as rows of scalars.
    """
    data, names = payload.data, tuple(payload.names)
    if isinstance(data, np.ndarray):
        if data.ndim < 2 or not data.shape[0]:
            return None
        return (payload.form, "array", data.dtype, data.shape[1:], names), data.shape[0]
    if isinstance(data, dict):
        return _dict_key(payload.form, data, names)
    if codecs.is_dataframe(data) and len(data):
        return (payload.form, "frame", tuple(data.columns), tuple(data.dtypes), names), len(data)
    return None


def _dict_key(form: str, data: dict[str, Any], names: tuple[str, ...]) -> tuple[Hashable, int] | None:
    arrays = [value for value in data.values() if isinstance(value, np.ndarray) and value.ndim >= 1]
    if not arrays or len(arrays) != len(data) or len({len(value) for value in arrays}) != 1 or not len(arrays[0]):
        return None
    specs = tuple((key, value.dtype, value.shape[1:]) for key, value in data.items())
    return (form, "dict", specs, names), len(arrays[0])


def merge(payloads: list[Payload]) -> Payload:
    """One payload of all the requests' rows, in order; names, meta and form are the first one's."""
    head = payloads[0]
    if isinstance(head.data, np.ndarray):
        data: Any = np.concatenate([payload.data for payload in payloads])
    elif isinstance(head.data, dict):
        data = {key: np.concatenate([payload.data[key] for payload in payloads]) for key in head.data}
    else:
        import pandas as pd  # a DataFrame arrived, so pandas is there

        data = pd.concat([payload.data for payload in payloads], ignore_index=True)
    return Payload(data, head.names, head.meta, head.form, head.output_name)


def split(data: Any, rows: list[int]) -> list[Any] | None:
    """`data` cut along its first axis into parts of `rows` rows; None when it does not have that many rows."""
    ends = list(accumulate(rows))
    return _split(data, list(zip([0, *ends[:-1]], ends, strict=True)), ends[-1])


def _split(data: Any, bounds: list[tuple[int, int]], total: int) -> list[Any] | None:
    if isinstance(data, np.ndarray):
        return [data[a:b] for a, b in bounds] if data.ndim >= 1 and len(data) == total else None
    if isinstance(data, (list, tuple)):
        return [data[a:b] for a, b in bounds] if len(data) == total else None
    if isinstance(data, dict):
        columns = {key: _split(value, bounds, total) for key, value in data.items()}
        if not columns or any(parts is None for parts in columns.values()):
            return None
        return [{key: parts[i] for key, parts in columns.items() if parts is not None} for i in range(len(bounds))]
    if codecs.is_dataframe(data) and len(data) == total:
        return [data.iloc[a:b].reset_index(drop=True) for a, b in bounds]
    return None


def answer(part: Any, result: Payload, request: Payload) -> Payload:
    """One request's share of a batch's result; a `puid` the model passed on is the request's own."""
    meta = dict(result.meta)
    if "puid" in meta:
        if "puid" in request.meta:
            meta["puid"] = request.meta["puid"]
        else:
            del meta["puid"]
    return Payload(part, list(result.names), meta, result.form, result.output_name)


def same_meta(a: Payload, b: Payload) -> bool:
    if a.meta.keys() != b.meta.keys():
        return False
    try:
        return all(a.meta[key] == b.meta[key] for key in a.meta if key != "puid")
    except ValueError:  # numpy arrays in meta compare element-wise
        return False
