"""Column names for a result, as Seldon names them."""

from __future__ import annotations

from typing import Any


def column_names(data: Any, class_names: list[str] | None) -> list[str]:
    """`class_names` for a 2-D result, else a DataFrame's columns or `t:0..t:n-1`; others have none."""
    columns = getattr(data, "columns", None)
    if class_names is None and columns is not None:
        return [str(column) for column in columns]
    width = _width(data)
    if width is None:
        return []
    if class_names is not None:
        return list(class_names)
    return [f"t:{i}" for i in range(width)]


def _width(data: Any) -> int | None:
    shape = getattr(data, "shape", None)
    if shape is not None:
        return int(shape[1]) if len(shape) >= 2 else None
    if isinstance(data, list) and data and isinstance(data[0], list):
        return len(data[0])
    return None
