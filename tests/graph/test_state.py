import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from daneel.graph.state import Branch, RedisStore, SqliteStore, open_store

from .helpers import run

ADDS_PER_WORKER = 100
WORKER = """
import asyncio, sys
from daneel.graph.state import SqliteStore

async def main():
    store = SqliteStore(sys.argv[1])
    for _ in range({adds}):
        await store.add("d/p/router", int(sys.argv[2]), 1.0, 0.5)
    await store.close()

asyncio.run(main())
"""


def test_stats_start_at_zero_and_add_up(sqlite_stores: Callable[[], SqliteStore]) -> None:
    store = sqlite_stores()

    async def scenario() -> list[Branch]:
        assert await store.stats("d/p/r", 2) == [Branch(), Branch()]
        await store.add("d/p/r", 1, 3, 2.5)
        await store.add("d/p/r", 1, 1, 0.5)
        await store.add("d/p/other", 0, 7, 7)
        return await store.stats("d/p/r", 2)

    assert run(scenario()) == [Branch(0, 0), Branch(4, 3)]


def test_branch_mean() -> None:
    assert Branch(4, 3).mean == 0.75
    assert Branch().mean == 0.0


def test_two_stores_on_one_file_share_state_and_it_survives_a_reopen(
    sqlite_stores: Callable[[], SqliteStore],
) -> None:
    first, second = sqlite_stores(), sqlite_stores()
    run(first.add("r", 0, 2, 1))
    run(second.add("r", 0, 2, 2))
    assert run(first.stats("r", 1)) == run(second.stats("r", 1)) == [Branch(4, 3)]
    run(first.close())
    run(second.close())
    assert run(sqlite_stores().stats("r", 1)) == [Branch(4, 3)]


def test_concurrent_processes_lose_no_update(state_file: Path, sqlite_stores: Callable[[], SqliteStore]) -> None:
    code = WORKER.format(adds=ADDS_PER_WORKER)
    workers = [subprocess.Popen([sys.executable, "-c", code, str(state_file), str(b)]) for b in (0, 0, 1)]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0, 0]
    stats = run(sqlite_stores().stats("d/p/router", 2))
    assert stats == [Branch(2 * ADDS_PER_WORKER, ADDS_PER_WORKER), Branch(ADDS_PER_WORKER, ADDS_PER_WORKER / 2)]


def test_open_store_picks_sqlite_for_a_path_and_creates_its_folder(tmp_path: Path) -> None:
    store = open_store(tmp_path / "state" / "bandits.db")
    assert isinstance(store, SqliteStore)
    assert (tmp_path / "state" / "bandits.db").is_file()
    run(store.close())


def test_open_store_picks_redis_for_a_redis_url() -> None:
    store = open_store("redis://127.0.0.1:1/0")
    assert isinstance(store, RedisStore)
    run(store.close())


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory, wait_for_port: Any) -> Iterator[str]:
    """A real redis-server on a free loopback port, stopped at the end of the module."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (CI installs it)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_redis_stores_share_state_across_replicas(redis_url: str) -> None:
    async def scenario() -> tuple[list[Branch], list[Branch]]:
        first, second = RedisStore(redis_url), RedisStore(redis_url)
        try:
            await asyncio.gather(*(first.add("d/p/r", 1, 1, 1) for _ in range(20)))
            await asyncio.gather(*(second.add("d/p/r", 1, 2, 0.5) for _ in range(10)))
            await second.add("d/p/r", 0, 1.5, 0.25)
            return await first.stats("d/p/r", 3), await second.stats("d/p/other", 1)
        finally:
            await first.close()
            await second.close()

    shared, other = run(scenario())
    assert shared == [Branch(1.5, 0.25), Branch(40, 25), Branch()]
    assert other == [Branch()]


OPEN_AT_ONCE = """
import sys, time
from daneel.graph.state import SqliteStore
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # all start together, as forked workers do
SqliteStore(sys.argv[1])
"""


def test_workers_opening_a_new_state_file_at_once_all_succeed(tmp_path: Path) -> None:
    path, start = tmp_path / "fresh.sqlite", time.time() + 1.5
    openers = [subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, str(path), str(start)]) for _ in range(6)]
    assert [opener.wait(timeout=120) for opener in openers] == [0] * 6
