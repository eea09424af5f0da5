"""A pandas DataFrame of a model's named columns, from whichever form a request sent them in.

Seldon rows with `data.names` (or rows without names, in the model's own order), a `jsonData`
object of columns or list of row objects, V2 inputs named after the columns, or a DataFrame
(V2 `content_type: pd`) all become a DataFrame holding exactly the model's columns, in its order.
Names that are missing, unknown or repeated are an :class:`InvalidInput` naming them.

pandas is imported only once a frame is built: a model that needs frames checks for it as it
loads (:func:`daneel.runtime.prepackaged.needs`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from daneel.errors import InvalidInput
from daneel.protocol import codecs


def frame(
    data: Any, names: Sequence[str], columns: Sequence[str], field: str, types: Mapping[str, np.dtype] | None = None
) -> Any:
    """`data` as a DataFrame of exactly `columns`, in that order.

    `names` name the columns of rows (Seldon's `data.names`); rows without them are in `columns`' order.
    Rows arrive as one array, whose numbers turn into strings when some columns are strings:
    `types` says which columns are strings (dtype kind "O"), and the others turn back into numbers.
    """
    if codecs.is_dataframe(data):
        return _ordered(data, [str(column) for column in data.columns], columns, field)
    if isinstance(data, dict):
        return _from_columns(data, columns, field)
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        return _from_records(data, columns, field)
    return _from_rows(data, list(names) or list(columns), columns, field, types or {})


def check_names(given: Sequence[str], columns: Sequence[str], field: str) -> None:
    """`given` must be `columns`, in any order; the message names what is missing, unknown or repeated."""
    if list(given) == list(columns):
        return
    known, sent = set(columns), set(given)
    problems = [
        ("missing", [name for name in columns if name not in sent]),
        ("unknown", [name for name in given if name not in known]),
        ("repeated", [name for name, count in Counter(given).items() if count > 1]),
    ]
    found = [f"{what} column(s) {', '.join(map(str, names))}" for what, names in problems if names]
    if found:
        raise InvalidInput(field, f"{'; '.join(found)}; the model was fitted on {', '.join(columns)}")


def _ordered(data: Any, given: list[str], columns: Sequence[str], field: str) -> Any:
    check_names(given, columns, field)
    return data if given == list(columns) else data[list(columns)]


def _from_columns(data: dict[str, Any], columns: Sequence[str], field: str) -> Any:
    import pandas as pd

    check_names(list(data), columns, field)
    values = {name: _column(data[name], f"{field}.{name}") for name in columns}
    lengths = {len(value) for value in values.values()}
    if len(lengths) > 1:
        raise InvalidInput(field, f"columns differ in length ({', '.join(map(str, sorted(lengths)))} values)")
    return pd.DataFrame(values)


def _column(value: Any, field: str) -> Any:
    """One column's values; a value that is not a list is a column of one value."""
    if isinstance(value, np.ndarray):
        if value.ndim == 2 and value.shape[1] == 1:
            return value.reshape(-1)
        if value.ndim != 1:
            raise InvalidInput(field, f"expected a column of shape [n] or [n, 1], got shape {list(value.shape)}")
        return value
    if not isinstance(value, list):
        return [value]
    if any(isinstance(item, (list, dict)) for item in value):
        raise InvalidInput(field, "expected a list of values, one a row")
    return value


def _from_records(records: list[dict[str, Any]], columns: Sequence[str], field: str) -> Any:
    import pandas as pd

    for i, record in enumerate(records):
        check_names(list(record), columns, f"{field}[{i}]")
    return pd.DataFrame.from_records(records, columns=list(columns))


def _from_rows(data: Any, names: list[str], columns: Sequence[str], field: str, types: Mapping[str, np.dtype]) -> Any:
    import pandas as pd

    array = _rows(data, field)
    if array.ndim != 2 or array.shape[1] != len(names):
        described = f"{len(names)} columns ({', '.join(names)})"
        raise InvalidInput(field, f"expected rows of {described}, got shape {list(array.shape)}")
    check_names(names, columns, field)
    if names != list(columns):
        position = {name: i for i, name in enumerate(names)}
        array = array[:, [position[name] for name in columns]]
    if array.dtype.kind not in "OUS":
        return pd.DataFrame(array, columns=list(columns))
    return pd.DataFrame({name: _typed(array[:, i], name, types.get(name), field) for i, name in enumerate(columns)})


def _rows(data: Any, field: str) -> np.ndarray:
    if isinstance(data, list):
        try:
            data = np.asarray(data)
        except ValueError:
            raise InvalidInput(field, "expected rows of equal length") from None
    if not isinstance(data, np.ndarray):
        raise InvalidInput(field, f"expected rows or named columns, got {type(data).__name__}")
    return data.reshape(1, -1) if data.ndim == 1 else data


def _typed(values: np.ndarray, name: str, want: np.dtype | None, field: str) -> Any:
    """A column of rows that held strings: numbers again, unless `want` says it holds strings.

    Where `want` is not known, a column stays strings when one of its values is not a number.
    """
    import pandas as pd

    if want is not None and want.kind == "O":
        return values
    try:
        return pd.to_numeric(values)
    except (ValueError, TypeError) as exc:
        if want is None:
            return values
        raise InvalidInput(field, f"column {name}: expected numbers ({exc})") from None
