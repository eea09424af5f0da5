"""Detector folders: save then load gives the same detector; parameters override it; bad folders fail clearly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daneel.detect import fit, load, save
from daneel.detect.options import METHODS
from daneel.errors import LoadError


@pytest.mark.parametrize("method", METHODS["outlier"])
def test_an_outlier_detector_round_trips_with_identical_scores(method: str, iris_split: Any, tmp_path: Path) -> None:
    fitted = fit("outlier", method, iris_split.train, iris_split.names)
    save(fitted, tmp_path / "det")
    loaded = load(tmp_path / "det")
    assert loaded.scorer is not None and fitted.scorer is not None
    assert np.array_equal(loaded.scorer.score(iris_split.test), fitted.scorer.score(iris_split.test))
    assert (loaded.kind, loaded.method, loaded.threshold, loaded.window) == ("outlier", method, fitted.threshold, 0)
    assert loaded.features.names == iris_split.names
    assert loaded.settings == fitted.settings
    assert loaded.features.unusual(np.array([5.8, 3.0, 19.0, 1.3])) == fitted.features.unusual(
        np.array([5.8, 3.0, 19.0, 1.3])
    )


@pytest.mark.parametrize(("method", "options"), [("ks", {"categorical": "3"}), ("chi2", {}), ("mmd", {})])
def test_a_drift_detector_round_trips_with_identical_results(
    method: str, options: dict[str, Any], iris_split: Any, tmp_path: Path
) -> None:
    fitted = fit("drift", method, iris_split.train, iris_split.names, window=50, **options)
    save(fitted, tmp_path / "det")
    loaded = load(tmp_path / "det")
    assert loaded.tester is not None and fitted.tester is not None
    window = iris_split.test.copy()
    window[:, 0] += 0.5
    assert loaded.tester.test(window) == fitted.tester.test(window)
    assert (loaded.kind, loaded.method, loaded.threshold, loaded.window) == ("drift", method, 0.05, 50)


def test_only_isolation_forest_writes_a_model_file(iris_split: Any, tmp_path: Path) -> None:
    folder = tmp_path / "det"
    save(fit("outlier", "isolation-forest", iris_split.train, iris_split.names), folder)
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "detector.json", "model.joblib"]
    save(fit("outlier", "zscore", iris_split.train, iris_split.names), folder)
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "detector.json"]


def test_detector_json_says_what_the_detector_is(iris_split: Any, tmp_path: Path) -> None:
    save(fit("drift", "ks", iris_split.train, iris_split.names, correction="fdr"), tmp_path)
    spec = json.loads((tmp_path / "detector.json").read_text())
    assert spec["format"] == 1
    assert (spec["kind"], spec["method"], spec["threshold"], spec["window"]) == ("drift", "ks", 0.05, 100)
    assert spec["features"] == list(iris_split.names)
    assert spec["settings"] == {"categorical": [], "correction": "fdr", "reference_size": 500, "seed": 0}
    with np.load(tmp_path / "arrays.npz") as arrays:
        assert {"low", "high", "mean", "std", "reference"} <= set(arrays.files)


@pytest.mark.parametrize(
    ("kind", "method"), [("outlier", "isolation-forest"), ("outlier", "mahalanobis"), ("drift", "mmd")]
)
def test_the_same_data_and_seed_give_the_same_bytes(kind: str, method: str, iris_split: Any, tmp_path: Path) -> None:
    for name in ("a", "b"):
        save(fit(kind, method, iris_split.train, iris_split.names, seed=1), tmp_path / name)
    for file in (tmp_path / "a").iterdir():
        assert file.read_bytes() == (tmp_path / "b" / file.name).read_bytes(), file.name


def test_a_percentile_parameter_chooses_the_threshold_from_the_training_scores(iris_split: Any, tmp_path: Path) -> None:
    fitted = fit("outlier", "mahalanobis", iris_split.train, iris_split.names)
    save(fitted, tmp_path)
    assert fitted.scorer is not None
    loaded = load(tmp_path, {"percentile": 80})
    assert loaded.threshold == pytest.approx(np.percentile(fitted.scorer.score(iris_split.train), 80))
    assert loaded.threshold < fitted.threshold
    assert loaded.settings["percentile"] == 80


def test_a_threshold_parameter_replaces_the_threshold(iris_split: Any, tmp_path: Path) -> None:
    save(fit("outlier", "zscore", iris_split.train, iris_split.names), tmp_path)
    loaded = load(tmp_path, {"threshold": "4.5"})
    assert loaded.threshold == 4.5
    assert loaded.settings["percentile"] is None


def test_drift_parameters_change_the_test(iris_split: Any, tmp_path: Path) -> None:
    save(fit("drift", "ks", iris_split.train, iris_split.names), tmp_path)
    loaded = load(tmp_path, {"p_value": 0.01, "window": 30, "correction": "fdr"})
    assert loaded.tester is not None
    assert (loaded.threshold, loaded.window, loaded.settings["correction"]) == (0.01, 30, "fdr")
    assert loaded.tester.test(iris_split.test).level == pytest.approx(0.01 / 4)


def test_mmd_parameters_change_permutations_and_seed(iris_split: Any, tmp_path: Path) -> None:
    save(fit("drift", "mmd", iris_split.train, iris_split.names), tmp_path)
    loaded = load(tmp_path, {"permutations": 9, "seed": 4})
    assert loaded.tester is not None
    shifted = iris_split.test + 3.0
    assert loaded.tester.test(shifted).p_values == {"all": 0.1}  # 1 / (1 + 9): the smallest 9 permutations give


@pytest.mark.parametrize(
    ("method", "parameters", "message"),
    [
        ("zscore", {"p_value": 0.1}, "parameters.p_value: not a parameter of zscore detectors; expected one of"),
        ("zscore", {"percentile": 150}, "parameters.percentile: expected a percentile above 0 and at most 100"),
        ("zscore", {"threshold": "high"}, "parameters.threshold: expected a number; got 'high'"),
        ("zscore", {"threshold": 3, "percentile": 90}, "parameters.threshold: give a threshold or a percentile"),
        ("ks", {"window": 1}, "parameters.window: expected a whole number of rows, 2 or more; got 1"),
        ("ks", {"window": 2.5}, "parameters.window: expected a whole number of rows"),
        ("ks", {"correction": "holm"}, "parameters.correction: expected one of bonferroni, fdr; got 'holm'"),
        ("ks", {"seed": 1}, "parameters.seed: not a parameter of ks detectors"),
        ("mmd", {"correction": "fdr"}, "parameters.correction: not a parameter of mmd detectors"),
        ("mmd", {"permutations": True}, "parameters.permutations: expected a whole number of permutations"),
    ],
)
def test_a_bad_parameter_names_its_key(
    method: str, parameters: dict[str, Any], message: str, iris_split: Any, tmp_path: Path
) -> None:
    kind = "outlier" if method == "zscore" else "drift"
    save(fit(kind, method, iris_split.train, iris_split.names), tmp_path)
    with pytest.raises(LoadError) as caught:
        load(tmp_path, parameters)
    assert caught.value.message.startswith(message)
    assert "\n" not in caught.value.message


def test_a_folder_without_detector_json_is_not_a_detector(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"")
    with pytest.raises(LoadError, match=r"is not a detector folder: it has no detector.json"):
        load(tmp_path)


def test_an_unknown_format_is_refused(iris_split: Any, tmp_path: Path) -> None:
    save(fit("outlier", "zscore", iris_split.train, iris_split.names), tmp_path)
    spec = json.loads((tmp_path / "detector.json").read_text())
    (tmp_path / "detector.json").write_text(json.dumps({**spec, "format": 2}))
    with pytest.raises(LoadError, match=r"detector.json: format 2 is not one daneel .* reads \(it reads 1\)"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": "lof"}, r"detector.json: method: 'lof' is not an outlier method"),
        ({"kind": "novelty"}, r"detector.json: kind: expected one of outlier, drift"),
        ({"features": "a,b"}, r"expected a list of features"),
        ({"features": ["a", "b"]}, r"arrays.npz does not describe the 2 features detector.json lists"),
    ],
)
def test_a_damaged_detector_json_is_refused(
    change: dict[str, Any], message: str, iris_split: Any, tmp_path: Path
) -> None:
    save(fit("outlier", "zscore", iris_split.train, iris_split.names), tmp_path)
    spec = json.loads((tmp_path / "detector.json").read_text())
    (tmp_path / "detector.json").write_text(json.dumps({**spec, **change}))
    with pytest.raises(LoadError, match=message):
        load(tmp_path)


def test_an_isolation_forest_without_scikit_learn_says_what_to_install(iris_split: Any, tmp_path: Path) -> None:
    """scikit-learn is installed here, so a child process hides it (a None in sys.modules fails its import)."""
    save(fit("outlier", "isolation-forest", iris_split.train, iris_split.names), tmp_path)
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "from daneel.detect import load\n"
        "from daneel.errors import LoadError\n"
        f"try: load(__import__('pathlib').Path({str(tmp_path)!r}))\n"
        "except LoadError as exc: print(exc.message)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert "needs sklearn.ensemble" in done.stdout
    assert "pip install 'daneel[detectors]'" in done.stdout


def test_missing_or_broken_files_are_refused(iris_split: Any, tmp_path: Path) -> None:
    save(fit("outlier", "isolation-forest", iris_split.train, iris_split.names), tmp_path)
    (tmp_path / "model.joblib").write_bytes(b"not a pickle")
    with pytest.raises(LoadError, match=r"model.joblib: cannot load the isolation forest"):
        load(tmp_path)
    (tmp_path / "arrays.npz").unlink()
    with pytest.raises(LoadError, match=r"arrays.npz: cannot read the detector's arrays"):
        load(tmp_path)
    (tmp_path / "detector.json").write_text("{")
    with pytest.raises(LoadError, match=r"detector.json: cannot read it"):
        load(tmp_path)
