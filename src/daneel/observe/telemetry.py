"""What one serving process records about its requests: metrics, request logs and traces.

A :class:`Telemetry` is made by each worker process when it starts and handed down
to what serves and records (the edges, the data plane, graphs, deployments); none of
it is global. Each part is None when it is off, so the request path pays an `is None`
test for it and nothing more.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from daneel.observe.metrics import SIZE_BUCKETS, Family, Registry

if TYPE_CHECKING:
    from daneel.observe.payloads import PayloadLogs
    from daneel.observe.tracing import Tracing

#: The labels of request metrics (docs/metrics.md): for a node called on its own path, `node` names it.
REQUEST_LABELS = ("deployment", "predictor", "node", "protocol", "code")
NODE_LABELS = ("deployment", "predictor", "node", "method", "code")
BRANCH_LABELS = ("deployment", "predictor", "router", "branch")
DETECTOR_LABELS = ("deployment", "predictor", "node", "detector")
#: An outlier score divided by its detector's threshold: 1 is the line for every detector.
RELATIVE_BUCKETS = (0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.5, 2.0, 4.0, 8.0, 16.0)
#: Seldon's executor metrics, named and labelled as Seldon's dashboards expect.
SELDON_SERVER_LABELS = ("deployment_name", "predictor_name", "predictor_version", "service", "method", "code")
SELDON_CLIENT_LABELS = (
    "deployment_name", "predictor_name", "predictor_version", "model_name", "model_image", "model_version",
    "method", "code", "service",
)  # fmt: skip


class ServerMetrics:
    """daneel's own metric families on one registry; docs/metrics.md describes each."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.requests = registry.counter("daneel_requests_total", "Requests answered.", REQUEST_LABELS)
        self.request_seconds = registry.histogram(
            "daneel_request_duration_seconds", "Time from a request's arrival to its answer.", REQUEST_LABELS
        )
        self.in_flight = registry.gauge(
            "daneel_requests_in_flight", "Requests being served now.", ("deployment", "protocol")
        )
        self.node_seconds = registry.histogram(
            "daneel_node_duration_seconds", "Time a graph node took for one call.", NODE_LABELS
        )
        self.batch_size = registry.histogram(
            "daneel_batch_size", "Requests merged into one call by dynamic batching.", ("model",), SIZE_BUCKETS
        )
        self.load_seconds = registry.gauge(
            "daneel_model_load_seconds",
            "How long the model took to load (the slowest worker).",
            ("model",),
            merge="max",
        )
        self.model_state = registry.gauge(
            "daneel_model_state", "Worker processes holding the model in each state.", ("model", "state")
        )
        self.feedback = registry.counter("daneel_feedback_total", "Feedback received.", ("deployment", "predictor"))
        self.reward = registry.counter(
            "daneel_feedback_reward_total", "Sum of the rewards feedback carried.", ("deployment", "predictor")
        )
        self.branch_requests = registry.counter(
            "daneel_router_requests_total", "Requests each router sent to each branch.", BRANCH_LABELS
        )
        self.branch_feedback = registry.counter(
            "daneel_router_feedback_total", "Feedback each router received for each branch.", BRANCH_LABELS
        )
        self.branch_reward = registry.counter(
            "daneel_router_reward_total", "Sum of the rewards each router received for each branch.", BRANCH_LABELS
        )
        self.seldon_server = registry.histogram(
            "seldon_api_executor_server_requests_seconds", "Seldon's: requests to the executor.", SELDON_SERVER_LABELS
        )
        self.seldon_client = registry.histogram(
            "seldon_api_executor_client_requests_seconds", "Seldon's: the executor's calls to each component.",
            SELDON_CLIENT_LABELS,
        )  # fmt: skip

        self._detectors(registry)

    def _detectors(self, registry: Registry) -> None:
        self.outlier_score = registry.histogram(
            "daneel_outlier_score", "Outlier scores over the detector's threshold (above 1: an outlier), per row.",
            DETECTOR_LABELS, RELATIVE_BUCKETS,
        )  # fmt: skip
        self.outliers = registry.counter("daneel_outliers_total", "Rows an outlier detector flagged.", DETECTOR_LABELS)
        self.drift_p_value = registry.gauge(
            "daneel_drift_p_value", "The last drift test's p-value, per feature (the lowest over workers).",
            (*DETECTOR_LABELS, "feature"), merge="min",
        )  # fmt: skip
        self.drift_detected = registry.gauge(
            "daneel_drift_detected", "1 when the last drift test found drift (in any worker), else 0.", DETECTOR_LABELS,
            merge="max",
        )  # fmt: skip
        self.drift_tests = registry.counter(
            "daneel_drift_tests_total", "Windows a drift detector tested, by outcome.", (*DETECTOR_LABELS, "outcome")
        )
        self.detector_dropped = registry.counter(
            "daneel_detector_dropped_rows_total", "Rows async detectors dropped because they fell behind.",
            ("deployment", "predictor", "node"),
        )  # fmt: skip

    def custom(self, kind: str, name: str, labelnames: tuple[str, ...]) -> Family:
        """A family for a user's metric (Seldon's COUNTER, GAUGE or TIMER)."""
        help = f"Reported by the model ({kind})."
        if kind == "COUNTER":
            return self.registry.counter(name, help, labelnames)
        if kind == "GAUGE":
            return self.registry.gauge(name, help, labelnames)
        return self.registry.histogram(name, help, labelnames)


@dataclass(frozen=True, slots=True)
class Telemetry:
    metrics: ServerMetrics | None = None
    tracing: Tracing | None = None
    payloads: PayloadLogs | None = None

    async def close(self) -> None:
        parts = [part.close() for part in (self.payloads, self.tracing) if part is not None]
        await asyncio.gather(*parts, return_exceptions=True)
        if self.metrics is not None:
            self.metrics.registry.close()


#: What code built without a server (tests, `daneel validate`) records into: nothing.
OFF = Telemetry()
