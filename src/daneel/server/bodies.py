"""Large request bodies, decoded in a helper process so that the event loop keeps serving meanwhile.

Parsing JSON builds a Python object per number while holding the GIL the whole time, so a thread
would not help: a 60 MB body would hold every other request, health checks included, for as long
as it parses. A helper process parses it instead and sends back the decoded request (numpy arrays,
which travel as their bytes). It starts with the first large body, serves one at a time for the
process that owns it, and, should it die, is started afresh for the next; the body that was
being decoded then is decoded on a thread.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.util
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("daneel.rest")


class Decoder:
    """Runs decoding functions (module-level, so that they pickle) in a helper process."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def __call__(self, decode: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        if self._pool is None:
            # spawn, not fork: a fork of a process running gRPC's threads can deadlock.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(1, context, initializer=_start_helper)
            # A worker process of `--workers N` joins its children as it exits, after closing its queues and
            # before the pool's own exit hook runs: the helper, told to stop here first, cannot hold that exit.
            multiprocessing.util.Finalize(self, self.close, kwargs={"wait": True}, exitpriority=100)
        try:
            return await loop.run_in_executor(self._pool, decode, *args)
        except BrokenProcessPool:
            log.warning("the process that decodes large bodies stopped; a new one will decode the next")
            self._pool = None
            return await asyncio.to_thread(decode, *args)

    def close(self, wait: bool = False) -> None:
        """Stop the helper; with `wait`, once it has ended (after the body it decodes, if any)."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None


def _start_helper() -> None:
    """In the helper: ignore Ctrl-C, which reaches the whole process group (the server stops its helper
    itself), and end as soon as the server does, however it ended (a kill -9 too)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent,), daemon=True).start()


def _end_with(parent: multiprocessing.process.BaseProcess) -> None:
    parent.join()
    os._exit(0)
