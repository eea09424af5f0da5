"""The input transformer of the deployment examples: multiplies every feature by `factor`.

A Seldon-style class with no daneel import. With `factor` 0.1, rows measured in
millimetres reach the iris classifier in centimetres, the unit it was trained on.
"""

import numpy as np


class Scaler:
    def __init__(self, factor: float = 1.0):
        self.factor = float(factor)

    def transform_input(self, X, features_names):
        return np.asarray(X, dtype=np.float64) * self.factor
