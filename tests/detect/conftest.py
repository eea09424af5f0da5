"""Iris, split once for the detector tests: detectors are fitted on `train` and meet `test` as live traffic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    test: np.ndarray
    names: tuple[str, ...] = NAMES


@pytest.fixture(scope="session")
def iris_split() -> Split:
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    X, y = load_iris(return_X_y=True)
    train, test = train_test_split(X, test_size=0.3, random_state=0, stratify=y)
    return Split(train, test)
