"""Reading training data: CSV with and without a header, .npy, .parquet, column choice, and bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from daneel.detect import read_data
from daneel.errors import InvalidInput


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_csv_with_a_header_names_its_columns(tmp_path: Path) -> None:
    X, names = read_data(_write(tmp_path / "t.csv", "a,b,label\n1,2.5,0\n3,-4e1,1\n"))
    assert names == ["a", "b", "label"]
    assert X.dtype == np.float64
    assert X.tolist() == [[1.0, 2.5, 0.0], [3.0, -40.0, 1.0]]


def test_a_csv_of_numbers_only_has_numbered_columns(tmp_path: Path) -> None:
    X, names = read_data(_write(tmp_path / "t.csv", "1,2\n3,4\n\n"))
    assert names == ["0", "1"]
    assert X.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_a_dropped_or_unselected_column_need_not_be_numeric(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", "a,species,b\n1,setosa,2\n3,virginica,4\n")
    assert read_data(path, drop=["species"])[1] == ["a", "b"]
    assert read_data(path, columns=["b"])[0].tolist() == [[2.0], [4.0]]


def test_columns_keep_those_in_order_and_drop_removes(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", "a,b,c\n1,2,3\n4,5,6\n")
    assert read_data(path, columns=["c", "a"]) == (pytest.approx(np.array([[3.0, 1.0], [6.0, 4.0]])), ["c", "a"])
    X, names = read_data(path, drop=["b"])
    assert (X.tolist(), names) == ([[1.0, 3.0], [4.0, 6.0]], ["a", "c"])


def test_a_npy_file_has_numbered_columns_and_a_1d_array_is_one_column(tmp_path: Path) -> None:
    np.save(tmp_path / "two.npy", np.arange(6, dtype=np.int32).reshape(3, 2))
    X, names = read_data(tmp_path / "two.npy")
    assert (X.tolist(), names, X.dtype) == ([[0, 1], [2, 3], [4, 5]], ["0", "1"], np.float64)
    np.save(tmp_path / "one.npy", np.array([1.0, 2.0, 3.0]))
    assert read_data(tmp_path / "one.npy") == (pytest.approx(np.array([[1.0], [2.0], [3.0]])), ["0"])
    assert read_data(tmp_path / "two.npy", columns=["1"])[0].tolist() == [[1.0], [3.0], [5.0]]


def test_a_parquet_file_names_its_columns(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow", reason="pyarrow is in the dev extra; parquet needs it")
    frame = pd.DataFrame({"x": [1.0, 2.0], "n": [3, 4], "flag": [True, False], "label": ["a", "b"]})
    frame.to_parquet(tmp_path / "t.parquet")
    X, names = read_data(tmp_path / "t.parquet", drop=["label"])
    assert (X.tolist(), names) == ([[1.0, 3.0, 1.0], [2.0, 4.0, 0.0]], ["x", "n", "flag"])
    with pytest.raises(InvalidInput, match=r"column 'label' is not numeric \(.*\); encode categories as numbers"):
        read_data(tmp_path / "t.parquet")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("t.csv", "a,species\n1,setosa\n2,virginica\n", r"column 'species' is not numeric \(it holds 'setosa'\)"),
        ("t.csv", "a,b\n1,2\n3\n", r"data row 2 has 1 values; expected 2"),
        ("t.csv", "a,b\n1,\n3,4\n", r"column 'b' has a missing, NaN or infinite value \(data row 1\)"),
        ("t.csv", "a,b\n1,nan\n", r"column 'b' has a missing, NaN or infinite value"),
        ("t.csv", "a,b\n", r"holds no data \(0 rows x 2 columns\)"),
        ("t.csv", "", r"holds no data"),
        ("t.csv", "a,a\n1,2\n", r"column 'a' appears more than once"),
        ("t.txt", "1,2\n", r"expected a .csv, .npy, .parquet file"),
        ("t.npy", "not numpy", r"cannot read it as a numpy array"),
    ],
)
def test_a_bad_file_is_an_error_naming_the_file(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = _write(tmp_path / name, text)
    with pytest.raises(InvalidInput, match=message) as caught:
        read_data(path)
    assert caught.value.field == str(path)


def test_an_unknown_column_lists_the_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", "a,b\n1,2\n")
    with pytest.raises(InvalidInput, match=r"has no column 'label'; its columns are a, b"):
        read_data(path, drop=["label"])
    with pytest.raises(InvalidInput, match=r"holds no data \(1 rows x 0 columns\)"):
        read_data(path, drop=["a", "b"])


def test_a_npy_of_strings_or_three_dimensions_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    with pytest.raises(InvalidInput, match=r"expected numbers; the array holds <U1; encode categories as numbers"):
        read_data(tmp_path / "s.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(InvalidInput, match=r"expected a 1-D or 2-D array; got shape \(2, 2, 2\)"):
        read_data(tmp_path / "cube.npy")


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"cannot read it: No such file"):
        read_data(tmp_path / "gone.csv")
