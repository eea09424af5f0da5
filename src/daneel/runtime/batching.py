"""Dynamic batching: requests that queue while a model is busy reach it as one call.

:class:`Batched` wraps a component and batches its main method (`predict` for a
MODEL). No timer is involved. A request that finds the model idle leads a batch:
it lets the event loop take one turn, so that the requests read in the same turn
queue behind it, then calls the model with all of them. Requests that arrive while
that call runs queue, and a dispatcher task sends them as the next batch as soon
as it returns. With `max_latency_ms` above zero a batch instead waits up to that
long to fill, as MLServer's adaptive batching does.

Only payloads that merge exactly go together (see :mod:`daneel.runtime.merging`).
A batch that fails is retried request by request, so a bad request fails alone. A
model whose output is not one row per input row, or that fails on a batch while
each of its requests succeeds alone, is called one request at a time from then on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Coroutine, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from daneel.errors import LoadError, NotReady
from daneel.observe.metrics import Histogram
from daneel.protocol.payload import Payload
from daneel.runtime.component import MAIN_METHOD, Component, Wrapper
from daneel.runtime.folder import describe
from daneel.runtime.merging import answer, merge, rows_key, same_meta, split
from daneel.runtime.python import PythonComponent
from daneel.spec.model import Batching

log = logging.getLogger("daneel.batching")

#: A model whose batches keep failing while each request succeeds alone (a graph with a fixed batch
#: size of 1, say) is called request by request from then on; one such failure may be transient.
FAILED_BATCHES_TO_TURN_OFF = 3
#: After this many leading requests in a row that nothing joined (light load), a leader skips its
#: loop turn, saving its cost at concurrency 1, except every PROBE_EVERY-th, which looks for company
#: again so that batches form once load rises. Requests that arrive while a call runs queue either way.
ALONE_BEFORE_SKIPPING = 16
PROBE_EVERY = 8


class Call(Protocol):
    def __call__(self, payload: Payload, /) -> Coroutine[Any, Any, Payload]: ...


@dataclass(slots=True)
class BatchStats:
    """What a batcher has dispatched: calls to the model, the requests they carried, calls by batch size."""

    calls: int = 0
    requests: int = 0
    sizes: Counter[int] = field(default_factory=Counter)
    retried: int = 0  # batches that failed and were retried request by request
    exported: Histogram | None = None  # the server's batch-size metric, when metrics are on

    def record(self, size: int) -> None:
        self.calls += 1
        self.requests += size
        self.sizes[size] += 1
        if self.exported is not None:
            self.exported.observe(size)


@dataclass(slots=True)
class _Pending:
    payload: Payload
    key: Hashable
    rows: int
    future: asyncio.Future[Payload]
    since: float


class Batcher:
    """Queues the calls of one method and makes them one call at a time, merged where they can be."""

    def __init__(self, call: Call, name: str, settings: Batching, stats: BatchStats | None = None) -> None:
        self.call = call
        self.name = name
        self.max_batch_size = settings.max_batch_size
        self.max_latency_s = settings.max_latency_ms / 1000
        self.stats = stats or BatchStats()
        self.enabled = True
        self._queue: deque[_Pending] = deque()
        self._running: list[_Pending] = []
        self._busy = False  # a batch is forming or running; new requests queue behind it
        self._failed_batches = 0  # in a row, each of whose requests then succeeded alone
        self._alone = 0  # leading requests in a row that nothing joined
        self._drain: asyncio.Task[None] | None = None
        self._filled: asyncio.Future[None] | None = None

    def submit(self, payload: Payload) -> Coroutine[Any, Any, Payload]:
        """The call's coroutine: queued when the payload can merge, else the method's own."""
        if not self.enabled:
            self.stats.record(1)
            return self.call(payload)
        return self._submitted(payload)

    async def _submitted(self, payload: Payload) -> Payload:
        if not self._busy and not self.max_latency_s and self._skipping():
            return await self._solo(payload)
        found = rows_key(payload)
        if found is None:
            self.stats.record(1)
            return await self.call(payload)
        return await self._enqueue(payload, *found)

    async def _enqueue(self, payload: Payload, key: Hashable, rows: int) -> Payload:
        loop = asyncio.get_running_loop()
        pending = _Pending(payload, key, rows, loop.create_future(), loop.time() if self.max_latency_s else 0.0)
        self._queue.append(pending)
        if not self._busy:
            return await self._lead(pending)
        if self._filled is not None and len(self._queue) >= self.max_batch_size and not self._filled.done():
            self._filled.set_result(None)
        return await pending.future

    def _skipping(self) -> bool:
        """Whether a leader skips its loop turn: nothing joined the last ones, and this is not a probe."""
        return self._alone >= ALONE_BEFORE_SKIPPING and self._alone % PROBE_EVERY != 0

    async def _solo(self, payload: Payload) -> Payload:
        """A leader that skips its turn, without the queue's bookkeeping: nothing can join it before the call."""
        self._busy = True
        self._alone += 1
        self.stats.record(1)
        try:
            return await self.call(payload)
        finally:
            self._hand_on()

    async def _lead(self, pending: _Pending) -> Payload:
        """Dispatch the batch that forms behind a request which found the model idle, in its own task.

        Yielding once, rather than starting a timer, lets every request already due on the loop
        (those read in the same iteration) queue behind it; an idle model adds no wait.
        """
        self._busy = True
        try:
            if self.max_latency_s:
                await self._wait_to_fill()
            else:  # a leader that skips its turn went to _solo instead
                await asyncio.sleep(0)
            if len(self._queue) == 1:  # nothing joined it: the plain call
                self._alone += 1
                self._queue.clear()
                self.stats.record(1)
                return await self.call(pending.payload)
            self._alone = 0
            self._running = self._take()
            await self._run(self._running)
        except BaseException:
            pending.future.cancel()  # the others of its batch go back to the queue for the dispatcher
            self._queue.extendleft(reversed([other for other in self._running if not other.future.done()]))
            raise
        finally:
            self._running = []
            self._hand_on()
        return pending.future.result()

    def _hand_on(self) -> None:
        """Leave the requests that queued during the batch to a dispatcher task, or be idle."""
        if self._queue:
            self._drain = asyncio.get_running_loop().create_task(self._dispatch())
        else:
            self._busy = False

    async def _dispatch(self) -> None:
        try:
            while self._queue:
                if self.max_latency_s:
                    await self._wait_to_fill()
                self._running = self._take()
                await self._run(self._running)
                self._running = []
                if self._queue:
                    await asyncio.sleep(0)  # answered requests reply, and new ones join, before the next batch
        except asyncio.CancelledError:
            self._fail_waiting()
            raise
        finally:
            self._drain = None
            self._busy = False

    async def _wait_to_fill(self) -> None:
        if len(self._queue) >= self.max_batch_size:
            return
        self._filled = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout_at(self._queue[0].since + self.max_latency_s):
                await self._filled
        except TimeoutError:
            pass
        finally:
            self._filled = None

    def _take(self) -> list[_Pending]:
        """The first live request and those after it that merge with it; the others keep their place."""
        limit = self.max_batch_size if self.enabled else 1
        batch: list[_Pending] = []
        others: list[_Pending] = []
        while self._queue and len(batch) < limit:
            pending = self._queue.popleft()
            if pending.future.done():
                continue  # its caller has gone
            merges = not batch or (pending.key == batch[0].key and same_meta(batch[0].payload, pending.payload))
            (batch if merges else others).append(pending)
        self._queue.extendleft(reversed(others))
        return batch

    async def _run(self, batch: list[_Pending]) -> None:
        if len(batch) <= 1:
            await self._each(batch)
            return
        self.stats.record(len(batch))
        try:
            result = await self.call(merge([pending.payload for pending in batch]))
            parts = split(result.data, [pending.rows for pending in batch])
        except Exception:
            self.stats.retried += 1
            self._failed_batches = self._failed_batches + 1 if await self._each(batch) else 0
            if self._failed_batches >= FAILED_BATCHES_TO_TURN_OFF:
                self._turn_off(f"{self._failed_batches} batches in a row failed while their requests succeeded alone")
            return
        self._failed_batches = 0
        if parts is None:
            self._turn_off("its output does not have one row per input row")
            await self._each(batch)
            return
        for pending, part in zip(batch, parts, strict=True):
            _settle(pending.future, answer(part, result, pending.payload))

    async def _each(self, batch: list[_Pending]) -> bool:
        """Call the method once per request; whether every one succeeded."""
        succeeded = True
        for pending in batch:
            if pending.future.done():
                continue
            self.stats.record(1)
            try:
                _settle(pending.future, await self.call(pending.payload))
            except Exception as exc:
                _settle(pending.future, exc)
                succeeded = False
        return succeeded

    def _turn_off(self, why: str) -> None:
        if self.enabled:
            self.enabled = False
            log.warning("model %s: batching is off from now on: %s", self.name, why)

    def _fail_waiting(self) -> None:
        error = NotReady(f"model {self.name!r} was unloaded before it answered")
        for pending in [*self._running, *self._queue]:
            _settle(pending.future, error)
        self._queue.clear()

    async def close(self) -> None:
        """Stop dispatching; requests still waiting fail as NotReady."""
        drain = self._drain
        if drain is not None:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)
        self._fail_waiting()


def _settle(future: asyncio.Future[Payload], outcome: Payload | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


# The wrapper


class Batched(Wrapper):
    """A component whose main method is batched; everything else is its inner component's own.

    `settings` None lets the inner component's class decide once it has loaded: a user's class
    batches when it sets `batchable = True` (and optionally `max_batch_size`, `max_latency_ms`).
    """

    def __init__(self, inner: Component, settings: Batching | None = None) -> None:
        super().__init__(inner)
        self.settings = settings
        self.stats = BatchStats()
        self.batcher: Batcher | None = None
        self._method = ""

    def predict(self, payload: Payload) -> Coroutine[Any, Any, Payload]:
        if self.batcher is not None and self._method == "predict":
            return self.batcher.submit(payload)
        return self.inner.predict(payload)

    def transform_input(self, payload: Payload) -> Coroutine[Any, Any, Payload]:
        if self.batcher is not None and self._method == "transform_input":
            return self.batcher.submit(payload)
        return self.inner.transform_input(payload)

    def transform_output(self, payload: Payload) -> Coroutine[Any, Any, Payload]:
        if self.batcher is not None and self._method == "transform_output":
            return self.batcher.submit(payload)
        return self.inner.transform_output(payload)

    async def load(self) -> None:
        await super().load()
        settings = self.settings or declared(self.inner)
        method = MAIN_METHOD.get(self.kind, "")
        if settings is None or settings.max_batch_size <= 1 or not method or method in self.inner.raw_methods:
            return
        self._method = method
        self.batcher = Batcher(getattr(self.inner, method), self.inner.name, settings, self.stats)

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.close()
        await self.inner.close()


def declared(component: Component) -> Batching | None:
    """The batching a user's class asks for with `batchable = True`; None for any other component."""
    obj = component.obj if isinstance(component, PythonComponent) else None
    if getattr(obj, "batchable", False) is not True:
        return None
    fields = {key: getattr(obj, key) for key in ("max_batch_size", "max_latency_ms") if hasattr(obj, key)}
    try:
        return Batching.model_validate(fields)
    except ValidationError as exc:
        raise LoadError(f"{component.name}: class attribute {describe(exc)}") from None


def wrap(
    component: Component, configured: Batching | None, row_wise: bool, sizes: Histogram | None = None
) -> Component:
    """`component` batched as `configured`; else by default where its server is row-wise, or as its class declares.

    `max_batch_size: 1` turns batching off and leaves the component as it is. `sizes` records each call's batch size.
    """
    if configured is not None and configured.max_batch_size <= 1:
        return component
    if configured is None and not row_wise and not isinstance(component, PythonComponent):
        return component
    batched = Batched(component, configured or (Batching() if row_wise else None))
    batched.stats.exported = sizes
    return batched
