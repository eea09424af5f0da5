"""Keep `--workers N` processes serving: replace any worker that dies, say why, and back off.

A worker that dies is replaced whatever ended it: a signal (a segfault in native code, the OOM
killer), or an exit code (a model that called `os._exit`). The supervisor logs the exit code or
signal and, when the worker had answered HTTP requests, the id of the last one it took. Replacements that
keep dying soon after they start wait longer each time, up to :data:`MAX_DELAY_S`; workers that die
:data:`GIVE_UP_AFTER` times in a row before their models have loaded stop the server, since another
try would fare no better. A worker whose models failed to load exits with :data:`LOAD_FAILED`,
which stops the server at once (the load error has been printed).

Each worker holds a :class:`Slot`, a few bytes of memory shared with the supervisor, where it marks
that its models have loaded and which request it took last. On Linux a worker asks the kernel to
kill it when the supervisor dies (even by SIGKILL), so that no worker is left holding the port.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

from daneel.protocol.context import REQUEST_ID_HEADER

log = logging.getLogger("daneel.server")

#: A worker's exit code when its models failed to load.
LOAD_FAILED = 3
#: Workers that die before loading their models, one after another, before the supervisor gives up.
GIVE_UP_AFTER = 5
#: A worker that lived less than this counts as dying soon after it started: its replacement waits.
QUICK_DEATH_S = 30.0
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0
#: Longest request id a slot keeps; longer ones are cut.
_ID_BYTES = 128
_LOADED = 0
_ID = 1
_PR_SET_PDEATHSIG = 1
_REQUEST_ID = REQUEST_ID_HEADER.encode("latin-1")


class Slot:
    """What one worker tells its supervisor: whether its models have loaded, and the last request it took."""

    def __init__(self, context: ForkContext | SpawnContext) -> None:
        self.buffer: Any = context.RawArray(ctypes.c_char, 1 + _ID_BYTES)

    def mark_loaded(self) -> None:
        self.buffer[_LOADED] = b"1"

    @property
    def loaded(self) -> bool:
        return bool(self.buffer[_LOADED] == b"1")

    def serving(self, request_id: bytes) -> None:
        self.buffer[_ID : _ID + _ID_BYTES] = request_id[:_ID_BYTES].ljust(_ID_BYTES, b"\0")

    @property
    def request_id(self) -> str:
        return bytes(self.buffer[_ID : _ID + _ID_BYTES]).rstrip(b"\0").decode("latin-1")


class Tracked:
    """An ASGI app that writes each HTTP request's id to the worker's slot before passing it on.

    A request without an `x-request-id` header gets one here, so that the id the supervisor logs is
    the one the edge answers and logs with.
    """

    def __init__(self, app: Any, slot: Slot) -> None:
        self.app = app
        self.slot = slot

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            request_id = next((value for key, value in headers if key == _REQUEST_ID and value), None)
            if request_id is None:
                request_id = os.urandom(16).hex().encode()
                headers.append((_REQUEST_ID, request_id))
            self.slot.serving(request_id)
        await self.app(scope, receive, send)


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (Linux); exit now if it already has."""
    if sys.platform != "linux":
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


@dataclass
class _Worker:
    process: BaseProcess
    slot: Slot
    started: float


@dataclass
class Supervisor:
    """Runs `count` workers made by `start` until a stop signal; the exit code is 0 unless it gave up.

    `stop_grace_s` is how long workers may take to stop after SIGTERM before they are killed.
    """

    start: Callable[[Slot], BaseProcess]
    new_slot: Callable[[], Slot]
    count: int
    stop_grace_s: float
    clock: Callable[[], float] = time.monotonic
    workers: list[_Worker] = field(default_factory=list)
    due: list[float] = field(default_factory=list)  # when each replacement waiting to start may start
    stopping: bool = False
    code: int = 0
    _quick_deaths: int = 0
    _unloaded_deaths: int = 0

    def run(self) -> int:
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)

        def on_signal(signum: int, frame: Any) -> None:
            self.stop()
            os.write(wake_write, b"\0")

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            for _ in range(self.count):
                self._start()
            while self.workers or (self.due and not self.stopping):
                self._step(wake_read)
        finally:
            os.close(wake_read)
            os.close(wake_write)
        return self.code

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.due.clear()
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.terminate()

    def _step(self, wake: int) -> None:
        now = self.clock()
        while self.due and self.due[0] <= now and not self.stopping:
            self.due.pop(0)
            self._start()
        timeout = max(0.0, self.due[0] - now) if self.due else None
        if self.stopping:
            timeout = self.stop_grace_s
        ready = wait([w.process.sentinel for w in self.workers] + [wake], timeout)
        if wake in ready:
            os.read(wake, 64)
        elif not ready and self.stopping:
            self._kill_the_rest()
        for worker in [w for w in self.workers if w.process.sentinel in ready]:
            worker.process.join()
            self.workers.remove(worker)
            if not self.stopping:
                self._died(worker)

    def _start(self) -> None:
        slot = self.new_slot()
        self.workers.append(_Worker(self.start(slot), slot, self.clock()))

    def _died(self, worker: _Worker) -> None:
        code = worker.process.exitcode
        if code == LOAD_FAILED:
            self.code = 1
            self.stop()
            return
        quick = self.clock() - worker.started < QUICK_DEATH_S
        self._quick_deaths = self._quick_deaths + 1 if quick else 0
        self._unloaded_deaths = 0 if worker.slot.loaded else self._unloaded_deaths + 1
        why = _why(code, worker.slot.request_id)
        if self._unloaded_deaths >= GIVE_UP_AFTER:
            log.error(
                "worker %d %s; %d workers in a row died before loading, giving up",
                worker.process.pid,
                why,
                GIVE_UP_AFTER,
            )
            print(
                f"daneel: workers keep dying before their models load ({GIVE_UP_AFTER} in a row, the last {why});"
                " stopping",
                file=sys.stderr,
            )
            self.code = 1
            self.stop()
            return
        delay = 0.0 if not quick else min(FIRST_DELAY_S * 2 ** (self._quick_deaths - 1), MAX_DELAY_S)
        log.error("worker %d %s; starting another in %.1f s", worker.process.pid, why, delay)
        self.due.append(self.clock() + delay)
        self.due.sort()

    def _kill_the_rest(self) -> None:
        for worker in self.workers:
            if worker.process.is_alive():
                log.warning(
                    "worker %d still runs %.0f s after SIGTERM; killing it", worker.process.pid, self.stop_grace_s
                )
                worker.process.kill()


def _why(code: int | None, request_id: str) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown"
        said = f"was killed by signal {-code} ({name})"
    else:
        said = f"exited with code {code}"
    return f"{said} (its last request: {request_id})" if request_id else said
