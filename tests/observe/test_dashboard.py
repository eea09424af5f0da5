"""The Grafana dashboard shipped in dashboards/ charts metrics that daneel exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from daneel.observe.metrics import Registry
from daneel.observe.telemetry import ServerMetrics

DASHBOARD = Path(__file__).parents[2] / "dashboards" / "grafana" / "daneel.json"


def test_every_metric_the_dashboard_queries_is_one_daneel_exports() -> None:
    exported = set(ServerMetrics(Registry()).registry.families)
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(?:daneel|seldon)_[a-z_]+", target["expr"])
    }
    assert queried, "the dashboard queries nothing"
    assert queried <= exported, f"not exported: {sorted(queried - exported)}"


def test_predictors_are_charted_side_by_side_and_bandit_rewards_shown() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for wanted in ("requests per second", "errors", "latency", "bandit", "batch size"):
        assert wanted in titles
    latency = next(p for p in dashboard["panels"] if p["title"].startswith("Latency"))
    assert all("by (predictor, le)" in t["expr"] for t in latency["targets"])
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_outliers_and_drift_are_charted() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    for wanted in (
        "daneel_outliers_total",
        "daneel_outlier_score_bucket",
        "daneel_drift_p_value",
        "daneel_drift_detected",
    ):
        assert wanted in exprs
