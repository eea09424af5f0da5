"""The console's figures: a registry's series grouped by place, as the page charts them."""

from __future__ import annotations

from pathlib import Path

from daneel.observe.metrics import Registry, Slots
from daneel.observe.telemetry import ServerMetrics
from daneel.server.figures import figures


def test_requests_are_added_up_per_place_over_protocols_with_errors_apart() -> None:
    metrics = ServerMetrics(Registry())
    for protocol, code, seconds in (("v2", "200", 0.002), ("seldon", "200", 0.004), ("grpc", "OK", 0.003)):
        metrics.request_seconds.histogram("ab", "main", "", protocol, code).observe(seconds)
    metrics.request_seconds.histogram("ab", "main", "", "v2", "400").observe(0.001)
    metrics.request_seconds.histogram("ab", "main", "", "grpc", "INVALID_ARGUMENT").observe(0.001)
    metrics.request_seconds.histogram("ab", "candidate", "", "v2", "200").observe(0.5)
    metrics.node_seconds.histogram("ab", "main", "classifier", "predict", "ok").observe(0.001)
    metrics.node_seconds.histogram("ab", "main", "classifier", "predict", "model_error").observe(0.001)

    shown = figures(metrics, clock=lambda: 12.5)

    assert shown["time"] == 12.5
    main, candidate = (next(row for row in shown["requests"] if row["predictor"] == p) for p in ("main", "candidate"))
    assert (main["count"], main["errors"]) == (5, 2)
    assert main["sum"] == 0.002 + 0.004 + 0.003 + 0.001 + 0.001
    assert (candidate["count"], candidate["errors"]) == (1, 0)
    assert candidate["buckets"][shown["bounds"].index(0.5)] == 1
    (node,) = shown["nodes"]
    assert (node["node"], node["count"], node["errors"]) == ("classifier", 2, 1)


def test_detectors_and_bandit_arms_are_grouped_per_detector_and_branch() -> None:
    metrics = ServerMetrics(Registry())
    place = ("dep", "default", "model")
    scores = metrics.outlier_score.histogram(*place, "iforest")
    for relative in (0.5, 0.9, 2.0):
        scores.observe(relative)
    metrics.outliers.counter(*place, "iforest").inc()
    metrics.drift_p_value.gauge(*place, "ks", "petal").set(0.01)
    metrics.drift_p_value.gauge(*place, "ks", "sepal").set(0.4)
    metrics.drift_detected.gauge(*place, "ks").set(1.0)
    metrics.drift_tests.counter(*place, "ks", "drift").inc()
    metrics.drift_tests.counter(*place, "ks", "no_drift").inc(3)
    metrics.branch_requests.counter("dep", "default", "bandit", "0").inc(7)
    metrics.branch_feedback.counter("dep", "default", "bandit", "0").inc(2)
    metrics.branch_reward.counter("dep", "default", "bandit", "0").inc(1.5)

    shown = figures(metrics)

    assert shown["outliers"] == [
        {"deployment": "dep", "predictor": "default", "node": "model", "detector": "iforest", "rows": 3, "outliers": 1}
    ]
    (drift,) = shown["drift"]
    assert (drift["detector"], drift["p_values"], drift["detected"]) == ("ks", {"petal": 0.01, "sepal": 0.4}, True)
    assert (drift["drift"], drift["no_drift"]) == (1, 3)
    assert shown["routers"] == [
        {
            "deployment": "dep",
            "predictor": "default",
            "router": "bandit",
            "branch": "0",
            "requests": 7,
            "feedback": 2,
            "reward": 1.5,
        }
    ]


def test_every_workers_series_count_whichever_worker_reads_them(tmp_path: Path) -> None:
    workers = [ServerMetrics(Registry(Slots.shared(tmp_path, worker), tmp_path)) for worker in (1, 2)]
    workers[0].request_seconds.histogram("iris", "", "", "v2", "200").observe(0.001)
    workers[1].request_seconds.histogram("iris", "", "", "v2", "200").observe(0.001)
    workers[1].request_seconds.histogram("iris", "", "", "v2", "500").observe(0.001)
    for metrics in workers:
        (iris,) = figures(metrics)["requests"]
        assert (iris["count"], iris["errors"]) == (3, 1)
