"""`daneel detector fit`: real `daneel` processes fitting detectors on iris CSV files that `load` then reads."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from daneel.detect import load

Run = Callable[..., subprocess.CompletedProcess[str]]
NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Iris with a header and its label as a text column, as training data often comes."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    path = tmp_path_factory.mktemp("data") / "iris.csv"
    lines = [",".join([*NAMES, "species"])]
    lines += [",".join([*map(str, row), iris.target_names[t]]) for row, t in zip(iris.data, iris.target, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fit_writes_a_folder_that_load_reads(daneel_cli: Run, iris_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "outliers"
    done = daneel_cli(
        "detector", "fit", "--kind", "outlier", "--method", "mahalanobis", "--data", str(iris_csv),
        "--out", str(out), "--drop", "species",
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    fitted = load(out)
    assert (fitted.kind, fitted.method, fitted.features.names) == ("outlier", "mahalanobis", NAMES)
    assert done.stdout == (
        f"fitted an outlier detector (mahalanobis) on 150 rows x 4 features: threshold {_shown(fitted.threshold)}"
        f" (99th percentile of training scores); saved to {out}\n"
    )
    assert fitted.scorer is not None
    assert fitted.scorer.score(np.array([[5.8, 3.0, 19.0, 1.3]]))[0] > fitted.threshold


def test_fit_a_drift_detector_with_its_options(daneel_cli: Run, iris_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "drift"
    done = daneel_cli(
        "detector", "fit", "--kind", "drift", "--method", "ks", "--data", str(iris_csv), "--out", str(out),
        "--columns", "petal_length,sepal_width", "--p-value", "0.01", "--window", "50", "--correction", "fdr",
        "--categorical", "1",
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout == (
        "fitted a drift detector (ks) on 150 rows x 2 features: p-value 0.01 (fdr correction; chi-squared for"
        f" sepal_width), windows of 50 rows; saved to {out}\n"
    )
    fitted = load(out)
    assert (fitted.threshold, fitted.window, fitted.features.names) == (0.01, 50, ("petal_length", "sepal_width"))
    assert fitted.settings["categorical"] == ["sepal_width"]


def test_fit_replaces_a_detector_but_leaves_other_folders_alone(
    daneel_cli: Run, iris_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "det"
    common = ("detector", "fit", "--data", str(iris_csv), "--drop", "species", "--out", str(out))
    assert (
        daneel_cli(*common, "--kind", "outlier", "--method", "isolation-forest", "--threshold", "0.7").returncode == 0
    )
    done = daneel_cli(*common, "--kind", "drift", "--method", "mmd", "--permutations", "20")
    assert done.returncode == 0, done.stderr
    assert "p-value 0.05 (permutation test, 20 permutations), windows of 100 rows" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["arrays.npz", "detector.json"]
    other = tmp_path / "models"
    other.mkdir()
    (other / "model.joblib").write_bytes(b"")
    done = daneel_cli("detector", "fit", "--data", str(iris_csv), "--drop", "species", "--out", str(other),
                      "--kind", "outlier", "--method", "zscore")  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == f"Error: {other} holds files and is not a detector folder; choose another --out\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--kind", "outlier", "--method", "ks"),
            "--method: 'ks' is not an outlier method; expected one of zscore, mahalanobis, isolation-forest",
        ),
        (
            ("--kind", "drift", "--method", "ks", "--trees", "5"),
            "--trees does not apply to the ks method, which takes --p-value, --window, --seed, --correction,"
            " --categorical, --reference-size",
        ),
        (("--kind", "drift", "--method", "mmd", "--p-value", "5"), "--p-value: expected a p-value between 0 and 1"),
        (("--kind", "outlier", "--method", "zscore", "--drop", ""), "is not numeric (it holds 'setosa')"),
    ],
)
def test_errors_are_one_line_with_a_non_zero_exit(
    daneel_cli: Run, iris_csv: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    done = daneel_cli("detector", "fit", "--data", str(iris_csv), "--out", str(tmp_path / "det"), *args)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr
    assert not (tmp_path / "det").exists()


def _shown(value: float) -> str:
    from daneel.detect.features import shown

    return shown(value)
