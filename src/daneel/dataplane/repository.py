"""The models a server holds and the state of each: loading, ready, failed or unloaded.

Models can be loaded, reloaded and unloaded while the server runs (the Open Inference
Protocol's repository extension). A (re)load builds a new component from the model's spec
and swaps it in only once it has loaded, so requests keep reaching the old one meanwhile and
a failed reload leaves it serving. Requests to other models are never held up.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daneel.errors import DaneelError, LoadError, NotFound, NotImplementedByModel, NotReady, describe
from daneel.runtime.component import Component
from daneel.runtime.loader import ComponentSpec

log = logging.getLogger("daneel.repository")

#: Builds a component, not loaded yet, from a spec.
Builder = Callable[[ComponentSpec], Component]
#: Reads the served target again: a spec per model it holds now.
Scanner = Callable[[], list[ComponentSpec]]
#: Told of each change of a model's state (metrics follow them).
Watcher = Callable[["Entry"], None]


class State(enum.Enum):
    LOADING = "LOADING"
    READY = "READY"
    FAILED = "FAILED"  # failed to load when the server started
    UNAVAILABLE = "UNAVAILABLE"  # unloaded, or known but never loaded


@dataclass(slots=True)
class Entry:
    name: str
    component: Component | None
    spec: ComponentSpec | None = None
    state: State = State.LOADING
    reason: str = "loading"
    load_seconds: float = 0.0
    #: Whether the server's readiness waits for this model: those it started with, until unloaded.
    awaited: bool = True
    #: The model this one is a part of (a node of a deployment's graph), served and unloaded with it.
    part_of: str | None = None


class Repository:
    """Holds components by name, with the state of each.

    `builder` and `scan` make loading at runtime possible: the builder makes a component from a
    spec, the scan finds specs for models added since the start. `frozen`, when set, is why
    models cannot be loaded or unloaded at runtime (with several workers, each has its own).
    """

    def __init__(
        self,
        components: list[Component],
        clock: Callable[[], float] = time.perf_counter,
        builder: Builder | None = None,
        scan: Scanner | None = None,
        frozen: str = "",
    ) -> None:
        self.entries = {c.name: Entry(c.name, c) for c in components}
        self.frozen = frozen
        self._clock = clock
        self._builder = builder
        self._scan = scan
        self._locks: dict[str, asyncio.Lock] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self.watch: Watcher | None = None

    @classmethod
    def from_specs(
        cls,
        specs: list[ComponentSpec],
        builder: Builder,
        scan: Scanner | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> Repository:
        """A repository of the components `builder` makes from `specs`, which can rebuild them."""
        repository = cls([builder(spec) for spec in specs], clock, builder, scan)
        for spec in specs:
            repository.entries[spec.name].spec = spec
        return repository

    async def load_all(self) -> list[Entry]:
        """Load every model concurrently; return the entries that failed."""
        await asyncio.gather(*(self._load_first(entry) for entry in self.entries.values()))
        return [e for e in self.entries.values() if e.state is State.FAILED]

    async def _load_first(self, entry: Entry) -> None:
        async with self._lock(entry.name):
            if entry.component is None:
                return
            try:
                entry.load_seconds = await self._timed_load(entry.component)
            except Exception as exc:
                entry.state, entry.reason = State.FAILED, without_paths(describe(exc))
                log.error("model %s failed to load: %s", entry.name, describe(exc))
                self._changed(entry)
                return
            entry.state, entry.reason = State.READY, ""
            self._changed(entry)
            self._adopt_parts(entry)
            log.info("model %s ready in %.2fs", entry.name, entry.load_seconds)

    async def _timed_load(self, component: Component) -> float:
        start = self._clock()
        await component.load()
        return self._clock() - start

    # At runtime: the repository extension

    async def load(self, name: str) -> None:
        """Load a model, or reload it, from its spec as the served target now gives it.

        A model known to the server, or a new model folder of a served folder of folders.
        """
        self._check_changeable()
        async with self._lock(name):
            spec = await self._find_spec(name)
            entry = self.entries.setdefault(
                name, Entry(name, None, spec, State.UNAVAILABLE, "not loaded", awaited=False)
            )
            before = entry.state
            if before is not State.READY:
                entry.state, entry.reason = State.LOADING, "loading"
                self._changed(entry)
            try:
                component, seconds = await self._build_and_load(spec)
            except Exception as exc:
                reason = without_paths(describe(exc))
                if before is not State.READY:
                    entry.state, entry.reason = before, reason
                    self._changed(entry)
                log.error("model %s failed to load: %s", name, describe(exc))
                raise LoadError(f"model {name!r} failed to load: {reason}") from exc
            old, entry.component, entry.spec, entry.load_seconds = entry.component, component, spec, seconds
            entry.state, entry.reason = State.READY, ""
            self._changed(entry)
            self._adopt_parts(entry)
            self._retire(old)
            log.info("model %s %s in %.2fs", name, "reloaded" if before is State.READY else "loaded", seconds)

    async def _build_and_load(self, spec: ComponentSpec) -> tuple[Component, float]:
        assert self._builder is not None  # _check_changeable has made sure
        # Building may import a framework, which would hold up every other request on the loop.
        component = await asyncio.to_thread(self._builder, spec)
        return component, await self._timed_load(component)

    async def unload(self, name: str) -> None:
        """Stop serving a model; requests already running on it finish."""
        self._check_changeable()
        async with self._lock(name):
            entry = self.entry(name)
            if entry.part_of is not None:
                raise NotImplementedByModel(f"model {name!r} is part of {entry.part_of!r}; unload {entry.part_of!r}")
            old = entry.component
            entry.component, entry.state, entry.reason, entry.awaited = None, State.UNAVAILABLE, "unloaded", False
            self._changed(entry)
            self._adopt_parts(entry)
            self._retire(old)
            log.info("model %s unloaded", name)

    def _changed(self, entry: Entry) -> None:
        if self.watch is not None:
            self.watch(entry)

    def _adopt_parts(self, entry: Entry) -> None:
        """Serve the parts of `entry`'s component (a deployment's predictors and nodes) under their own names.

        A name already taken (the same node name in two predictors) keeps its first holder.
        """
        for name in [n for n, e in self.entries.items() if e.part_of == entry.name]:
            del self.entries[name]
        for part in entry.component.parts() if entry.component is not None else []:
            if part.name not in self.entries:
                self.entries[part.name] = Entry(
                    part.name, part, None, State.READY, "", awaited=False, part_of=entry.name
                )

    def _retire(self, component: Component | None, grace: float = 30.0) -> None:
        """Close a replaced component once the requests that may still run on it are done."""
        if component is None:
            return

        async def close() -> None:
            await asyncio.sleep(grace)
            await component.close()

        task = asyncio.create_task(close())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def close(self) -> None:
        """Close every component; the server is stopping."""
        for task in list(self._retiring):
            task.cancel()
        owners = [e.component for e in self.entries.values() if e.part_of is None and e.component is not None]
        results = await asyncio.gather(*(c.close() for c in owners), return_exceptions=True)
        for component, result in zip(owners, results, strict=True):
            if isinstance(result, Exception):
                log.warning("closing model %s failed: %s", component.name, describe(result))

    def index(self, ready_only: bool = False) -> list[dict[str, Any]]:
        """Every model, as the repository index shows it: name, state and reason, by name.

        A model that failed to load is UNAVAILABLE with the reason, as Triton and MLServer say it.
        """
        owners = {name: entry for name, entry in self.entries.items() if entry.part_of is None}
        found = {name: entry.state for name, entry in owners.items()}
        reasons = {name: entry.reason for name, entry in owners.items()}
        for spec in self._scan_quietly():
            if spec.name not in found:
                found[spec.name], reasons[spec.name] = State.UNAVAILABLE, "not loaded"
        return [
            {"name": name, "state": _shown(state), "reason": reasons[name]}
            for name, state in sorted(found.items())
            if not ready_only or state is State.READY
        ]

    async def _find_spec(self, name: str) -> ComponentSpec:
        known = self.entries.get(name)
        try:
            specs = await asyncio.to_thread(self._scan) if self._scan is not None else []
        except DaneelError:
            if known is None or known.spec is None:
                raise
            specs = []  # a broken folder elsewhere must not stop a known model's reload
        for spec in specs:
            if spec.name == name:
                return spec
        if known is not None and known.spec is not None:
            return known.spec
        if known is not None:
            raise NotImplementedByModel(f"model {name!r} was not built from a spec and cannot be reloaded")
        names = sorted({*self.entries, *(spec.name for spec in specs)})
        raise NotFound(f"model {name!r} not found; known models: {', '.join(names) or 'none'}")

    def _scan_quietly(self) -> list[ComponentSpec]:
        if self._scan is None:
            return []
        try:
            return self._scan()
        except DaneelError as exc:
            log.warning("cannot list the models of the served folder: %s", exc.message)
            return []

    def _check_changeable(self) -> None:
        if self.frozen:
            raise NotImplementedByModel(self.frozen)
        if self._builder is None:
            raise NotImplementedByModel("this server cannot load or unload models while it runs")

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    # Serving

    def entry(self, name: str) -> Entry:
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(self.entries) or "none"
            raise NotFound(f"model {name!r} not found; served models: {known}") from None

    def get(self, name: str) -> Component:
        """The component if it is ready; NotFound or NotReady (with the reason) otherwise."""
        entry = self.entry(name)
        if entry.state is not State.READY or entry.component is None:
            raise NotReady(f"model {name!r} is not ready: {entry.reason}")
        return entry.component

    def check_ready(self, name: str) -> None:
        """Return if the model is ready and can serve now (its process is up); raise NotReady saying why not."""
        outage = self.get(name).outage()
        if outage is not None:
            raise NotReady(f"model {name!r} is not ready: {outage}")

    def default(self) -> Component:
        """The one model (or deployment) Seldon's paths address."""
        owners = [name for name, entry in self.entries.items() if entry.part_of is None]
        if len(owners) != 1:
            raise NotFound(f"Seldon's paths address one model but {len(owners)} are served ({', '.join(owners)})")
        return self.get(owners[0])

    def not_ready(self) -> list[str]:
        """Why the server is not ready, one line per model; empty when it is.

        Ready means that every model the server started with is ready (or has been unloaded since),
        and that at least one model is: a server with nothing left to serve is not ready. Models
        loaded at runtime do not count while they load, so that they leave the others in service.
        """
        reasons = []
        for name, entry in self.entries.items():
            if entry.awaited and entry.state in (State.LOADING, State.FAILED):
                reasons.append(f"model {name!r}: {entry.reason}")
            elif entry.awaited and entry.component is not None and (outage := entry.component.outage()):
                reasons.append(f"model {name!r}: {outage}")  # a deployment's says which node is out
        if not reasons and not any(entry.state is State.READY for entry in self.entries.values()):
            reasons.append("no model is ready to serve")
        return reasons


#: An absolute path in an error message: from a slash that follows no word, dot, slash or colon (a URL's).
_ABSOLUTE_PATH = re.compile(r"(?<![\w./:~-])/(?:[^\s'\"/]+/)+")


def without_paths(reason: str) -> str:
    """Why a model failed to load, as unauthenticated clients may read it: each absolute path cut to its
    last part (`.../model.joblib`), which names the file without telling how the server's disk is laid out.
    The log keeps the whole reason."""
    return _ABSOLUTE_PATH.sub(".../", reason)


def _shown(state: State) -> str:
    return State.UNAVAILABLE.value if state is State.FAILED else state.value
