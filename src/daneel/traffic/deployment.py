"""A whole deployment as one component: pick a predictor, mirror to the shadow.

Each predictor is a component (its inference graph). Requests go to one of them
by weight, or by a sticky key; the chosen predictor is named in the response's
`meta.predictor` and in the `X-Daneel-Predictor` header. A shadow predictor
gets a copy of every request on a background task: its answer is compared with
the caller's and logged, never returned, and its failures never reach callers.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from daneel.errors import describe
from daneel.graph.state import Store
from daneel.protocol import context
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback
from daneel.runtime.component import Component, Metadata
from daneel.spec.model import Sticky
from daneel.traffic.split import Split, sticky_key

log = logging.getLogger("daneel.traffic")

PREDICTOR_HEADER = "x-daneel-predictor"


@dataclass(slots=True)
class ShadowStats:
    sent: int = 0
    agreed: int = 0
    differed: int = 0
    failed: int = 0
    dropped: int = 0


class Deployment(Component):
    implementation = "DEPLOYMENT"

    def __init__(
        self,
        name: str,
        predictors: Sequence[tuple[Component, int]],
        shadow: Component | None = None,
        sticky: Sticky | None = None,
        rng: random.Random | None = None,
        max_shadow_in_flight: int = 64,
        state: Store | None = None,
    ) -> None:
        self.name = name
        self.predictors = [component for component, _ in predictors]
        self.shadow = shadow
        self.sticky = sticky
        self._split = Split([weight for _, weight in predictors], rng)
        self._main = max(predictors, key=lambda pair: pair[1])[0]
        self._max_shadow = max_shadow_in_flight
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self.shadow_stats = ShadowStats()
        self._state = state

    def arms(self) -> list[Component]:
        return self.predictors + ([self.shadow] if self.shadow else [])

    async def load(self) -> None:
        await asyncio.gather(*(arm.load() for arm in self.arms()))

    async def close(self) -> None:
        for task in list(self._shadow_tasks):
            task.cancel()
        await asyncio.gather(*self._shadow_tasks, return_exceptions=True)
        await asyncio.gather(*(arm.close() for arm in self.arms()))
        if self._state is not None:
            await self._state.close()

    def choose(self, payload: Payload) -> Component:
        key = sticky_key(self.sticky, context.current(), payload.meta)
        return self.predictors[self._split.choose(key)]

    async def predict(self, payload: Payload) -> Payload:
        predictor = self.choose(payload)
        _announce(predictor)
        if self.shadow is None:
            return _named(await predictor.predict(payload), predictor)
        main: asyncio.Future[Payload] = asyncio.get_running_loop().create_future()
        self._mirror(payload, main)
        try:
            result = await predictor.predict(payload)
        except asyncio.CancelledError:
            main.cancel()
            raise
        except Exception as exc:
            main.set_exception(exc)
            main.exception()  # marks it seen: the shadow only needs to know there is nothing to compare
            raise
        main.set_result(result)
        return _named(result, predictor)

    async def send_feedback(self, feedback: Feedback) -> Payload:
        """Feedback goes to the predictor that answered, as its response's meta names it."""
        named = feedback.response.meta.get("predictor") if feedback.response else None
        by_name = {p.name: p for p in self.predictors}
        predictor = by_name.get(str(named)) if named else None
        if predictor is None:
            predictor = self.choose(feedback.request or Payload(None))
        _announce(predictor)
        return _named(await predictor.send_feedback(feedback), predictor)

    async def health(self) -> Any:
        return [await arm.health() for arm in self.predictors]

    def metadata(self) -> Metadata:
        metadata = copy.copy(self._main.metadata())
        metadata.name = self.name
        return metadata

    def parts(self) -> list[Component]:
        return [part for arm in self.arms() for part in [arm, *arm.parts()]]

    def outage(self) -> str | None:
        return next((down for arm in self.predictors if (down := arm.outage())), None)

    def _mirror(self, payload: Payload, main: asyncio.Future[Payload]) -> None:
        if len(self._shadow_tasks) >= self._max_shadow:
            self.shadow_stats.dropped += 1
            return
        self.shadow_stats.sent += 1
        task = asyncio.create_task(self._shadow_call(_copy(payload), main))
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow_call(self, payload: Payload, main: asyncio.Future[Payload]) -> None:
        assert self.shadow is not None
        try:
            result = await self.shadow.predict(payload)
        except Exception as exc:
            self.shadow_stats.failed += 1
            log.warning("shadow %s failed: %s", self.shadow.name, describe(exc))
            return
        try:
            answer = await main
        except Exception:
            return
        same = _same(answer.data, result.data)
        if same:
            self.shadow_stats.agreed += 1
        else:
            self.shadow_stats.differed += 1
        log.debug(
            "shadow %s %s the answer of %s", self.shadow.name, "agrees with" if same else "differs from", self.name
        )


def _announce(predictor: Component) -> None:
    """Name the chosen predictor to the caller (a response header) and to the edge's metrics."""
    request = context.current()
    request.response_headers[PREDICTOR_HEADER] = request.predictor = predictor.name


def _named(result: Payload, predictor: Component) -> Payload:
    result.meta = {**result.meta, "predictor": predictor.name}
    return result


def _copy(payload: Payload) -> Payload:
    """The shadow's own copy: a model that changes its input in place must not touch the caller's request."""
    data = copy.deepcopy(payload.data)
    return Payload(data, list(payload.names), copy.deepcopy(payload.meta), payload.form, payload.output_name)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
        )
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except (TypeError, ValueError):
        return False
