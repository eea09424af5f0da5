"""Metrics that models report themselves, as Seldon's `metrics()` does, and the API a component can use instead.

Seldon's form is a list of `{"type": COUNTER|GAUGE|TIMER, "key": name, "value": number,
"tags": {label: value}}`: a COUNTER is increased by `value`, a GAUGE set to it, and a
TIMER (milliseconds, as in Seldon) observed in a histogram of seconds. Each is labelled
with the deployment and predictor that served the request, then with its tags.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from daneel.observe.metrics import LATENCY_BUCKETS, Family, Registry
from daneel.observe.telemetry import ServerMetrics

log = logging.getLogger("daneel.metrics")

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_OWN_LABELS = ("deployment", "predictor")


def record(metrics: ServerMetrics, reported: Any, deployment: str, predictor: str) -> None:
    """Record each well-formed metric of `reported`; any other is logged and skipped, never an error.

    The list may come from a client: a request's `meta.metrics` passes through a transformer that
    keeps the message's meta, so nothing in it may fail the request.
    """
    if not isinstance(reported, list):
        log.warning("%s: ignoring reported metrics %r: expected a list", deployment, reported)
        return
    for metric in reported:
        try:
            _record_one(metrics, metric, deployment, predictor)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("%s: ignoring the reported metric %r: %s", deployment, metric, exc)


def _record_one(metrics: ServerMetrics, metric: Any, deployment: str, predictor: str) -> None:
    if not isinstance(metric, dict):
        raise TypeError("expected an object with type, key and value")
    kind = str(metric.get("type", "COUNTER")).upper()
    tags = {_name(str(k)): str(v) for k, v in (metric.get("tags") or {}).items()}
    labelnames = (*_OWN_LABELS, *sorted(tags))
    family = metrics.custom(kind, _name(str(metric["key"])), labelnames)
    labels = (deployment, predictor, *(tags[k] for k in labelnames[len(_OWN_LABELS) :]))
    value = float(metric.get("value", 1.0))
    if kind == "GAUGE":
        family.gauge(*labels).set(value)
    elif kind == "TIMER":
        family.histogram(*labels).observe(value / 1000.0)
    else:
        family.counter(*labels).inc(value)


def _name(raw: str) -> str:
    name = _INVALID.sub("_", raw)
    return f"_{name}" if name[:1].isdigit() else name


class UserMetrics:
    """What a component gets to define its own metrics: families on the server's registry.

    `counter("cache_hits_total", "Cache hits.", ["table"]).labels("users").inc()`.
    """

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Family:
        return self._registry.counter(name, help, labelnames)

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Family:
        return self._registry.gauge(name, help, labelnames)

    def histogram(
        self, name: str, help: str, labelnames: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Family:
        return self._registry.histogram(name, help, labelnames, buckets)
