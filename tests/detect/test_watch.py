"""A component watched by detectors, in process: users' detector classes, a real metrics registry, a real
request log written to a file."""

from __future__ import annotations

import asyncio
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from daneel.detect.running import Detector, Place
from daneel.detect.stream import Stream
from daneel.detect.watch import Watched
from daneel.errors import InvalidInput, Rejected
from daneel.observe.metrics import Registry
from daneel.observe.payloads import PayloadLogs
from daneel.observe.telemetry import ServerMetrics, Telemetry
from daneel.protocol.payload import Payload
from daneel.runtime.component import Component
from daneel.spec.model import Detector as DetectorSpec

DETECTORS = """
import numpy as np


class SumTooBig:
    def __init__(self, threshold=10.0):
        self.threshold = threshold

    def score(self, X):
        return np.abs(X).sum(axis=1)


class MeanAbove:
    window = 4
    threshold = 0.05

    def score(self, X):
        return {"mean": 0.0 if X.mean() > 5 else 1.0}
"""


class Echo(Component):
    name = "echo"
    implementation = "echo"
    raw_methods = frozenset()

    def __init__(self) -> None:
        self.seen: list[Payload] = []

    async def predict(self, payload: Payload) -> Payload:
        self.seen.append(payload)
        return Payload(payload.data, meta={"tags": {"mine": 1}})


class RawEcho(Echo):
    raw_methods = frozenset({"predict"})

    async def call_raw(self, method: str, message: Any) -> Any:
        return {"data": message["data"], "meta": {}}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "detectors.py").write_text(textwrap.dedent(DETECTORS))
    return tmp_path


def telemetry(tmp_path: Path, log: Path | None = None) -> Telemetry:
    payloads = PayloadLogs(tmp_path / "state", str(log)) if log is not None else None
    return Telemetry(metrics=ServerMetrics(Registry()), payloads=payloads)


def sample(seen: Telemetry, name: str, **labels: str) -> float | None:
    assert seen.metrics is not None
    text = seen.metrics.registry.render().decode()
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return None


def detector(folder: Path, seen: Telemetry, **fields: Any) -> Detector:
    spec = DetectorSpec.model_validate(
        {"name": "d", "kind": "outlier", "implementation": "detectors.SumTooBig", **fields}
    )
    return Detector(spec, folder, Place("dep", "main", "echo"), seen)


def watched(inner: Component, detectors: list[Detector], seen: Telemetry) -> Watched:
    component = Watched(inner, detectors, "predict", seen)
    asyncio.run(component.load())
    return component


def rows(*values: list[float]) -> Payload:
    return Payload(np.array(values))


def test_sync_outliers_are_tagged_row_by_row_and_the_answer_keeps_its_own_tags(folder: Path, tmp_path: Path) -> None:
    seen = telemetry(tmp_path)
    component = watched(Echo(), [detector(folder, seen)], seen)
    result = asyncio.run(component.predict(rows([1.0, 2.0], [9.0, 9.0])))
    tags = result.meta["tags"]
    assert tags["mine"] == 1
    assert tags["outlier"] == [False, True]
    assert tags["outlier_score"] == [3.0, 18.0]
    assert tags["outlier_scores"] == {"d": [3.0, 18.0]}
    assert sample(seen, "daneel_outliers_total", deployment="dep", node="echo", detector="d") == 1.0
    assert sample(seen, "daneel_outlier_score_bucket", detector="d", le="1.0") == 1.0  # 3 / 10: under the line


def test_several_detectors_flag_a_row_when_any_does(folder: Path, tmp_path: Path) -> None:
    seen = telemetry(tmp_path)
    lenient = detector(folder, seen, name="lenient", parameters={"threshold": 100.0})
    strict = detector(folder, seen, name="strict", parameters={"threshold": 2.0})
    result = asyncio.run(watched(Echo(), [lenient, strict], seen).predict(rows([1.0, 2.0])))
    assert result.meta["tags"]["outlier"] == [True]
    assert result.meta["tags"]["outlier_score"] == [3.0]  # the first detector's
    assert set(result.meta["tags"]["outlier_scores"]) == {"lenient", "strict"}


def test_reject_refuses_the_request_before_the_model_sees_it(folder: Path, tmp_path: Path) -> None:
    seen = telemetry(tmp_path)
    inner = Echo()
    component = watched(inner, [detector(folder, seen, action="reject")], seen)
    with pytest.raises(Rejected) as caught:
        asyncio.run(component.predict(rows([1.0, 2.0], [9.0, 9.0])))
    assert caught.value.field == "data.ndarray"
    assert "rejects 1 of 2 rows: row 1 scores 18" in caught.value.message
    assert inner.seen == []


def test_input_that_is_not_numbers_is_a_400_naming_the_field(folder: Path, tmp_path: Path) -> None:
    seen = telemetry(tmp_path)
    component = watched(Echo(), [detector(folder, seen)], seen)
    with pytest.raises(InvalidInput) as caught:
        asyncio.run(component.predict(Payload([["a", "b"]])))
    assert caught.value.field == "data.ndarray" and "detector 'd'" in caught.value.message


def test_a_raw_method_is_watched_and_its_answer_tagged(folder: Path, tmp_path: Path) -> None:
    seen = telemetry(tmp_path)
    component = watched(RawEcho(), [detector(folder, seen)], seen)
    answer = asyncio.run(component.call_raw("predict", {"data": {"ndarray": [[9.0, 9.0]]}}))
    assert answer["meta"]["tags"]["outlier"] == [True]


def test_async_drift_is_tested_per_window_off_the_request_path_and_logged(folder: Path, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    seen = telemetry(tmp_path, log)
    assert seen.payloads is not None
    spec = {"name": "shift", "kind": "drift", "implementation": "detectors.MeanAbove"}
    drift = Detector(DetectorSpec.model_validate(spec), folder, Place("dep", "main", ""), seen)

    async def scenario() -> Watched:
        await seen.payloads.start()  # type: ignore[union-attr]
        component = Watched(Echo(), [drift], "predict", seen)
        await component.load()
        for value in (1.0, 1.0, 9.0, 9.0):  # two windows of 4 rows: the second has drifted
            result = await component.predict(rows([value], [value]))
            assert "outlier" not in result.meta["tags"]  # async: nothing in the answer
        await component.close()
        await asyncio.sleep(0)  # the thread handed the drift event to the loop before it stopped
        await seen.payloads.close()  # type: ignore[union-attr]
        return component

    component = asyncio.run(scenario())
    assert component.stream is not None and not any(t.name == "daneel-detectors" for t in threading.enumerate())
    assert sample(seen, "daneel_drift_tests_total", detector="shift", outcome="no_drift") == 1.0
    assert sample(seen, "daneel_drift_tests_total", detector="shift", outcome="drift") == 1.0
    assert sample(seen, "daneel_drift_detected", detector="shift", node="") == 1.0
    assert sample(seen, "daneel_drift_p_value", detector="shift", feature="mean") == 0.0
    events = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    drifts = [event for event in events if event["type"] == "io.daneel.detector.drift"]
    assert len(drifts) == 1
    assert drifts[0]["data"]["drifted"] == ["mean"] and drifts[0]["data"]["rows"] == 4


def test_a_stream_that_falls_behind_drops_and_counts_rows(folder: Path, tmp_path: Path) -> None:
    dropped: list[int] = []
    seen = telemetry(tmp_path)
    stream = Stream([detector(folder, seen, mode="async")], lambda d, r: None, dropped.append, backlog=0)

    async def scenario() -> None:
        stream.put(np.ones((3, 2)))
        await stream.close()

    asyncio.run(scenario())
    assert dropped == [3]
