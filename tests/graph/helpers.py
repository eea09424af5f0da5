"""Small components and helpers for building graphs in process."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np

from daneel.graph.executor import GraphNode, calls_for
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback
from daneel.runtime.component import Component, Kind

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def request(data: Any = None, meta: dict[str, Any] | None = None) -> Payload:
    array = np.array([[1.0, 2.0]]) if data is None else np.asarray(data)
    return Payload(array, ["a", "b"], {"puid": "p1"} if meta is None else meta)


class Add(Component):
    """Adds `amount` in whatever it is asked to do, tags itself, and records every call it gets."""

    def __init__(self, name: str, amount: float = 0.0, kind: Kind = Kind.MODEL, tags: dict[str, Any] | None = None):
        self.name = name
        self.kind = kind
        self.implementation = f"Add({amount:g})"
        self.amount = amount
        self.tags = {name: True} if tags is None else tags
        self.calls: list[str] = []
        self.feedback: list[Feedback] = []

    def _add(self, method: str, payload: Payload) -> Payload:
        self.calls.append(method)
        meta = {**payload.meta, "tags": {**payload.meta.get("tags", {}), **self.tags}}
        return Payload(payload.data + self.amount, payload.names, meta)

    async def predict(self, payload: Payload) -> Payload:
        return self._add("predict", payload)

    async def transform_input(self, payload: Payload) -> Payload:
        return self._add("transform_input", payload)

    async def transform_output(self, payload: Payload) -> Payload:
        return self._add("transform_output", payload)

    async def send_feedback(self, feedback: Feedback) -> Payload:
        self.calls.append("send_feedback")
        self.feedback.append(feedback)
        return Payload([], [], {})


class Fixed(Add):
    """A router that always answers `choice`."""

    def __init__(self, name: str, choice: int) -> None:
        super().__init__(name, kind=Kind.ROUTER)
        self.choice = choice

    async def route(self, payload: Payload) -> int:
        self.calls.append("route")
        return self.choice


class Sum(Add):
    """A combiner that adds its children's outputs."""

    def __init__(self, name: str) -> None:
        super().__init__(name, kind=Kind.COMBINER)

    async def aggregate(self, payloads: list[Payload]) -> Payload:
        self.calls.append("aggregate")
        return Payload(sum(p.data for p in payloads), payloads[0].names, dict(payloads[0].meta))


def node(component: Component, *children: GraphNode, methods: list[str] | None = None, **options: Any) -> GraphNode:
    """A graph node of `component`'s kind (or the one given as `kind`)."""
    kind = options.pop("kind", component.kind)
    return GraphNode(component, calls_for(kind, methods), list(children), **options)
