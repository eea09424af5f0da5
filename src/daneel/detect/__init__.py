"""Outlier and drift detectors: fitted from training data, run on live traffic.

:func:`fit` makes a detector from training rows (:func:`read_data` reads them from a file), :func:`save` writes
it to a detector folder and :func:`load` reads one back, with a deployment's parameters applied. An outlier
detector's `scorer` scores rows; a drift detector's `tester` tests windows of rows. Importing this package
costs numpy only: scipy and scikit-learn are imported by the methods that need them.
"""

from daneel.detect.data import read_data
from daneel.detect.detectors import Fitted, fit
from daneel.detect.drift import DriftResult, DriftTester
from daneel.detect.features import Features
from daneel.detect.folders import load, save
from daneel.detect.outliers import OutlierScorer

__all__ = [
    "DriftResult",
    "DriftTester",
    "Features",
    "Fitted",
    "OutlierScorer",
    "fit",
    "load",
    "read_data",
    "save",
]
