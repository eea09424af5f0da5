"""One detector of a deployment as it serves: loaded, scoring rows or testing windows, and reporting.

A detector is daneel's own, fitted by `daneel detector fit` into the folder its `modelUri` names, or the
user's class (:mod:`daneel.detect.users`). Either reports the same metrics: outlier scores relative to the
detector's threshold (so 1 is the line for every detector), rows flagged, each drift test's p-values and
whether the last test found drift; and a drift found is an event to the deployment's request-log sink.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from daneel.detect import DriftResult, Fitted, load
from daneel.detect.users import UserDetector, load_user
from daneel.errors import LoadError
from daneel.observe.telemetry import Telemetry
from daneel.spec.model import Detector as DetectorSpec
from daneel.spec.model import DetectorAction, DetectorKind

log = logging.getLogger("daneel.detect")


@dataclass(frozen=True, slots=True)
class Place:
    """Where a detector watches: a predictor's input (node "") or a node's."""

    deployment: str
    predictor: str
    node: str = ""

    def path(self) -> str:
        return "/".join(part for part in (self.deployment, self.predictor, self.node) if part)


class Detector:
    """A detector from a deployment file; :meth:`load` reads its folder or starts its class."""

    def __init__(self, spec: DetectorSpec, folder: Path | None, place: Place, telemetry: Telemetry) -> None:
        self.spec = spec
        self.name = spec.name
        self.folder = folder
        self.place = place
        self.telemetry = telemetry
        self.outlier = spec.kind is DetectorKind.OUTLIER
        self.synchronous = spec.synchronous
        self.rejects = spec.action is DetectorAction.REJECT
        self.threshold = 0.0
        self.window = 0
        self.method = "user" if spec.implementation else ""
        self.names: tuple[str, ...] = ()
        self.width: int | None = None  # columns the detector takes; None when a user's class does not say
        self._fitted: Fitted | None = None
        self._user: UserDetector | None = None
        self._record: Callable[[np.ndarray, np.ndarray], None] = _nothing

    async def load(self) -> None:
        await asyncio.to_thread(self._load)
        self._metrics()

    def _load(self) -> None:
        spec = self.spec
        kind = spec.kind.value
        if spec.implementation:
            self._user = load_user(spec.implementation, self.folder, kind, self.name, spec.parameters)
            self.threshold, self.window = self._user.threshold, self._user.window
            return
        assert self.folder is not None
        try:
            fitted = load(self.folder, spec.parameters)
        except LoadError as exc:
            raise LoadError(f"{self.name}: {exc.message}") from exc
        if fitted.kind != kind:
            raise LoadError(f"{self.name}: kind is {kind}, but {self.folder} holds a {fitted.kind} detector")
        self._fitted = fitted
        self.threshold, self.window, self.method = fitted.threshold, fitted.window, fitted.method
        self.names = tuple(fitted.features.names)
        self.width = len(self.names)

    # Outliers

    def score(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's score (higher is more unusual) and whether it is an outlier; recorded in the metrics.

        A row is an outlier when it scores above the threshold, or has no score (a NaN in the row).
        """
        scorer = self._user if self._user is not None else self._fitted.scorer if self._fitted else None
        assert scorer is not None
        scores = scorer.score(rows)
        flagged = ~(scores <= self.threshold)
        self._record(scores, flagged)
        return scores, flagged

    def unusual(self, row: np.ndarray) -> list[str]:
        """Why a row is unusual, feature by feature, as far as the detector knows its training data."""
        return self._fitted.features.unusual(row) if self._fitted is not None else []

    # Drift

    def test(self, window: np.ndarray) -> DriftResult:
        tester = self._user if self._user is not None else self._fitted.tester if self._fitted else None
        assert tester is not None
        result = tester.test(window)
        self._report(result)
        return result

    def _report(self, result: DriftResult) -> None:
        metrics = self.telemetry.metrics
        labels = (self.place.deployment, self.place.predictor, self.place.node, self.name)
        if metrics is not None:
            for feature, p in result.p_values.items():
                metrics.drift_p_value.gauge(*labels, feature).set(p)
            metrics.drift_detected.gauge(*labels).set(1.0 if result.drift else 0.0)
            metrics.drift_tests.counter(*labels, "drift" if result.drift else "no_drift").inc()
        if result.drift:
            drifted = ", ".join(result.drifted)
            log.warning("%s: drift detected by %s over %d rows: %s", self.place.path(), self.name, result.rows, drifted)

    def event(self, result: DriftResult) -> dict[str, Any]:
        """What the request-log sink is told when a window has drifted."""
        return {
            "detector": self.name,
            "method": self.method,
            "deployment": self.place.deployment,
            "predictor": self.place.predictor,
            "node": self.place.node or None,
            "rows": result.rows,
            "threshold": self.threshold,
            "level": result.level,
            "p_values": result.p_values,
            "drifted": list(result.drifted),
        }

    def _metrics(self) -> None:
        metrics = self.telemetry.metrics
        if metrics is None or not self.outlier:
            return
        labels = (self.place.deployment, self.place.predictor, self.place.node, self.name)
        scores, flagged = metrics.outlier_score.histogram(*labels), metrics.outliers.counter(*labels)
        threshold = self.threshold if self.threshold > 0 else 1.0

        def record(values: np.ndarray, flags: np.ndarray) -> None:
            for value in (values / threshold).tolist():
                scores.observe(value if value == value else math.inf)  # NaN: a row with a missing value
            flagged.inc(float(np.count_nonzero(flags)))

        self._record = record


def _nothing(scores: np.ndarray, flags: np.ndarray) -> None:
    pass


def describe_rows(detector: Detector, rows: np.ndarray, scores: np.ndarray, flagged: np.ndarray) -> str:
    """The outliers of a request, for a 422 that says which rows and which features (three rows at most)."""
    indices = np.flatnonzero(flagged)
    parts = []
    for i in indices[:3].tolist():
        reasons = detector.unusual(rows[i])
        why = f": {'; '.join(reasons)}" if reasons else ""
        parts.append(f"row {i} scores {scores[i]:.4g}, above the threshold {detector.threshold:.4g}{why}")
    more = f"; and {len(indices) - 3} more rows" if len(indices) > 3 else ""
    return f"outlier detector {detector.name!r} rejects {len(indices)} of {len(rows)} rows: {' | '.join(parts)}{more}"
