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


def test_a_family_views_another_familys_series_and_one_observation_records_both() -> None:
    registry = Registry()
    mine = registry.histogram("app_node_seconds", "Mine.", ("node",))
    theirs = registry.histogram("app_client_seconds", "Theirs.", ("model_name", "service"))
    calls = registry.counter("app_calls_total", "Calls.", ("node",))
    for node in ("a", "b"):
        series = mine.histogram(node)
        theirs.view(series, node, "predict")
        theirs.view(series, node, "predict")  # viewing it again must not count it twice
        calls.view(series, node)
    mine.histogram("a").observe(0.0003)
    mine.histogram("a").observe(0.002)
    mine.histogram("b").observe(0.0003)
    found = samples(registry)
    for node, count in (("a", 2), ("b", 1)):
        client = (("model_name", node), ("service", "predict"))
        assert found[("app_client_seconds_count", client)] == found[("app_node_seconds_count", (("node", node),))]
        assert found[("app_client_seconds_count", client)] == count
        assert found[("app_calls_total", (("node", node),))] == count
    assert found[("app_client_seconds_bucket", (("le", "0.0005"), ("model_name", "a"), ("service", "predict")))] == 1
    assert found[("app_client_seconds_sum", (("model_name", "a"), ("service", "predict")))] == pytest.approx(0.0023)


def test_views_of_one_label_set_add_up_with_the_familys_own_series() -> None:
    registry = Registry()
    source = registry.histogram("app_request_seconds", "Requests.", ("path",))
    seldon = registry.histogram("app_seldon_seconds", "Seldon's.", ("code",))
    for path in ("/a", "/b"):
        seldon.view(source.histogram(path), "200")
        source.histogram(path).observe(0.001)
    seldon.histogram("200").observe(0.001)  # a series of its own under the same labels
    assert samples(registry)[("app_seldon_seconds_count", (("code", "200"),))] == 3


def test_a_view_must_suit_the_family() -> None:
    registry = Registry()
    seconds = registry.histogram("app_seconds", "x", ("a",)).histogram("1")
    with pytest.raises(ValueError, match="cannot view"):
        registry.histogram("app_sizes", "x", ("a",), buckets=(1, 2)).view(seconds, "1")
    with pytest.raises(ValueError, match="cannot view"):
        registry.gauge("app_level", "x", ("a",)).view(seconds, "1")
    with pytest.raises(ValueError, match="takes labels"):
        registry.counter("app_total", "x", ("a",)).view(seconds, "1", "2")
    with pytest.raises(ValueError, match="own registry"):
        Registry().histogram("app_seconds", "x", ("a",)).view(seconds, "1")


def test_a_gauges_merge_mode_is_checked_and_fixed_by_its_first_declaration() -> None:
    registry = Registry()
    registry.gauge("app_p_value", "x", ("feature",), merge="min")
    assert registry.gauge("app_p_value", "x", ("feature",), merge="min").merge == "min"
    with pytest.raises(ValueError, match="app_p_value"):
        registry.gauge("app_p_value", "x", ("feature",))
    with pytest.raises(ValueError, match="merge 'mean'"):
        registry.gauge("app_other", "x", merge="mean")  # type: ignore[arg-type]


def _worker(folder: Path, count: int, ready: Any, done: Any) -> None:
    registry = Registry(Slots.shared(folder), folder)
    registry.counter("app_requests_total", "Requests.", ("model",)).counter("iris").inc(count)
    registry.gauge("app_in_flight", "In flight.").gauge().set(1)
    registry.gauge("app_p_value", "Lowest wins.", ("feature",), merge="min").gauge("x").set(count / 10)
    registry.gauge("app_load_seconds", "Highest wins.", merge="max").gauge().set(count)
    registry.gauge("app_worker_only_p", "Only the other workers declare it.", merge="min").gauge().set(count / 10)
    registry.counter("app_worker_only_total", "Made by the other workers only.").counter().inc()
    ready.set()
    done.wait(30)


def test_workers_sharing_a_folder_are_summed_and_only_live_workers_gauges_merge(tmp_path: Path) -> None:
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
    mine.gauge("app_p_value", "Lowest wins.", ("feature",), merge="min").gauge("x").set(0.5)
    mine.gauge("app_load_seconds", "Highest wins.", merge="max").gauge().set(2)
    found = samples(mine)
    assert found[("app_requests_total", (("model", "iris"),))] == 12
    assert found[("app_in_flight", ())] == 3
    assert found[("app_p_value", (("feature", "x"),))] == 0.3, "the lowest of 0.3, 0.4 and 0.5, not their sum"
    assert found[("app_load_seconds", ())] == 4, "the highest of 3, 4 and 2"
    assert found[("app_worker_only_p", ())] == 0.3, "the merge mode travels with the family to other workers"
    assert found[("app_worker_only_total", ())] == 2, "families only other workers made are rendered too"

    done.set()
    for worker in workers:
        worker.join(30)
    found = samples(mine)
    assert found[("app_requests_total", (("model", "iris"),))] == 12, "a worker that exited still counted requests"
    assert found[("app_in_flight", ())] == 1, "gauges of workers that exited are left out"
    assert found[("app_p_value", (("feature", "x"),))] == 0.5, "whatever mode merges them"
    assert found[("app_load_seconds", ())] == 2
    assert ("app_worker_only_p", ()) not in found
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(str(os.getpid()))) == [
        f"{os.getpid()}.series",
        f"{os.getpid()}.values",
    ]
