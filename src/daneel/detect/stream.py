"""Async detectors: fed from the request stream on a thread of their own, never on the request path.

The request path only puts a copy of the request's rows on a queue (a microsecond or two). One thread per
watched predictor or node takes them off: outlier detectors score them, drift detectors add them to a
window of `window` rows and test each full window against the training data, then start a fresh one.
A drift found is reported on the event loop (events go out through the request-log sinks, which live
there). When the thread falls behind by more than `backlog` requests, new rows are counted and dropped
rather than piling up in memory.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable

import numpy as np

from daneel.detect import DriftResult
from daneel.detect.running import Detector
from daneel.errors import describe

log = logging.getLogger("daneel.detect")

BACKLOG = 1024
_STOP = None


class Window:
    """Rows collected for the next drift test."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._rows: list[np.ndarray] = []
        self._count = 0

    def add(self, rows: np.ndarray) -> list[np.ndarray]:
        """Take rows; return every window they complete (usually none)."""
        full = []
        while len(rows):
            take = rows[: self.size - self._count]
            self._rows.append(take)
            self._count += len(take)
            rows = rows[len(take) :]
            if self._count == self.size:
                full.append(np.concatenate(self._rows))
                self._rows, self._count = [], 0
        return full


class Stream:
    """The async detectors of one watched predictor or node, and the thread that runs them."""

    def __init__(
        self,
        detectors: list[Detector],
        on_drift: Callable[[Detector, DriftResult], None],
        dropped: Callable[[int], None],
        backlog: int = BACKLOG,
    ) -> None:
        self.detectors = detectors
        self._windows = {d.name: Window(d.window) for d in detectors if not d.outlier}
        self._on_drift = on_drift
        self._dropped = dropped
        self._backlog = backlog
        self._queue: queue.SimpleQueue[np.ndarray | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def put(self, rows: np.ndarray) -> None:
        """Called on the request path: queue the rows (the caller's copy) for the thread."""
        if self._thread is None:
            self._start()
        if self._queue.qsize() >= self._backlog:
            self._dropped(len(rows))
            return
        self._queue.put(rows)

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="daneel-detectors", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (rows := self._queue.get()) is not _STOP:
            for detector in self.detectors:
                try:
                    self._feed(detector, rows)
                except Exception as exc:  # one detector's failure neither stops the others nor the thread
                    log.warning("%s: detector %s failed: %s", detector.place.path(), detector.name, describe(exc))

    def _feed(self, detector: Detector, rows: np.ndarray) -> None:
        if detector.outlier:
            detector.score(rows)
            return
        for window in self._windows[detector.name].add(rows):
            result = detector.test(window)
            if result.drift and self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._on_drift, detector, result)

    async def close(self) -> None:
        """Score what is queued, then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(thread.join)
        self._thread = None
