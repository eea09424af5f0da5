"""Where request logs go: an HTTP endpoint taking CloudEvents, or a JSON-lines file.

A sink sends a batch of events and says how it went: how many it took, which
ones to try again later (the sink is down, busy or failing), and how many it
refused for good (an HTTP 4xx answer other than 408, 425 or 429: sending the
same event again cannot change that answer).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from daneel.observe.cloudevents import Event
from daneel.observe.journal import write_all
from daneel.observe.posting import Poster

log = logging.getLogger("daneel.requestlog")

#: Answers that say "not now" rather than "never".
_TRY_AGAIN = frozenset({408, 425, 429})


@dataclass(slots=True)
class Outcome:
    sent: int = 0
    retry: list[Event] = field(default_factory=list)
    rejected: int = 0


class Sink(Protocol):
    """Takes events: `name` is its URL or file path, as the metrics and logs show it."""

    name: str

    async def send(self, events: list[Event]) -> Outcome: ...

    async def close(self) -> None: ...


class HttpSink:
    """POSTs each event in CloudEvents' binary content mode, up to `concurrency` at once on kept-alive connections."""

    def __init__(self, url: str, concurrency: int = 16, timeout_s: float = 10.0) -> None:
        self.name = url
        self._poster = Poster(url, timeout_s)
        self._slots = asyncio.Semaphore(concurrency)

    async def send(self, events: list[Event]) -> Outcome:
        answers = await asyncio.gather(*(self._post(event) for event in events))
        outcome = Outcome()
        for event, answer in zip(events, answers, strict=True):
            if answer == "sent":
                outcome.sent += 1
            elif answer == "retry":
                outcome.retry.append(event)
            else:
                outcome.rejected += 1
        return outcome

    async def close(self) -> None:
        await self._poster.close()

    async def _post(self, event: Event) -> str:
        async with self._slots:
            try:
                status = await self._poster.post(event.data, event.headers())
            except Exception as exc:  # unreachable, refused, timed out, a garbled answer: all say "later"
                log.debug("request log %s: %s", self.name, exc)
                return "retry"
        if 200 <= status < 300:
            return "sent"
        if status in _TRY_AGAIN or status >= 500:
            return "retry"
        log.warning("request log %s refused event %s: HTTP %d", self.name, event.id, status)
        return "rejected"


class FileSink:
    """Appends events to a file as JSON lines, one write per batch under a lock, so workers never interleave.

    The file is opened for each batch, so a tool that moves it aside (logrotate) just gets a new one.
    A batch written is in the kernel's hands: it outlives this process, though not a crash of the machine.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    async def send(self, events: list[Event]) -> Outcome:
        data = b"".join(event.line() for event in events)
        try:
            await asyncio.to_thread(self._append, data)
        except OSError as exc:
            log.debug("request log %s: %s", self.name, exc)
            return Outcome(retry=events)
        return Outcome(sent=len(events))

    async def close(self) -> None:
        return None

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            write_all(fd, data)
        finally:
            os.close(fd)
