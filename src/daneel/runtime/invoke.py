"""How user code is called from the event loop.

Coroutine functions are awaited. Synchronous code runs inline while it is cheap
and on a worker thread once it is slow, so a slow `predict` never stalls the
loop and a cheap one never pays a thread hop (about 50-100 µs on this kind of
machine, comparable to a whole small sklearn prediction).

`auto` measures: the first calls run on a thread (their cost is unknown), then
an exponentially weighted mean of the call time decides, and keeps deciding, so
a model that becomes slow moves back off the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

POLICIES = ("auto", "inline", "thread")

_WARMUP_CALLS = 3
_WEIGHT = 0.2


class Invoker:
    """Calls one user function according to a policy: auto, inline or thread."""

    def __init__(
        self,
        fn: Callable[..., Any],
        policy: str = "auto",
        threshold_s: float = 0.001,
        clock: Callable[[], float] = time.perf_counter,
        executor: Executor | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"executor policy {policy!r}: expected one of {', '.join(POLICIES)}")
        self.fn = fn
        self.policy = policy
        self.threshold_s = threshold_s
        self.is_async = inspect.iscoroutinefunction(fn)
        self._clock = clock
        self._executor = executor
        self._calls = 0
        self.mean_s = 0.0

    @property
    def inline(self) -> bool:
        if self.policy != "auto":
            return self.policy == "inline"
        return self._calls >= _WARMUP_CALLS and self.mean_s < self.threshold_s

    async def __call__(self, *args: Any) -> Any:
        if self.is_async:
            return await self.fn(*args)
        if self.inline:
            return self._timed(*args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._timed, *args)

    def _timed(self, *args: Any) -> Any:
        if self.policy != "auto":
            return self.fn(*args)
        start = self._clock()
        try:
            return self.fn(*args)
        finally:
            self._record(self._clock() - start)

    def _record(self, seconds: float) -> None:
        self._calls += 1
        if self._calls == 1:
            self.mean_s = seconds
        else:
            self.mean_s += _WEIGHT * (seconds - self.mean_s)
