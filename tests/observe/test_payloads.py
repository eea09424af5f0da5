"""Request logging's handles: which requests they log, the events they make, the sinks they share."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from daneel.observe.cloudevents import FEEDBACK, REQUEST, RESPONSE
from daneel.observe.metrics import Registry
from daneel.observe.payloads import SKIP_HEADER, PayloadLogger, PayloadLogs, Record, Source
from daneel.observe.telemetry import ServerMetrics
from daneel.protocol import v2
from daneel.protocol.context import request_context
from daneel.protocol.payload import Payload
from daneel.spec.model import Logger, LoggerMode


def logs(tmp_path: Path, request_log: str | None = None, **options: Any) -> PayloadLogs:
    return PayloadLogs(tmp_path / "state", request_log, rng=random.Random(7), **options)


def file_logger(tmp_path: Path, mode: str = "all", sample: float = 1.0, source: Source | None = None) -> PayloadLogger:
    config = Logger(file="events.jsonl", mode=LoggerMode(mode), sample=sample)
    made = logs(tmp_path).deployment_logger(config, source or Source("iris"), tmp_path)
    assert made is not None
    return made


def written(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def run_and_close(logger: PayloadLogger, calls: Any) -> None:
    async def main() -> None:
        calls(logger)
        await logger.delivery.close()

    asyncio.run(main())


def test_sample_one_logs_every_request_and_zero_none(tmp_path: Path) -> None:
    assert all(file_logger(tmp_path, sample=1.0).wants() for _ in range(100))
    assert not any(file_logger(tmp_path, sample=0.0).wants() for _ in range(100))


def test_a_sample_draws_about_that_share_of_requests(tmp_path: Path) -> None:
    half = file_logger(tmp_path, sample=0.5)
    drawn = sum(half.wants() for _ in range(1000))
    assert 400 < drawn < 600


@pytest.mark.parametrize(
    ("header", "value", "logged"),
    [
        (SKIP_HEADER, b"true", False),
        (SKIP_HEADER, b"True", False),
        ("Seldon-Skip-Logging", b"true", False),
        (SKIP_HEADER, b"false", True),
        ("X-Other", b"true", True),
    ],
)
def test_a_header_skips_logging_for_one_request(tmp_path: Path, header: str, value: bytes, logged: bool) -> None:
    logger = file_logger(tmp_path)
    with request_context([(header.lower().encode(), value)]):
        assert logger.wants() is logged
    assert logger.wants()


@pytest.mark.parametrize(
    ("mode", "types"), [("all", [REQUEST, RESPONSE]), ("request", [REQUEST]), ("response", [RESPONSE])]
)
def test_the_mode_picks_requests_responses_or_both(tmp_path: Path, mode: str, types: list[str]) -> None:
    logger = file_logger(tmp_path, mode)

    def calls(logger: PayloadLogger) -> None:
        logger.request({"data": {"ndarray": [[1]]}}, "p1", "seldon")
        logger.response({"data": {"ndarray": [[2]]}}, "p1", "seldon", predictor="main")

    run_and_close(logger, calls)
    assert [event["type"] for event in written(tmp_path / "events.jsonl")] == types


def test_a_deployment_event_carries_seldons_extensions_and_daneels(tmp_path: Path) -> None:
    logger = file_logger(tmp_path, source=Source("iris", namespace="prod"))
    body = {"data": {"ndarray": [[5.1, 3.5]]}, "meta": {"puid": "p1"}}
    event = Record(logger, "request", body, "p1", "seldon", "", "main").event()
    assert event.type == REQUEST
    assert event.source == "/daneel/iris"
    assert event.extensions == {
        "requestid": "p1",
        "modelid": "iris",
        "inferenceservicename": "iris",
        "namespace": "prod",
        "endpoint": "main",
        "predictor": "main",
        "protocol": "seldon",
        "deployment": "iris",
    }
    assert orjson.loads(event.data) == body
    assert all(name.isalnum() and name.islower() for name in event.extensions)


def test_a_request_and_its_response_pair_by_request_id_not_by_event_id(tmp_path: Path) -> None:
    logger = file_logger(tmp_path)
    request = Record(logger, "request", {}, "p1", "seldon", "", None).event()
    response = Record(logger, "response", {}, "p1", "seldon", "", None).event()
    assert request.extensions["requestid"] == response.extensions["requestid"] == "p1"
    assert request.id != response.id and request.type == REQUEST and response.type == RESPONSE


def test_a_logger_without_a_deployment_names_the_model_each_request_went_to(tmp_path: Path) -> None:
    default = logs(tmp_path, str(tmp_path / "all.jsonl")).default
    assert default is not None
    event = Record(default, "feedback", {"reward": 1}, "p9", "seldon", "churn", None).event()
    assert event.type == FEEDBACK
    assert event.extensions["deployment"] == event.extensions["modelid"] == "churn"
    assert "predictor" not in event.extensions and "node" not in event.extensions


def test_a_node_event_names_the_node_and_its_seldon_message(tmp_path: Path) -> None:
    logger = file_logger(tmp_path, source=Source("pipe", "main", "scaler"))
    payload = Payload(np.array([[1.0, 2.0]]), ["a", "b"], {"puid": "p1"}, "ndarray")
    event = Record(logger, "request", payload, "p1", "seldon", "", None).event()
    assert event.source == "/daneel/pipe/main/scaler"
    assert event.extensions["modelid"] == event.extensions["node"] == "scaler"
    assert event.extensions["predictor"] == "main" and event.extensions["deployment"] == "pipe"
    assert orjson.loads(event.data) == {"data": {"names": ["a", "b"], "ndarray": [[1.0, 2.0]]}, "meta": {"puid": "p1"}}


def test_a_node_in_a_v2_request_logs_v2_bodies(tmp_path: Path) -> None:
    logger = file_logger(tmp_path, source=Source("pipe", "main", "scaler"))
    payload = Payload(np.array([[1, 2]], dtype=np.int32), [], {}, "v2")
    request = orjson.loads(Record(logger, "request", payload, "r1", "v2", "", None).event().data)
    response = orjson.loads(Record(logger, "response", payload, "r1", "v2", "", None).event().data)
    tensor = {"shape": [1, 2], "datatype": "INT32", "data": [1, 2]}
    assert request == {"id": "r1", "inputs": [{"name": "input-0", **tensor}]}
    assert response == {"model_name": "scaler", "id": "r1", "outputs": [{"name": "output-0", **tensor}]}


def test_a_decoded_v2_request_logs_as_its_json_body(tmp_path: Path) -> None:
    logger = file_logger(tmp_path)
    body = {"id": "r1", "inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1.5, 2.5]}]}
    event = Record(logger, "request", v2.decode_request(body), "r1", "v2", "", None).event()
    assert orjson.loads(event.data) == body


def test_loggers_naming_one_sink_share_its_delivery(tmp_path: Path) -> None:
    payloads = logs(tmp_path)
    a = payloads.node_logger(Logger(url="http://sink:9000/"), Source("d", "p", "a"))
    b = payloads.node_logger(Logger(url="http://sink:9000/", mode=LoggerMode.REQUEST), Source("d", "p", "b"))
    c = payloads.node_logger(Logger(file="out.jsonl"), Source("d", "p", "c"), tmp_path / "deploy")
    assert a is not None and b is not None and c is not None
    assert a.delivery is b.delivery and c.delivery is not a.delivery
    assert sorted(payloads.deliveries) == sorted(["http://sink:9000/", str(tmp_path / "deploy" / "out.jsonl")])


def test_a_logger_naming_no_sink_uses_request_log_or_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "all.jsonl"
    with_default = logs(tmp_path, str(target)).node_logger(Logger(mode=LoggerMode.RESPONSE), Source("d", "p", "n"))
    assert with_default is not None and with_default.delivery.sink.name == str(target)
    assert not with_default.requests and with_default.responses
    with caplog.at_level(logging.WARNING, "daneel.requestlog"):
        assert logs(tmp_path).node_logger(Logger(), Source("d", "p", "n")) is None
    assert "the logger of node n names no url or file, and there is no --request-log" in caplog.text


def test_a_deployment_is_logged_by_its_own_logger_and_by_request_log(tmp_path: Path) -> None:
    payloads = logs(tmp_path, str(tmp_path / "all.jsonl"))
    assert not logs(tmp_path).active and payloads.active
    own = payloads.deployment_logger(Logger(file="mine.jsonl"), Source("iris"), tmp_path)
    assert payloads.served("iris") == (own, payloads.default)
    assert payloads.served("other") == (payloads.default,)
    assert logs(tmp_path).served("iris") == ()


def test_every_sink_counts_its_events_in_the_metrics(tmp_path: Path) -> None:
    metrics = ServerMetrics(Registry())
    payloads = logs(tmp_path, metrics=metrics)
    logger = payloads.deployment_logger(Logger(file="events.jsonl"), Source("iris"), tmp_path)
    assert logger is not None

    async def main() -> None:
        await payloads.start()
        logger.request({"a": 1}, "p1", "seldon")
        logger.response({"b": 2}, "p1", "seldon")
        await payloads.close()

    asyncio.run(main())
    text = metrics.registry.render().decode()
    assert f'daneel_request_log_events_total{{sink="{tmp_path}/events.jsonl",outcome="sent"}} 2.0' in text
    assert len(written(tmp_path / "events.jsonl")) == 2
