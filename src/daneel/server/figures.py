"""The console's live figures: the server's own metrics, added up over its workers and grouped for charts.

Each call reads the registry as a scrape of `/metrics` does (every worker's series combined), and
answers running totals: request counts, errors and latency buckets per model, predictor and graph
node; each bandit arm's requests, feedback and rewards; each detector's rows, outliers and drift
tests. Rates and percentiles over the last minutes are differences between two such readings,
which the console's page takes every few seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from daneel.observe.metrics import Family, Totals
from daneel.observe.telemetry import ServerMetrics

_OK_CODES = frozenset(("OK", "ok"))


def figures(metrics: ServerMetrics, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """Running totals of every figure the console charts, read now from every worker."""
    by_family = _by_family(metrics.registry.collect()[1])

    def series(family: Family) -> list[tuple[tuple[str, ...], list[float]]]:
        return by_family.get(family.name, [])

    return {
        "time": clock(),
        "bounds": list(metrics.request_seconds.buckets),
        "requests": _timings(series(metrics.request_seconds)),
        "nodes": _timings(series(metrics.node_seconds)),
        "in_flight": _in_flight(series(metrics.in_flight)),
        "routers": _routers(metrics, series),
        "outliers": _outliers(metrics, series),
        "drift": _drift(metrics, series),
    }


def _by_family(totals: Totals) -> dict[str, list[tuple[tuple[str, ...], list[float]]]]:
    grouped: dict[str, list[tuple[tuple[str, ...], list[float]]]] = {}
    for (name, labels), values in totals.items():
        grouped.setdefault(name, []).append((labels, values))
    return grouped


def _timings(series: list[tuple[tuple[str, ...], list[float]]]) -> list[dict[str, Any]]:
    """Latency histograms added up per place (their first three labels) over the rest: count, errors (a `code`,
    the last label, that is not 2xx or OK), buckets and sum."""
    grouped: dict[tuple[str, ...], dict[str, Any]] = {}
    for labels, values in series:
        key = labels[:3]
        found = grouped.get(key)
        if found is None:
            found = grouped[key] = {"buckets": [0.0] * (len(values) - 2), "sum": 0.0, "count": 0.0, "errors": 0.0}
        found["buckets"] = [a + b for a, b in zip(found["buckets"], values[:-2], strict=True)]
        found["sum"] += values[-2]
        found["count"] += values[-1]
        if _failed(labels[-1]):
            found["errors"] += values[-1]
    return [
        {"deployment": key[0], "predictor": key[1], "node": key[2], **found} for key, found in sorted(grouped.items())
    ]


def _failed(code: str) -> bool:
    return not (code in _OK_CODES or code.startswith("2"))


def _in_flight(series: list[tuple[tuple[str, ...], list[float]]]) -> dict[str, float]:
    """Requests being served now, per deployment (over every protocol)."""
    found: dict[str, float] = {}
    for (deployment, _protocol), values in series:
        found[deployment] = found.get(deployment, 0.0) + values[0]
    return found


Series = Callable[[Family], list[tuple[tuple[str, ...], list[float]]]]


def _routers(metrics: ServerMetrics, series: Series) -> list[dict[str, Any]]:
    """Each router's branches: requests sent there, feedback received for it, and the rewards it carried."""
    arms: dict[tuple[str, ...], dict[str, float]] = {}
    for key, family in (
        ("requests", metrics.branch_requests),
        ("feedback", metrics.branch_feedback),
        ("reward", metrics.branch_reward),
    ):
        for labels, values in series(family):
            arm = arms.setdefault(labels, {"requests": 0.0, "feedback": 0.0, "reward": 0.0})
            arm[key] += values[0]
    return [
        {"deployment": d, "predictor": p, "router": r, "branch": b, **arm} for (d, p, r, b), arm in sorted(arms.items())
    ]


def _outliers(metrics: ServerMetrics, series: Series) -> list[dict[str, Any]]:
    """Each outlier detector: rows scored and rows flagged."""
    found: dict[tuple[str, ...], dict[str, float]] = {}
    for labels, values in series(metrics.outlier_score):
        found.setdefault(labels, {"rows": 0.0, "outliers": 0.0})["rows"] += values[-1]
    for labels, values in series(metrics.outliers):
        found.setdefault(labels, {"rows": 0.0, "outliers": 0.0})["outliers"] += values[0]
    return [_detector(labels, counts) for labels, counts in sorted(found.items())]


def _drift(metrics: ServerMetrics, series: Series) -> list[dict[str, Any]]:
    """Each drift detector: the last p-value per feature, whether the last test found drift, tests by outcome."""
    found: dict[tuple[str, ...], dict[str, Any]] = {}

    def entry(labels: tuple[str, ...]) -> dict[str, Any]:
        return found.setdefault(labels[:4], {"p_values": {}, "detected": False, "drift": 0.0, "no_drift": 0.0})

    for labels, values in series(metrics.drift_p_value):
        entry(labels)["p_values"][labels[4]] = values[0]
    for labels, values in series(metrics.drift_detected):
        entry(labels)["detected"] = values[0] >= 1.0
    for labels, values in series(metrics.drift_tests):
        if labels[4] in ("drift", "no_drift"):
            entry(labels)[labels[4]] += values[0]
    return [_detector(labels, counts) for labels, counts in sorted(found.items())]


def _detector(labels: tuple[str, ...], figures: dict[str, Any]) -> dict[str, Any]:
    deployment, predictor, node, detector = labels
    return {"deployment": deployment, "predictor": predictor, "node": node, "detector": detector, **figures}
