"""How a server is measured: started alone and timed, checked, warmed up, its memory read, then loaded.

run_all keeps every server up while wrk loads them in turn at each concurrency, so that a change in
the machine's background load falls on all of them alike rather than on whichever ran last; the
further cold starts go in rounds over all the servers for the same reason, once all have stopped.
A server that fails is stopped and its row says why; the run goes on with the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TypeVar

import lineup
import prepare
from load import PAYLOAD, Load, run_wrk
from report import Row
from servers import (
    Fleet,
    Running,
    Spec,
    check_answer,
    cpu_seconds,
    memory_kib,
    process_memory_kib,
    spread,
    wait_ready,
)

T = TypeVar("T")
WARMUP_CONNECTIONS = 16
FAILURES = (RuntimeError, OSError, ValueError)


@dataclass(frozen=True)
class Bench:
    """What every measurement needs: the servers' fleet and tools, wrk and its script, and the durations."""

    fleet: Fleet
    tools: lineup.Tools
    wrk: str
    script: Path
    warmup: float
    duration: float
    levels: tuple[int, ...]
    cold_starts: int


def run_all(bench: Bench, specs: list[Spec]) -> list[Row]:
    rows = [Row(spec.name, spec.label, spec.kind) for spec in specs]
    up: list[tuple[Row, Running]] = []
    for row, spec in zip(rows, specs, strict=True):
        server = guarded(bench.fleet, row, partial(bring_up, bench, spec, row))
        if server is not None:
            up.append((row, server))
    for level in bench.levels:
        measure(bench, up, level)
    for _, server in up:
        bench.fleet.stop(server)
    cold_starts(bench, [(row, server.spec) for row, server in up])
    return rows


def cold_starts(bench: Bench, servers: list[tuple[Row, Spec]]) -> None:
    """The starts after each server's first, once every server has stopped: in rounds, one start of each
    server per round, so that a change in the machine's load falls on all of them rather than on one."""
    for _ in range(bench.cold_starts - 1):
        for row, spec in servers:
            if not row.error:
                seconds = guarded(bench.fleet, row, partial(cold_start, bench, spec))
                if seconds is not None:
                    row.cold_starts.append(seconds)


def bring_up(bench: Bench, spec: Spec, row: Row) -> Running:
    prepare.say(f"starting {spec.label}")
    server = bench.fleet.start(spec)
    row.cold_starts.append(wait_ready(server))
    prepare.say(f"{spec.label}: ready {row.cold_starts[-1]:.2f} s after its command")
    check_answer(server, PAYLOAD)
    run_wrk(bench.wrk, bench.script, server.url, WARMUP_CONNECTIONS, bench.warmup)
    row.rss_kib, row.pss_kib = memory_kib(server.process.pid)
    return server


def measure(bench: Bench, up: list[tuple[Row, Running]], level: int) -> None:
    """Every server at one concurrency, in two turns of half the duration: in order, then in reverse.

    Each server's two turns then lie alike around the middle of the time the level takes, so that a
    change in the machine's load that builds or fades meanwhile falls on all of them alike.
    """
    half = replace(bench, duration=bench.duration / 2)
    turns: dict[str, list[Load]] = {}
    for row, server in [*up, *reversed(up)]:
        if not row.error:
            load = guarded(bench.fleet, row, partial(loaded, half, server, level))
            turns.setdefault(row.name, []).extend([load] if load is not None else [])
    for row, _ in up:
        if not row.error and turns.get(row.name):
            load = row.loads[level] = joined_loads(turns[row.name])
            say_load(row.label, level, load)


def loaded(bench: Bench, server: Running, level: int) -> Load:
    """One wrk run, with the CPU time the server's processes spent per request meanwhile."""
    before = cpu_seconds(server.process.pid)
    load = run_wrk(bench.wrk, bench.script, server.url, level, bench.duration)
    spent = cpu_seconds(server.process.pid) - before
    return replace(load, cpu_us=spent / max(load.requests, 1) * 1e6)


def cold_start(bench: Bench, spec: Spec) -> float:
    server = bench.fleet.start(spec)
    try:
        seconds = wait_ready(server)
    finally:
        bench.fleet.stop(server)
    prepare.say(f"{spec.label}: cold start {seconds:.2f} s")
    return seconds


@dataclass(frozen=True)
class Memory:
    """A server's memory once every worker has answered requests; KiB, each process's by pid."""

    rss_kib: int
    pss_kib: int
    processes: dict[int, tuple[int, int]]
    main: int

    @property
    def workers(self) -> dict[int, tuple[int, int]]:
        """The only process, or all but the supervisor."""
        return {pid: m for pid, m in self.processes.items() if pid != self.main or len(self.processes) == 1}


def memory_one(bench: Bench, spec: Spec, requests: int = 120, clients: int = 6) -> Memory:
    """Starts spec, spreads requests over its workers (each reads its whole model), reads its memory, stops it."""
    prepare.say(f"starting {spec.label}")
    server = bench.fleet.start(spec)
    try:
        wait_ready(server)
        spread(server, PAYLOAD, requests, clients)  # first: it waits for the workers that still load
        check_answer(server, PAYLOAD)
        each = process_memory_kib(server.process.pid)
    finally:
        bench.fleet.stop(server)
    memory = Memory(sum(r for r, _ in each.values()), sum(p for _, p in each.values()), each, server.process.pid)
    prepare.say(f"{spec.label}: {len(each)} processes, RSS {memory.rss_kib >> 10} MiB, PSS {memory.pss_kib >> 10} MiB")
    return memory


def load_pair(bench: Bench, specs: tuple[Spec, Spec], level: int) -> tuple[Load, Load]:
    """Two servers up side by side, each checked and warmed, then loaded as :func:`measure` does: A, B, B, A."""
    first, second = load_together(bench, specs, (level,))
    return first[level], second[level]


def load_together(
    bench: Bench, specs: Sequence[Spec], levels: Sequence[int], payload: bytes = PAYLOAD
) -> list[dict[int, Load]]:
    """Servers up side by side, each checked with `payload` and warmed, then loaded at each level as
    :func:`measure` does; each one's loads by level, or a RuntimeError naming the first that failed."""
    up: list[tuple[Row, Running]] = []
    try:
        for spec in specs:
            prepare.say(f"starting {spec.label}")
            server = bench.fleet.start(spec)
            up.append((Row(spec.name, spec.label, spec.kind), server))
            wait_ready(server)
            check_answer(server, payload)
            run_wrk(bench.wrk, bench.script, server.url, WARMUP_CONNECTIONS, bench.warmup)
        for level in levels:
            measure(bench, up, level)
    finally:
        for _, server in up:
            bench.fleet.stop(server)
    failed = next((row for row, _ in up if row.error or any(level not in row.loads for level in levels)), None)
    if failed is not None:
        raise RuntimeError(f"{failed.label}: {failed.error or 'not measured'}")
    return [row.loads for row, _ in up]


def joined_loads(loads: list[Load]) -> Load:
    """Turns of load on one server as one: counts, time and CPU added up; p50 and p99 weighted by requests."""
    requests = sum(load.requests for load in loads)
    seconds = sum(load.requests / load.rps for load in loads if load.rps)

    def weighted(value: Callable[[Load], float]) -> float:
        return sum(value(load) * load.requests for load in loads) / max(requests, 1)

    failed = sum(load.failed for load in loads)
    p50, p99, cpu = weighted(lambda x: x.p50_ms), weighted(lambda x: x.p99_ms), weighted(lambda x: x.cpu_us)
    return Load(requests, requests / seconds if seconds else 0.0, p50, p99, failed, cpu)


def guarded(fleet: Fleet, row: Row, step: Callable[[], T]) -> T | None:
    """Runs one step for a server; a failure is written on its row and stops the server, not the run."""
    try:
        return step()
    except FAILURES as exc:
        row.error = row.error or str(exc).splitlines()[0]
        prepare.say(f"{row.label}: {exc}")
        for server in [s for s in fleet.running if s.spec.name == row.name]:
            fleet.stop(server)
        return None


def say_load(label: str, level: int, load: Load) -> None:
    failed = f", {load.failed} failed" if load.failed else ""
    figures = f"{load.rps:,.0f} req/s, p50 {load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms, {load.cpu_us:.0f} CPU µs/req"
    prepare.say(f"{label} c{level}: {figures}{failed}")
