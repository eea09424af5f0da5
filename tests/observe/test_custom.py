"""Seldon's custom metrics: what a model (or, through a pass-through node, a client) reports in `meta.metrics`."""

from __future__ import annotations

from typing import Any

import pytest

from daneel.observe import custom
from daneel.observe.metrics import Registry
from daneel.observe.telemetry import ServerMetrics


@pytest.mark.parametrize(
    "reported",
    [
        [[None, None]],  # found by schemathesis: a list where an object belongs was a 500
        ["text", 3, None],
        [{"key": "x", "tags": ["not", "an", "object"]}],
        [{"type": "GAUGE"}],
        {"key": "not a list"},
        "metrics",
        7,
    ],
)
def test_malformed_metrics_are_skipped_not_raised(reported: Any, caplog: pytest.LogCaptureFixture) -> None:
    metrics = ServerMetrics(Registry())
    custom.record(metrics, reported, "iris", "")
    assert "ignoring" in caplog.text
    assert b"Reported by the model" not in metrics.registry.render()


def test_the_well_formed_ones_beside_them_are_recorded() -> None:
    metrics = ServerMetrics(Registry())
    custom.record(metrics, [[1], {"type": "COUNTER", "key": "rows_total", "value": 2}, "x"], "iris", "main")
    assert b'rows_total{deployment="iris",predictor="main"} 2' in metrics.registry.render()
