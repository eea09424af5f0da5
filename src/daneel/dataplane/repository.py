"""The models a server holds and the state of each: loading, ready or failed."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from daneel.errors import NotFound, NotReady, describe
from daneel.runtime.component import Component

log = logging.getLogger("daneel.repository")


class State(enum.Enum):
    LOADING = "LOADING"
    READY = "READY"
    FAILED = "FAILED"


@dataclass(slots=True)
class Entry:
    component: Component
    state: State = State.LOADING
    reason: str = "loading"
    load_seconds: float = 0.0


class Repository:
    """Holds components by name, with the state of each."""

    def __init__(
        self,
        components: list[Component],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.entries = {c.name: Entry(c) for c in components}
        self._clock = clock

    async def load_all(self) -> list[Entry]:
        """Load every model concurrently; return the entries that failed."""
        await asyncio.gather(*(self._load(entry) for entry in self.entries.values()))
        return [e for e in self.entries.values() if e.state is State.FAILED]

    async def _load(self, entry: Entry) -> None:
        start = self._clock()
        try:
            await entry.component.load()
        except Exception as exc:
            entry.state = State.FAILED
            entry.reason = describe(exc)
            log.error("model %s failed to load: %s", entry.component.name, entry.reason)
            return
        entry.load_seconds = self._clock() - start
        entry.state, entry.reason = State.READY, ""
        log.info("model %s ready in %.2fs", entry.component.name, entry.load_seconds)

    def entry(self, name: str) -> Entry:
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(self.entries) or "none"
            raise NotFound(f"model {name!r} not found; served models: {known}") from None

    def get(self, name: str) -> Component:
        """The component if it is ready; NotFound or NotReady (with the reason) otherwise."""
        entry = self.entry(name)
        if entry.state is not State.READY:
            raise NotReady(f"model {name!r} is not ready: {entry.reason}")
        return entry.component

    def default(self) -> Component:
        """The one model Seldon's paths address."""
        if len(self.entries) != 1:
            names = ", ".join(self.entries)
            raise NotFound(f"Seldon's paths address one model but {len(self.entries)} are served ({names})")
        return self.get(next(iter(self.entries)))

    def not_ready(self) -> list[str]:
        """Why the server is not ready, one line per model; empty when it is."""
        reasons = []
        for name, entry in self.entries.items():
            if entry.state is not State.READY:
                reasons.append(f"model {name!r}: {entry.reason}")
        return reasons
