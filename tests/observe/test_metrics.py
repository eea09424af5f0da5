"""The metrics core: series, Prometheus's text format (read back with Prometheus's own parser), shared slots."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from daneel.observe.metrics import Registry, Slots


def samples(registry: Registry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels, as Prometheus would read them."""
    text = registry.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counters_and_gauges_render_as_prometheus_reads_them() -> None:
    registry = Registry()
    requests = registry.counter("app_requests_total", "Requests.", ("model", "code"))
    requests.counter("iris", "200").inc()
    requests.counter("iris", "200").inc(2)
    requests.counter("iris", "500").inc()
    registry.gauge("app_in_flight", "In flight.").gauge().set(3)
    found = samples(registry)
    assert found[("app_requests_total", (("code", "200"), ("model", "iris")))] == 3
    assert found[("app_requests_total", (("code", "500"), ("model", "iris")))] == 1
    assert found[("app_in_flight", ())] == 3


def test_histogram_buckets_are_cumulative_and_resolve_sub_millisecond_latencies() -> None:
    registry = Registry()
    seconds = registry.histogram("app_seconds", "Latency.", ("model",))
    for value in (0.00008, 0.0003, 0.0003, 0.002, 30.0):
        seconds.histogram("iris").observe(value)
    found = samples(registry)

    def bucket(le: str) -> float:
        return found[("app_seconds_bucket", (("le", le), ("model", "iris")))]

    assert bucket("0.0001") == 1
    assert bucket("0.0005") == 3
    assert bucket("0.0025") == 4
    assert bucket("10.0") == 4
    assert bucket("+Inf") == 5
    assert found[("app_seconds_count", (("model", "iris"),))] == 5
    assert found[("app_seconds_sum", (("model", "iris"),))] == pytest.approx(30.0026, abs=1e-4)


def test_label_values_are_escaped() -> None:
    registry = Registry()
    registry.counter("app_total", "Odd labels.", ("name",)).counter('a "quoted"\\back\nslash').inc()
    assert samples(registry)[("app_total", (("name", 'a "quoted"\\back\nslash'),))] == 1


def test_a_name_reused_with_other_labels_is_refused() -> None:
    registry = Registry()
    registry.counter("app_total", "x", ("a",))
    assert registry.counter("app_total", "x", ("a",)) is registry.counter("app_total", "x", ("a",))
    with pytest.raises(ValueError, match="app_total"):
        registry.gauge("app_total", "x", ("a",))
    with pytest.raises(ValueError, match="takes labels"):
        registry.counter("app_total", "x", ("a",)).counter("one", "two")


def _worker(folder: Path, count: int, ready: Any, done: Any) -> None:
    registry = Registry(Slots.shared(folder), folder)
    registry.counter("app_requests_total", "Requests.", ("model",)).counter("iris").inc(count)
    registry.gauge("app_in_flight", "In flight.").gauge().set(1)
    registry.counter("app_worker_only_total", "Made by the other workers only.").counter().inc()
    ready.set()
    done.wait(30)


def test_workers_sharing_a_folder_are_summed_and_only_live_workers_gauges_count(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    done = context.Event()
    workers = []
    for count in (3, 4):
        ready = context.Event()
        worker = context.Process(target=_worker, args=(tmp_path, count, ready, done))
        worker.start()
        assert ready.wait(60)
        workers.append(worker)
    # The scraping process is a worker too, with series of its own.
    mine = Registry(Slots.shared(tmp_path), tmp_path)
    mine.counter("app_requests_total", "Requests.", ("model",)).counter("iris").inc(5)
    mine.gauge("app_in_flight", "In flight.").gauge().set(1)
    found = samples(mine)
    assert found[("app_requests_total", (("model", "iris"),))] == 12
    assert found[("app_in_flight", ())] == 3
    assert found[("app_worker_only_total", ())] == 2, "families only other workers made are rendered too"
    assert found[("app_worker_only_total", ())] == 2, "families only other workers made are rendered too"

    done.set()
    for worker in workers:
        worker.join(30)
    found = samples(mine)
    assert found[("app_requests_total", (("model", "iris"),))] == 12, "a worker that exited still counted requests"
    assert found[("app_in_flight", ())] == 1, "gauges of workers that exited are left out"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(str(os.getpid()))) == [
        f"{os.getpid()}.series",
        f"{os.getpid()}.values",
    ]
