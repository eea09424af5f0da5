"""daneel's own base class for Python components, for users who want type hints.

Subclassing is optional: any class with the same method names is served the same
way. Override only what your component does; methods left as they are here count
as not implemented (transforms then pass data through, as in Seldon).
"""

from __future__ import annotations

from typing import Any


class Model:
    """A model, transformer, router or combiner written in Python.

    Parameters from the deployment (or `--parameters`) arrive as keyword
    arguments of `__init__`; `load` runs once per process before serving.
    Every method may also be `async def`.
    """

    def __init__(self, **parameters: Any) -> None:
        self.parameters = parameters

    def load(self) -> None:
        """Read weights or open resources; runs off the event loop."""

    def predict(self, X: Any, names: list[str], meta: dict[str, Any]) -> Any:
        """Return predictions for `X` (numpy array, DataFrame, dict of arrays, str, bytes or JSON)."""
        raise NotImplementedError

    def transform_input(self, X: Any, names: list[str], meta: dict[str, Any]) -> Any:
        """Return `X` changed before it reaches the model."""
        raise NotImplementedError

    def transform_output(self, X: Any, names: list[str], meta: dict[str, Any]) -> Any:
        """Return the model's output `X` changed before it reaches the caller."""
        raise NotImplementedError

    def route(self, X: Any, names: list[str]) -> int:
        """Return the index of the child that should handle `X`."""
        raise NotImplementedError

    def aggregate(self, features_list: list[Any], feature_names_list: list[list[str]]) -> Any:
        """Combine the outputs of several children into one."""
        raise NotImplementedError

    def send_feedback(
        self, features: Any, feature_names: list[str], reward: float, truth: Any, routing: int | None = None
    ) -> Any:
        """Learn from a reward for an earlier request; the return value is optional."""
        raise NotImplementedError

    def tags(self) -> dict[str, Any]:
        """Tags merged into the response's `meta.tags`."""
        raise NotImplementedError

    def metrics(self) -> list[dict[str, Any]]:
        """Custom metrics: [{"type": "COUNTER"|"GAUGE"|"TIMER", "key", "value", "tags"?}]."""
        raise NotImplementedError

    def health_status(self) -> Any:
        """Raise if unhealthy; the return value is shown by /health/status."""
        raise NotImplementedError

    def init_metadata(self) -> dict[str, Any]:
        """Model metadata: name, versions, platform, inputs, outputs, custom."""
        raise NotImplementedError
