"""Getting one sink's events to it, at least once, without the request path waiting.

The request path appends a record (references to its payloads, nothing encoded)
to a bounded queue and returns. A sender task takes what has queued, encodes it,
and sends it as a batch, retrying a failed part a few times with exponential
backoff. What still fails, and everything after it, spills to the sink's
:class:`~daneel.observe.journal.Journal` on disk, as does a batch taken while the
queue is over half full (the sink cannot keep up). While spilling, a recovery
task tries the sink again with growing pauses, delivers the journal's segments
oldest first, and goes back to sending straight from memory once the journal
is empty. It also runs once at start, to deliver what earlier runs left.

On :meth:`Delivery.close` the sender gets `close_timeout_s` to hand what is queued
to the sink; whatever is left then goes to the journal, so the next start sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from daneel.observe.cloudevents import Event
from daneel.observe.journal import Journal, Segment
from daneel.observe.metrics import Counter
from daneel.observe.sinks import Outcome, Sink

log = logging.getLogger("daneel.requestlog")


class Pending(Protocol):
    """What the request path queues: turned into its event only by the sender."""

    def event(self) -> Event: ...


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    max_queue: int = 10_000  # records in memory; beyond, a request writes its own to the journal
    batch: int = 256  # most events taken from the queue, or a segment, at once
    linger_s: float = 0.005  # how long the first event of a batch waits for others
    concurrency: int = 16  # HTTP requests in flight to one sink
    timeout_s: float = 10.0  # one HTTP request to the sink
    retries: int = 2  # tries again before spilling
    backoff_s: float = 0.1  # first pause before trying again; doubles after each failure
    max_backoff_s: float = 5.0  # longest pause between tries of a sink that is down
    close_timeout_s: float = 2.0  # how long closing waits on the sink before journaling the rest


@dataclass(slots=True)
class Tally:
    """Events sent, spilled to the journal, or lost (refused by the sink, or not encodable); with metrics if given."""

    sent: int = 0
    spilled: int = 0
    failed: int = 0
    counters: tuple[Counter, Counter, Counter] | None = None

    def add(self, sent: int = 0, spilled: int = 0, failed: int = 0) -> None:
        self.sent, self.spilled, self.failed = self.sent + sent, self.spilled + spilled, self.failed + failed
        if self.counters is not None:
            for counter, count in zip(self.counters, (sent, spilled, failed), strict=True):
                if count:
                    counter.inc(count)


class Delivery:
    """One sink as one process sees it: its queue, its journal, and the tasks that empty them."""

    def __init__(self, sink: Sink, journal: Journal, settings: DeliverySettings, tally: Tally | None = None) -> None:
        self.sink = sink
        self.journal = journal
        self.settings = settings
        self.tally = tally or Tally()
        self._queue: deque[Pending] = deque()
        self._high_water = settings.max_queue // 2
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[Outcome]] = set()
        self._spilling = False
        self._closing = False

    def append(self, record: Pending) -> None:
        """Queue a record; called on the event loop by the request path, so it never waits."""
        if len(self._queue) < self.settings.max_queue:
            self._queue.append(record)
            if not self._wake.is_set():
                self._wake.set()
            if self._sender is None:
                self.start()
        else:
            self._overflow(record)

    def start(self) -> None:
        """Start sending, and deliver what earlier runs left in the journal; on the event loop."""
        if self._sender is None and not self._closing:
            self._sender = asyncio.create_task(self._send_loop(), name=f"request log {self.sink.name}")
            self._recovery = asyncio.create_task(self._recover())

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._closed.set()
        running = {task for task in (self._sender, self._recovery) if task is not None}
        if running:
            _, late = await asyncio.wait(running, timeout=self.settings.close_timeout_s)
            if late:
                self._spilling = True  # the sink is slow: what is left goes to disk instead
                for task in [*self._in_flight, *(t for t in late if t is self._recovery)]:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
        if self._queue:
            await self._spill(self._encode(self._take(len(self._queue))))
        await asyncio.to_thread(self.journal.close)
        await self.sink.close()

    # Sending

    async def _send_loop(self) -> None:
        while self._queue or not self._closing:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                if not self._closing:
                    await asyncio.sleep(self.settings.linger_s)  # let a batch gather: one write or wakeup for many
                continue
            events = self._encode(self._take(self.settings.batch))
            try:
                await self._dispatch(events)
            except Exception:  # a bug here must not stop delivery for good
                log.exception("request log %s: sending failed", self.sink.name)
                await self._spill(events)
                self._enter_spill()

    async def _dispatch(self, events: list[Event]) -> None:
        if not events:
            return
        if self._spilling or len(self._queue) > self._high_water:
            await self._spill(events)
            self._enter_spill()
            return
        retry = await self._send(events)
        if retry:
            await self._spill(retry)
            self._enter_spill()

    async def _send(self, events: list[Event]) -> list[Event]:
        """Send with a few retries; what the sink still has not taken."""
        for attempt in range(self.settings.retries + 1):
            outcome = await self._attempt(events)
            self.tally.add(sent=outcome.sent, failed=outcome.rejected)
            events = outcome.retry
            if not events or self._closing or attempt == self.settings.retries:
                break
            await asyncio.sleep(self.settings.backoff_s * 2**attempt)
        return events

    async def _attempt(self, events: list[Event]) -> Outcome:
        """One send, as a task of its own, so that closing can abort it without stopping the sender."""
        task = asyncio.ensure_future(self.sink.send(events))
        self._in_flight.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            return Outcome(retry=events)
        finally:
            self._in_flight.discard(task)

    def _take(self, count: int) -> list[Pending]:
        queue = self._queue
        return [queue.popleft() for _ in range(min(count, len(queue)))]

    def _encode(self, records: list[Pending]) -> list[Event]:
        events = []
        for record in records:
            try:
                events.append(record.event())
            except Exception as exc:  # a payload that cannot become JSON must not stop the others
                self.tally.add(failed=1)
                log.warning("request log %s: cannot encode an event: %s", self.sink.name, exc)
        return events

    # Spilling and recovering

    async def _spill(self, events: list[Event]) -> None:
        try:
            await asyncio.to_thread(self.journal.append, [event.line() for event in events])
        except OSError as exc:
            self.tally.add(failed=len(events))
            log.error(
                "request log %s: %d events lost, the journal cannot be written: %s", self.sink.name, len(events), exc
            )
            return
        self.tally.add(spilled=len(events))

    def _overflow(self, record: Pending) -> None:
        """The queue is full: this request's record goes to the journal now (written, synced with the next batch)."""
        events = self._encode([record])
        try:
            self.journal.append([event.line() for event in events], sync=False)
        except OSError as exc:
            self.tally.add(failed=len(events))
            log.error("request log %s: an event lost, the journal cannot be written: %s", self.sink.name, exc)
            return
        self.tally.add(spilled=len(events))
        self._enter_spill()

    def _enter_spill(self) -> None:
        if not self._spilling:
            log.warning(
                "request log %s cannot keep up or is down; keeping events in %s", self.sink.name, self.journal.folder
            )
        self._spilling = True
        if not self._closing and (self._recovery is None or self._recovery.done()):
            self._recovery = asyncio.create_task(self._recover())

    async def _recover(self) -> None:
        pause = self.settings.backoff_s
        while not await self._replayed() and not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), pause)
            pause = min(pause * 2, self.settings.max_backoff_s)

    async def _replayed(self) -> bool:
        try:
            return await self._replay_all()
        except OSError as exc:  # an unreadable journal: tried again later, like a sink that is down
            log.error("request log %s: cannot read the journal in %s: %s", self.sink.name, self.journal.folder, exc)
            return False

    async def _replay_all(self) -> bool:
        """Deliver every segment this process can claim, its own included; whether all of them went."""
        while True:
            await asyncio.to_thread(self.journal.rotate)  # what this process spilled becomes claimable
            while not self._closing and (segment := await asyncio.to_thread(self.journal.claim)) is not None:
                if not await self._replay(segment):
                    return False
            if self._closing:
                return False
            if self._spilling:
                log.info("request log %s: delivering from memory again", self.sink.name)
            self._spilling = False
            if await asyncio.to_thread(self.journal.empty):  # nothing spilled while the last segments went
                return True

    async def _replay(self, segment: Segment) -> bool:
        """Send a claimed segment; on failure keep only what did not go (in this process's segment)."""
        events, delivered = segment.events, 0
        try:
            for chunk in _chunks(events, self.settings.batch):
                outcome = await self._attempt(chunk)
                self.tally.add(sent=outcome.sent, failed=outcome.rejected)
                if outcome.retry:
                    if delivered or outcome.sent or outcome.rejected:
                        rest = outcome.retry + events[delivered + len(chunk) :]
                        await asyncio.to_thread(self.journal.append, [event.line() for event in rest])
                        await asyncio.to_thread(segment.done)
                    return False
                delivered += len(chunk)
            await asyncio.to_thread(segment.done)
            return True
        finally:
            segment.release()


def _chunks(events: list[Event], size: int) -> Iterator[list[Event]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]
