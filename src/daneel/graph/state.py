"""Where routers that learn keep what they have learnt.

A bandit's state is two numbers per branch: how many rows it was tried on and
how much reward those rows earned. Every worker process of a deployment, and
every replica, must see the same numbers, and they must survive a restart, so
they live in a store rather than in the router object: a SQLite file for the
processes of one machine, Redis for several machines. Both add atomically, so
concurrent feedback is never lost.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from daneel.errors import LoadError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bandit (
    router TEXT NOT NULL,
    branch INTEGER NOT NULL,
    tries REAL NOT NULL,
    reward REAL NOT NULL,
    PRIMARY KEY (router, branch)
)
"""
_ADD = """
INSERT INTO bandit (router, branch, tries, reward) VALUES (?, ?, ?, ?)
ON CONFLICT (router, branch) DO UPDATE SET tries = tries + excluded.tries, reward = reward + excluded.reward
"""
_BUSY_TIMEOUT_S = 10.0
_REDIS_PREFIX = "daneel:bandit:"


@dataclass(frozen=True, slots=True)
class Branch:
    """What one branch has earned: `reward` summed over `tries` rows."""

    tries: float = 0.0
    reward: float = 0.0

    @property
    def mean(self) -> float:
        return self.reward / self.tries if self.tries else 0.0


class Store(Protocol):
    """Bandit state shared by all the processes that serve one deployment."""

    async def add(self, router: str, branch: int, tries: float, reward: float) -> None:
        """Add `tries` rows and `reward` (summed over those rows) to a router's branch, atomically."""
        ...

    async def stats(self, router: str, n_branches: int) -> list[Branch]:
        """Each branch's totals so far; branches never rewarded are zeros."""
        ...

    async def close(self) -> None: ...


class SqliteStore:
    """A SQLite file in WAL mode: readers never wait for a writer, and each add is one atomic upsert."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._reader = _connect(self.path)
        self._writer = _connect(self.path)
        self._lock = threading.Lock()

    async def add(self, router: str, branch: int, tries: float, reward: float) -> None:
        # A write may wait for another process's lock, so it runs off the event loop.
        await asyncio.to_thread(self._write, router, branch, tries, reward)

    async def stats(self, router: str, n_branches: int) -> list[Branch]:
        rows = self._reader.execute("SELECT branch, tries, reward FROM bandit WHERE router = ?", (router,))
        return _branches({int(b): Branch(float(t), float(r)) for b, t, r in rows}, n_branches)

    def _write(self, router: str, branch: int, tries: float, reward: float) -> None:
        with self._lock, self._writer:
            self._writer.execute(_ADD, (router, branch, tries, reward))

    async def close(self) -> None:
        self._reader.close()
        with self._lock:
            self._writer.close()


def _connect(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, check_same_thread=False)
        _set_up(db)
    except sqlite3.Error as exc:
        raise LoadError(f"state store {path}: {exc}") from exc
    return db


def _set_up(db: sqlite3.Connection) -> None:
    """WAL mode and the table, retried while another process (a second worker starting) holds the file.

    Switching a new file to WAL can fail at once with "database is locked" instead of waiting out the
    busy timeout, so the wait is done here.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                db.execute(_SCHEMA)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class RedisStore:
    """A hash per router in Redis; HINCRBYFLOAT makes each add atomic across replicas."""

    def __init__(self, url: str) -> None:
        try:
            import redis.asyncio
        except ImportError:
            raise LoadError(f"state store {url} needs the redis package: pip install 'daneel[redis]'") from None
        self.url = url
        self._redis: Any = redis.asyncio.Redis.from_url(url)

    async def add(self, router: str, branch: int, tries: float, reward: float) -> None:
        key = _REDIS_PREFIX + router
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrbyfloat(key, f"{branch}:tries", tries)
            pipe.hincrbyfloat(key, f"{branch}:reward", reward)
            await pipe.execute()

    async def stats(self, router: str, n_branches: int) -> list[Branch]:
        raw: dict[bytes, bytes] = await self._redis.hgetall(_REDIS_PREFIX + router)
        totals: dict[int, dict[str, float]] = {}
        for field, value in raw.items():
            branch, _, what = field.decode().partition(":")
            totals.setdefault(int(branch), {})[what] = float(value)
        found = {b: Branch(t.get("tries", 0.0), t.get("reward", 0.0)) for b, t in totals.items()}
        return _branches(found, n_branches)

    async def close(self) -> None:
        await self._redis.aclose()


def _branches(found: dict[int, Branch], n_branches: int) -> list[Branch]:
    return [found.get(i, Branch()) for i in range(n_branches)]


def open_store(url_or_path: str | Path) -> Store:
    """A store from a deployment's `stateStore`: `redis://...` (or `rediss://`), else a SQLite file path."""
    text = str(url_or_path)
    if text.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(text)
    path = Path(text.removeprefix("sqlite://"))
    if text != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(path)
