"""Column names for a result, as Seldon names them."""

from __future__ import annotations

from typing import Any


def column_names(data: Any, class_names: list[str] | None) -> list[str]:
    """`class_names` for a 2-D result, else a DataFrame's columns; others have none.

    Unnamed columns are named `t:0..t:n-1` only where a Seldon response is written, so a wide
    tensor answered in V2 never builds a name per column.
    """
    columns = getattr(data, "columns", None)
    if class_names is None and columns is not None:
        return [str(column) for column in columns]
    if class_names is None or _width(data) is None:
        return []
    return list(class_names)


def _width(data: Any) -> int | None:
    shape = getattr(data, "shape", None)
    if shape is not None:
        return int(shape[1]) if len(shape) >= 2 else None
    if isinstance(data, list) and data and isinstance(data[0], list):
        return len(data[0])
    return None
