"""A predictor or node with detectors on its input: :class:`Watched` wraps its component.

Before the watched call (a model's `predict`, a transformer's `transform_input`, a router's `route`; a whole
predictor's `predict`) the request's rows are read once. Sync outlier detectors score them there: with
`action: reject` a flagged row fails the request with a 422 naming the rows and features; otherwise the
answer's tags say `outlier` (one flag per row, true when any detector flags it), `outlier_score` (the first
detector's scores) and `outlier_scores` (every detector's, by name). Async detectors get a copy of the rows
on their own thread (:mod:`daneel.detect.stream`). Every other call passes to the component untouched, and
a component with no detectors is never wrapped, so it pays nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

from daneel.detect import DriftResult
from daneel.detect.rows import check_width, decode_raw, rows
from daneel.detect.running import Detector, describe_rows
from daneel.detect.stream import Stream
from daneel.errors import Rejected
from daneel.observe.telemetry import Telemetry
from daneel.protocol.payload import Payload
from daneel.runtime.component import Component, Wrapper
from daneel.runtime.invoke import Invoker

#: The calls that take a request's input, in the order the graph executor makes them on a node.
WATCHABLE = ("predict", "transform_input", "route", "transform_output")

Verdict = tuple[Detector, np.ndarray, np.ndarray]  # a detector, each row's score, each row's flag


class Watched(Wrapper):
    """`inner` with detectors on the input of its `method`."""

    def __init__(self, inner: Component, detectors: list[Detector], method: str, telemetry: Telemetry) -> None:
        super().__init__(inner)
        self.detectors = detectors
        self.method = method
        self.telemetry = telemetry
        self.sync = [d for d in detectors if d.synchronous]
        self.stream: Stream | None = None
        self._scorers: list[Invoker] = []

    async def load(self) -> None:
        await asyncio.gather(super().load(), *(detector.load() for detector in self.detectors))
        # A detector cheap enough (a z-score, a distance) scores on the loop; a forest moves to a thread.
        self._scorers = [Invoker(detector.score) for detector in self.sync]
        background = [d for d in self.detectors if not d.synchronous]
        if background:
            self.stream = Stream(background, self._drifted, self._dropped)

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.close()
        await self.inner.close()

    # The watched call

    def predict(self, payload: Payload) -> Coroutine[Any, Any, Payload]:
        return self._watch(payload, self.inner.predict) if self.method == "predict" else self.inner.predict(payload)

    def transform_input(self, payload: Payload) -> Coroutine[Any, Any, Payload]:
        if self.method == "transform_input":
            return self._watch(payload, self.inner.transform_input)
        return self.inner.transform_input(payload)

    def transform_output(self, payload: Payload) -> Coroutine[Any, Any, Payload]:
        if self.method == "transform_output":
            return self._watch(payload, self.inner.transform_output)
        return self.inner.transform_output(payload)

    async def route(self, payload: Payload) -> int:
        if self.method == "route":
            await self._inspect(payload)
        return await self.inner.route(payload)

    async def call_raw(self, method: str, message: Any) -> Any:
        if method != self.method:
            return await self.inner.call_raw(method, message)
        verdicts = await self._inspect(decode_raw(message))
        answer = await self.inner.call_raw(method, message)
        if verdicts and isinstance(answer, dict):
            _tag_message(answer, verdicts)
        return answer

    async def _watch(self, payload: Payload, call: Callable[[Payload], Coroutine[Any, Any, Payload]]) -> Payload:
        verdicts = await self._inspect(payload)
        result = await call(payload)
        if verdicts:
            result.meta = {**result.meta, "tags": _tags(result.meta.get("tags"), verdicts)}
        return result

    async def _inspect(self, payload: Payload) -> list[Verdict]:
        """Score the request's rows with the sync detectors, and queue them for the async ones."""
        named = next((d for d in self.detectors if d.names), self.detectors[0])  # whose feature order columns take
        found = rows(payload, named.names or None, named.name)
        for detector in self.detectors:
            if detector.width is not None:
                check_width(found, detector.width, detector.names, payload, detector.name)
        if self.stream is not None:
            self.stream.put(found if not self.sync else found.copy())
        verdicts = []
        for detector, scorer in zip(self.sync, self._scorers, strict=True):
            scores, flagged = await scorer(found)
            if detector.rejects and flagged.any():
                field = "inputs" if payload.form == "v2" else f"data.{payload.form}"
                raise Rejected(field, describe_rows(detector, found, scores, flagged))
            verdicts.append((detector, scores, flagged))
        return verdicts

    # Signals from the stream's thread, handed to the loop

    def _drifted(self, detector: Detector, result: DriftResult) -> None:
        payloads = self.telemetry.payloads
        if payloads is None:
            return
        for logger in payloads.served(detector.place.deployment):
            logger.detection(detector.event(result))

    def _dropped(self, count: int) -> None:
        metrics = self.telemetry.metrics
        if metrics is not None:
            place = self.detectors[0].place
            metrics.detector_dropped.counter(place.deployment, place.predictor, place.node).inc(count)


def watched_method(calls: frozenset[str]) -> str:
    """The call whose input detectors watch: the first of the node's calls that takes the request."""
    return next((method for method in WATCHABLE if method in calls), "predict")


def _tags(tags: Any, verdicts: list[Verdict]) -> dict[str, Any]:
    """The answer's tags with the verdicts added; flags of detectors further up the graph are kept (or-ed)."""
    merged = dict(tags) if isinstance(tags, dict) else {}
    flags = np.logical_or.reduce([flagged for _, _, flagged in verdicts])
    earlier = merged.get("outlier")
    if isinstance(earlier, list) and len(earlier) == len(flags):
        flags = np.logical_or(flags, np.asarray(earlier, dtype=bool))
    scores = {**(merged.get("outlier_scores") or {}), **{d.name: s.tolist() for d, s, _ in verdicts}}
    merged["outlier"] = flags.tolist()
    merged["outlier_score"] = verdicts[0][1].tolist()
    merged["outlier_scores"] = scores
    return merged


def _tag_message(answer: dict[str, Any], verdicts: list[Verdict]) -> None:
    """Tags in an answer a `*_raw` method built: a V2 response's parameters, or a SeldonMessage's meta."""
    if "outputs" in answer:
        parameters = answer.setdefault("parameters", {})
        parameters.update(_tags(parameters.get("tags"), verdicts))
        return
    meta = answer.setdefault("meta", {})
    meta["tags"] = _tags(meta.get("tags"), verdicts)
