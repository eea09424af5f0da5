"""Request metrics as the REST and gRPC edges record them: counts, latencies, requests in flight."""

from __future__ import annotations

from collections.abc import Callable

from daneel.observe.metrics import Gauge, Histogram
from daneel.observe.telemetry import ServerMetrics

#: The `deployment` and `node` labels of a request to a model name (the default model for None).
Labeller = Callable[[str | None], tuple[str, str]]


class RequestMeter:
    """One protocol's request series, each made once and kept, so that a request costs a lookup and one observation.

    A request's latency series is also its count (`daneel_requests_total` views its count) and its Seldon
    series (`seldon_api_executor_server_requests_seconds` views it): the three always move together.
    """

    def __init__(
        self, metrics: ServerMetrics, labels: Labeller, protocol: str, feedback: frozenset[str] = frozenset()
    ) -> None:
        """`feedback`: services that carry feedback, counted by the feedback metrics and Seldon's, not as requests."""
        self._metrics = metrics
        self._labels = labels
        self.protocol = protocol
        self._feedback = feedback
        self._done: dict[tuple[str | None, str, str | None, str], Histogram] = {}
        self._in_flight: dict[str | None, Gauge] = {}

    def started(self, model: str | None) -> Gauge:
        """Count a request in flight; the caller decreases the gauge returned once it is answered."""
        gauge = self._in_flight.get(model)
        if gauge is None:
            deployment = self._labels(model)[0]
            gauge = self._metrics.in_flight.gauge(deployment, self.protocol)
            if deployment or model is None:  # names that are not served are not kept: anyone can make up more
                self._in_flight[model] = gauge
        gauge.inc()
        return gauge

    def done(self, model: str | None, service: str, predictor: str | None, code: str, seconds: float) -> None:
        key = (model, service, predictor, code)
        series = self._done.get(key)
        if series is None:
            series = self._series(*key)
            if model is None or self._labels(model)[0]:  # names that are not served are not kept
                self._done[key] = series
        series.observe(seconds)

    def forget(self) -> None:
        """Drop the label values kept for model names: after models are loaded or unloaded at runtime."""
        self._done.clear()
        self._in_flight.clear()

    def _series(self, model: str | None, service: str, predictor: str | None, code: str) -> Histogram:
        """The one series a request observes: daneel's latency, which the others view; Seldon's alone for feedback."""
        metrics = self._metrics
        deployment, node = self._labels(model)
        seldon = (deployment, predictor or "", "", service if deployment else "", "POST", code)
        if service in self._feedback:
            return metrics.seldon_server.histogram(*seldon)
        labels = (deployment, predictor or "", node, self.protocol, code)
        series = metrics.request_seconds.histogram(*labels)
        metrics.requests.view(series, *labels)
        metrics.seldon_server.view(series, *seldon)
        return series
