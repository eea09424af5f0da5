"""The one interface every graph node implements.

Adapters build a :class:`Component` from a user's class (Seldon's duck-typed
contract or daneel's :class:`daneel.Model`) or from a prepackaged server. The
data plane, and later the graph executor, only ever talk to this interface.
"""

from __future__ import annotations

import enum
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from daneel.errors import NotImplementedByModel
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback
from daneel.runtime.generation import Generator


class Kind(enum.Enum):
    """Seldon's predictive unit types."""

    MODEL = "MODEL"
    TRANSFORMER = "TRANSFORMER"
    OUTPUT_TRANSFORMER = "OUTPUT_TRANSFORMER"
    ROUTER = "ROUTER"
    COMBINER = "COMBINER"


#: The method a standalone component's prediction endpoints call, by its kind.
MAIN_METHOD = {Kind.MODEL: "predict", Kind.TRANSFORMER: "transform_input", Kind.OUTPUT_TRANSFORMER: "transform_output"}


@dataclass(slots=True)
class TensorSpec:
    name: str
    datatype: str
    shape: list[int]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


@dataclass(slots=True)
class Metadata:
    """What a component says about itself, for both protocols' metadata endpoints."""

    name: str
    platform: str
    versions: list[str] = field(default_factory=list)
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    custom: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] | None = None

    def v1(self) -> dict[str, Any]:
        """Seldon's metadata: what init_metadata returned, with defaults filled in."""
        body: dict[str, Any] = {"name": self.name, "versions": self.versions, "platform": self.platform}
        body["inputs"] = [spec.as_dict() for spec in self.inputs]
        body["outputs"] = [spec.as_dict() for spec in self.outputs]
        body.update(self.raw or {})
        return body

    def v2(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "versions": self.versions, "platform": self.platform}
        body["inputs"] = [spec.as_dict() for spec in self.inputs]
        body["outputs"] = [spec.as_dict() for spec in self.outputs]
        if self.custom:
            body["parameters"] = self.custom
        return body


class Component:
    """Base of every node. Defaults follow Seldon: transforms pass data through.

    `raw_methods` lists the methods that take the undecoded request message
    (Seldon's `*_raw` methods); the data plane calls :meth:`call_raw` for them.
    """

    name: str = ""
    kind: Kind = Kind.MODEL
    implementation: str = ""
    raw_methods: frozenset[str] = frozenset()

    async def load(self) -> None:
        """Load weights or state; called once per process before serving."""

    async def predict(self, payload: Payload) -> Payload:
        raise NotImplementedByModel(f"component {self.name!r} does not implement predict")

    async def transform_input(self, payload: Payload) -> Payload:
        return payload

    async def transform_output(self, payload: Payload) -> Payload:
        return payload

    async def route(self, payload: Payload) -> int:
        raise NotImplementedByModel(f"component {self.name!r} does not implement route")

    async def aggregate(self, payloads: list[Payload]) -> Payload:
        raise NotImplementedByModel(f"component {self.name!r} does not implement aggregate")

    async def send_feedback(self, feedback: Feedback) -> Payload:
        return Payload([], [], {})

    async def call_raw(self, method: str, message: Any) -> Any:
        raise NotImplementedByModel(f"component {self.name!r} does not implement {method}_raw")

    async def health(self) -> Any:
        """Raise if unhealthy; the return value is reported by /health/status."""
        return None

    def metadata(self) -> Metadata:
        return Metadata(self.name, self.implementation)

    def outage(self) -> str | None:
        """Why a loaded component cannot serve just now (its process is restarting), or None when it can."""
        return None

    def parts(self) -> list[Component]:
        """Components inside this one (a graph's nodes), each also served under its own name."""
        return []

    def generator(self) -> Generator | None:
        """What generates text for this component (itself, where it implements Generator); None if it does not."""
        return self if isinstance(self, Generator) else None

    async def close(self) -> None:
        """Release connections and files; called once when the server stops or the model is unloaded."""

    def main_method(self) -> str:
        """What serving this component alone means: predict, transform_input or transform_output."""
        try:
            return MAIN_METHOD[self.kind]
        except KeyError:
            raise NotImplementedByModel(
                f"{self.name} is a {self.kind.value}; call its own path (/route, /aggregate)"
                " or compose it in a deployment file"
            ) from None


class Wrapper(Component):
    """A component around another (batching, detectors): each call is the inner one's unless a subclass says otherwise.

    Calls return the inner coroutine rather than awaiting it: no extra frame on the hot path. The wrapper
    takes on the inner component's identity, which a user's class fixes only as it loads.
    """

    def __init__(self, inner: Component) -> None:
        self.inner = inner
        self._mirror()

    def _mirror(self) -> None:
        self.name, self.kind = self.inner.name, self.inner.kind
        self.implementation, self.raw_methods = self.inner.implementation, self.inner.raw_methods

    async def load(self) -> None:
        await self.inner.load()
        self._mirror()

    def close(self) -> Coroutine[Any, Any, None]:
        return self.inner.close()

    def predict(self, payload: Payload) -> Coroutine[Any, Any, Payload]:
        return self.inner.predict(payload)

    def transform_input(self, payload: Payload) -> Coroutine[Any, Any, Payload]:
        return self.inner.transform_input(payload)

    def transform_output(self, payload: Payload) -> Coroutine[Any, Any, Payload]:
        return self.inner.transform_output(payload)

    def route(self, payload: Payload) -> Coroutine[Any, Any, int]:
        return self.inner.route(payload)

    def aggregate(self, payloads: list[Payload]) -> Coroutine[Any, Any, Payload]:
        return self.inner.aggregate(payloads)

    def send_feedback(self, feedback: Feedback) -> Coroutine[Any, Any, Payload]:
        return self.inner.send_feedback(feedback)

    def call_raw(self, method: str, message: Any) -> Coroutine[Any, Any, Any]:
        return self.inner.call_raw(method, message)

    def health(self) -> Coroutine[Any, Any, Any]:
        return self.inner.health()

    def metadata(self) -> Metadata:
        return self.inner.metadata()

    def parts(self) -> list[Component]:
        return self.inner.parts()

    def outage(self) -> str | None:
        return self.inner.outage()

    def generator(self) -> Generator | None:
        return self.inner.generator()
