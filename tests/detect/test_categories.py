"""chi2 drift detectors: category frequencies that change, and codes training never saw."""

from __future__ import annotations

import numpy as np
import pytest

from daneel.detect import fit
from daneel.detect.categories import Categories

P_TRAINING = [0.5, 0.3, 0.2]


def _codes(rng: np.random.Generator, rows: int, p: list[float], codes: tuple[float, ...] = (0, 1, 2)) -> np.ndarray:
    return rng.choice(np.array(codes, dtype=np.float64), size=rows, p=p)


@pytest.fixture(scope="module")
def training() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.column_stack([_codes(rng, 600, P_TRAINING), _codes(rng, 600, [0.9, 0.1], (10, 20))])


def test_windows_with_the_training_frequencies_do_not_drift(training: np.ndarray) -> None:
    fitted = fit("drift", "chi2", training, ["colour", "size"])
    assert fitted.tester is not None
    rng = np.random.default_rng(1)
    sizes = (10.0, 20.0)
    windows = [np.column_stack([_codes(rng, 100, P_TRAINING), _codes(rng, 100, [0.9, 0.1], sizes)]) for _ in range(20)]
    assert sum(fitted.tester.test(window).drift for window in windows) <= 1


def test_changed_frequencies_drift_and_name_the_feature(training: np.ndarray) -> None:
    fitted = fit("drift", "chi2", training, ["colour", "size"])
    assert fitted.tester is not None
    rng = np.random.default_rng(2)
    window = np.column_stack([_codes(rng, 100, [0.2, 0.3, 0.5]), _codes(rng, 100, [0.9, 0.1], (10, 20))])
    result = fitted.tester.test(window)
    assert result.drifted == ("colour",)
    assert result.level == pytest.approx(0.05 / 2)


def test_codes_training_never_saw_count_as_drift(training: np.ndarray) -> None:
    fitted = fit("drift", "chi2", training, ["colour", "size"])
    assert fitted.tester is not None
    rng = np.random.default_rng(3)
    colour = _codes(rng, 100, P_TRAINING)
    colour[:10] = 7.0
    result = fitted.tester.test(np.column_stack([colour, _codes(rng, 100, [0.9, 0.1], (10, 20))]))
    assert result.drifted == ("colour",)


def test_one_unseen_code_in_a_window_is_weak_evidence_not_an_error() -> None:
    categories = Categories.of(np.array([[0.0], [1.0]] * 50))
    window = np.array([[0.0], [1.0]] * 20 + [[5.0]])
    (p,) = categories.p_values(window)
    assert 0.0 < p < 1.0


def test_categories_survive_their_flat_arrays() -> None:
    categories = Categories.of(np.array([[0.0, 5.0], [1.0, 5.0], [1.0, 6.0], [3.0, 5.0]]))
    again = Categories.from_arrays(categories.arrays())
    assert [c.tolist() for c in again.codes] == [[0.0, 1.0, 3.0], [5.0, 6.0]]
    assert [c.tolist() for c in again.counts] == [[1.0, 2.0, 1.0], [3.0, 1.0]]
    assert Categories.from_arrays(Categories.of(np.empty((4, 0))).arrays()).codes == ()
