"""Training data from a file: `.csv`, `.npy` or `.parquet`, as a 2-D float64 array and its column names.

Every column must hold numbers; categories are encoded as numbers before fitting. Errors are InvalidInput with
the file as the field, saying what is wrong and where.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from daneel.errors import InvalidInput, LoadError

SUFFIXES = (".csv", ".npy", ".parquet")
#: Given a file's column names, those to read (in order); a reader converts only those to numbers.
Select = Callable[[list[str]], list[str]]
_ENCODE = "encode categories as numbers before fitting"


def read_data(
    path: Path, columns: Sequence[str] | None = None, drop: Sequence[str] = ()
) -> tuple[np.ndarray, list[str]]:
    """The rows of `path` and its column names; only `columns` (in that order) if given, never those in `drop`."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInput(str(path), f"expected a {', '.join(SUFFIXES)} file")

    def select(names: list[str]) -> list[str]:
        return _select(names, columns, drop, path)

    try:
        X, names = _READERS[suffix](path, select)
    except OSError as exc:
        raise InvalidInput(str(path), f"cannot read it: {exc.strerror or exc}") from None
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InvalidInput(str(path), f"holds no data ({X.shape[0]} rows x {X.shape[1]} columns)")
    _check_finite(X, names, path)
    return X, names


def _read_csv(path: Path, select: Select) -> tuple[np.ndarray, list[str]]:
    with path.open(newline="") as file:
        rows = [[cell.strip() for cell in row] for row in csv.reader(file) if row]
    if not rows:
        return np.empty((0, 0)), select([])
    header = not all(_is_number(cell) for cell in rows[0])
    names = rows[0] if header else [str(j) for j in range(len(rows[0]))]
    body = rows[1:] if header else rows
    for i, row in enumerate(body, start=1):
        if len(row) != len(names):
            raise InvalidInput(str(path), f"data row {i} has {len(row)} values; expected {len(names)}")
    cells = np.array(body, dtype=str).reshape(len(body), len(names))
    kept = select(names)
    numbers = [_numbers(cells[:, names.index(name)], name, path) for name in kept]
    return np.column_stack([np.empty(len(body)), *numbers])[:, 1:], kept


def _numbers(cells: np.ndarray, name: str, path: Path) -> np.ndarray:
    """A CSV column as numbers; an empty cell is missing (NaN), which the caller reports."""
    try:
        return np.where(cells == "", "nan", cells).astype(np.float64)
    except ValueError:
        bad = next(str(cell) for cell in cells if cell and not _is_number(str(cell)))
        raise InvalidInput(str(path), f"column {name!r} is not numeric (it holds {bad!r}); {_ENCODE}") from None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_npy(path: Path, select: Select) -> tuple[np.ndarray, list[str]]:
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise InvalidInput(str(path), f"cannot read it as a numpy array ({exc}); {_ENCODE}") from None
    if not isinstance(array, np.ndarray) or array.ndim not in (1, 2):
        raise InvalidInput(str(path), f"expected a 1-D or 2-D array; got shape {getattr(array, 'shape', '?')}")
    if array.dtype.kind not in "biuf":
        raise InvalidInput(str(path), f"expected numbers; the array holds {array.dtype}; {_ENCODE}")
    array = array.reshape(-1, 1) if array.ndim == 1 else array
    kept = select([str(j) for j in range(array.shape[1])])
    return array[:, [int(name) for name in kept]].astype(np.float64), kept


def _read_parquet(path: Path, select: Select) -> tuple[np.ndarray, list[str]]:
    try:
        import pandas as pd

        frame = pd.read_parquet(path)
    except ImportError as exc:
        raise LoadError(f"reading {path} needs pandas and pyarrow ({exc}): pip install pandas pyarrow") from None
    except (ValueError, TypeError) as exc:
        raise InvalidInput(str(path), f"cannot read it as parquet: {exc}") from None
    frame.columns = [str(name) for name in frame.columns]
    kept = select(list(frame.columns))
    frame = frame[kept]
    for name in kept:
        if frame[name].dtype.kind not in "biuf":
            raise InvalidInput(str(path), f"column {name!r} is not numeric ({frame[name].dtype}); {_ENCODE}")
    return frame.to_numpy(dtype=np.float64, na_value=np.nan).reshape(len(frame), len(kept)), kept


_READERS = {".csv": _read_csv, ".npy": _read_npy, ".parquet": _read_parquet}


def _select(names: list[str], columns: Sequence[str] | None, drop: Sequence[str], path: Path) -> list[str]:
    """The names of the columns to read, in order; InvalidInput for a name the file lacks or holds twice."""
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise InvalidInput(str(path), f"column {twice!r} appears more than once")
    for name in [*(columns or ()), *drop]:
        if name not in names:
            raise InvalidInput(str(path), f"has no column {name!r}; its columns are {', '.join(names)}")
    return [name for name in (columns if columns is not None else names) if name not in drop]


def _check_finite(X: np.ndarray, names: list[str], path: Path) -> None:
    bad = ~np.isfinite(X)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise InvalidInput(
            str(path), f"column {names[column]!r} has a missing, NaN or infinite value (data row {row + 1})"
        )
