"""How user code is called from the event loop.

Coroutine functions are awaited. Synchronous code runs inline while it is cheap
and on a worker thread once it is slow, so a slow `predict` never stalls the
loop and a cheap one never pays a thread hop (about 50-100 µs on this kind of
machine, comparable to a whole small sklearn prediction).

`auto` runs a user's own code (a Python class, an MLflow pyfunc: anything that may
sleep, wait on the network or loop without end) on a thread, always: a call that
becomes slow after many cheap ones would otherwise hold the loop, and health
checks with it, for as long as it runs. The cost of that thread hop is measured
in docs/performance.md.

For a framework's prediction (`bounded`: its cost follows its input's size)
`auto` measures: the first calls run on a thread (their cost is unknown), then
an exponentially weighted mean of the call time decides, and keeps deciding, so
a model that becomes slow moves back off the loop. Code that has been well under
the threshold for a while is timed on one call in a few rather than on every
call: the clock costs about as much as a pass-through transformer itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

POLICIES = ("auto", "inline", "thread")

_WARMUP_CALLS = 3
_WEIGHT = 0.2
#: Once this many calls have been timed, code cheaper than a quarter of the threshold is timed one call in _SAMPLE.
_STABLE_CALLS = 32
_SAMPLE = 8


class Invoker:
    """Calls one user function according to a policy: auto, inline or thread.

    `bounded` says the function's cost follows its input (a framework's prediction); auto runs code
    that is not (a user's own) on a thread whatever it has cost so far.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        policy: str = "auto",
        threshold_s: float = 0.001,
        clock: Callable[[], float] = time.perf_counter,
        executor: Executor | None = None,
        bounded: bool = True,
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
        #: Whether the next call runs on the loop: fixed by the policy, or kept up to date as auto measures.
        self.inline = policy == "inline"
        # Decided here rather than on each call: only auto pays for the clock, and only for bounded code.
        self._run = self._timed if policy == "auto" and bounded else fn
        self._untimed = 0  # calls left to run on the loop before the next timed one

    async def __call__(self, *args: Any) -> Any:
        if self.is_async:
            return await self.fn(*args)
        if self._untimed:
            self._untimed -= 1
            return self.fn(*args)
        if self.inline:
            return self._run(*args)
        loop = asyncio.get_running_loop()
        # The request's context goes along (asyncio.to_thread does the same): logs and spans know the call.
        context = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, context.run, self._run, *args)

    def _timed(self, *args: Any) -> Any:
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
        self.inline = self._calls >= _WARMUP_CALLS and self.mean_s < self.threshold_s
        if self._calls >= _STABLE_CALLS and self.mean_s < self.threshold_s / 4:
            self._untimed = _SAMPLE - 1
