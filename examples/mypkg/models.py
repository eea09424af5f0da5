"""A component written against daneel's own base class, with type hints and an async predict.

Run from `examples/` so that `mypkg` is importable:

    cd examples && daneel serve mypkg.models:Scorer --parameters '{"weights": [0.5, -1.0, 2.0]}'
"""

from __future__ import annotations

from typing import Any

import numpy as np

from daneel import Model


class Scorer(Model):
    """A weighted sum of each row's features, and whether it clears `cutoff`."""

    def __init__(self, weights: list[float] | None = None, cutoff: float = 0.0, **parameters: Any) -> None:
        super().__init__(**parameters)
        self.weights = np.asarray(weights or [1.0, 1.0, 1.0], dtype=np.float64)
        self.cutoff = float(cutoff)

    async def predict(self, X: Any, names: list[str], meta: dict[str, Any]) -> dict[str, np.ndarray]:
        rows = np.atleast_2d(np.asarray(X, dtype=np.float64))
        score = rows @ self.weights
        return {"score": score, "passed": score > self.cutoff}

    def tags(self) -> dict[str, Any]:
        return {"cutoff": self.cutoff}
