"""A Seldon-style model in plain Python: no daneel import.

Serve it with `daneel serve examples/my_model`. It scores rows of four numbers
with a fixed logistic function and shows the optional parts of the contract:
a constructor parameter, `load`, `class_names`, `tags`, `metrics`,
`send_feedback`, `health_status` and `init_metadata`.
"""

import numpy as np


class MyModel:
    def __init__(self, bias: float = -2.0):
        self.bias = float(bias)
        self.class_names = ["negative", "positive"]
        self.weights = None
        self.rewards = 0.0

    def load(self):
        # Real models read their weights here; it runs once, before the first request.
        self.weights = np.array([0.4, -0.2, 0.3, 0.5])

    def predict(self, X, features_names):
        rows = np.atleast_2d(np.asarray(X, dtype=np.float64))
        score = 1.0 / (1.0 + np.exp(-(rows @ self.weights + self.bias)))
        return np.column_stack([1.0 - score, score])

    def tags(self):
        return {"bias": self.bias}

    def metrics(self):
        return [
            {"type": "COUNTER", "key": "mymodel_requests_total", "value": 1},
            {"type": "GAUGE", "key": "mymodel_reward_sum", "value": self.rewards},
        ]

    def send_feedback(self, features, feature_names, reward, truth, routing=None):
        self.rewards += reward

    def health_status(self):
        return {"rewards": self.rewards}

    def init_metadata(self):
        return {
            "versions": ["1"],
            "inputs": [{"name": "features", "datatype": "FP64", "shape": [-1, 4]}],
            "outputs": [{"name": "output-0", "datatype": "FP64", "shape": [-1, 2]}],
        }
