"""Log lines as text or JSON, naming the model and node that run while they are logged."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider

from daneel.observe import logs
from daneel.observe.tracing import Tracing
from daneel.protocol.context import request_context


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger, put back as it was after the test."""
    logger = logging.getLogger()
    handlers, level = logger.handlers[:], logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


def _logged(format: logs.Format, root: logging.Logger, *args: Any, **kwargs: Any) -> str:
    stream = io.StringIO()
    logs.setup_logging("debug", format, stream)
    logging.getLogger("user_model").info(*args, **kwargs)
    return stream.getvalue()


def test_text_lines_are_as_before_outside_a_model(root: logging.Logger) -> None:
    line = _logged("text", root, "serving %s", "iris")
    assert line.endswith(" INFO user_model: serving iris\n")


def test_text_lines_name_the_deployment_predictor_and_node_that_run(root: logging.Logger) -> None:
    token = logs.where.set(("iris-ab", "a", "classifier"))
    try:
        line = _logged("text", root, "scoring %d rows", 3)
    finally:
        logs.where.reset(token)
    assert line.endswith(" INFO user_model [iris-ab/a/classifier]: scoring 3 rows\n")


def test_a_model_on_its_own_is_named_alone(root: logging.Logger) -> None:
    token = logs.where.set(("iris", "", ""))
    try:
        line = _logged("text", root, "hello")
    finally:
        logs.where.reset(token)
    assert " user_model [iris]: hello" in line


def test_json_lines_hold_the_standard_fields_the_context_and_extras(root: logging.Logger) -> None:
    token = logs.where.set(("iris-ab", "a", "classifier"))
    try:
        with request_context([(b"x-request-id", b"req-7")]):
            line = _logged("json", root, "scored", extra={"rows": 3, "shape": (3, 4), "node": "mine"})
    finally:
        logs.where.reset(token)
    record = orjson.loads(line)
    assert record.pop("time").endswith("Z")
    assert record == {
        "level": "INFO",
        "logger": "user_model",
        "message": "scored",
        "model": "iris-ab",
        "predictor": "a",
        "node": "mine",  # the caller's own value wins
        "request_id": "req-7",
        "rows": 3,
        "shape": [3, 4],
    }
    assert line.count("\n") == 1


def test_json_lines_leave_out_what_is_not_known(root: logging.Logger) -> None:
    record = orjson.loads(_logged("json", root, "plain"))
    assert set(record) == {"time", "level", "logger", "message"}


def test_the_predictor_the_traffic_layer_chose_is_named_outside_nodes(root: logging.Logger) -> None:
    with request_context() as request:
        request.predictor = "canary"
        record = orjson.loads(_logged("json", root, "chosen"))
    assert record["predictor"] == "canary"


def test_json_keeps_the_traceback_on_one_line(root: logging.Logger) -> None:
    stream = io.StringIO()
    logs.setup_logging("info", "json", stream)
    try:
        raise ValueError("bad rows")
    except ValueError:
        logging.getLogger("daneel.rest").exception("unexpected error on %s", "POST /predict")
    (line,) = stream.getvalue().splitlines()
    record = orjson.loads(line)
    assert record["level"] == "ERROR"
    assert record["exception"].startswith("Traceback") and "ValueError: bad rows" in record["exception"]


def test_json_names_the_trace_and_span_being_served(root: logging.Logger) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    traced = Tracing(provider)
    scope = traced.start("model.predict", {})
    try:
        record = orjson.loads(_logged("json", root, "inside"))
    finally:
        scope.end()
    context = scope.span.get_span_context()
    assert record["trace_id"] == f"{context.trace_id:032x}"
    assert record["span_id"] == f"{context.span_id:016x}"
    provider.shutdown()


@pytest.mark.parametrize(("stream", "expected"), [(Terminal(), "text"), (io.StringIO(), "json")])
def test_auto_writes_text_to_a_terminal_and_json_elsewhere(stream: io.StringIO, expected: str) -> None:
    assert logs.resolve("auto", stream) == expected
    assert logs.resolve("text", io.StringIO()) == "text"


def test_setup_replaces_the_handlers_and_sets_the_level(root: logging.Logger) -> None:
    stream = io.StringIO()
    logs.setup_logging("warning", "text", stream)
    logs.setup_logging("warning", "text", stream)
    assert len(root.handlers) == 1
    logging.getLogger("daneel.server").info("not shown")
    logging.getLogger("daneel.server").warning("shown")
    assert stream.getvalue().count("\n") == 1 and "shown" in stream.getvalue()


def test_captured_lines_are_one_record_each_however_they_are_written(root: logging.Logger) -> None:
    stream = io.StringIO()
    logs.setup_logging("info", "json", stream)
    lines = logs.Lines(logging.getLogger("stdout"), logging.INFO, io.StringIO())
    print("one", "row", file=lines)  # written in four pieces
    print("two\nthree\n", file=lines)
    lines.write("no newline yet")
    lines.flush()
    records = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["logger"], r["message"]) for r in records] == [
        ("stdout", "one row"),
        ("stdout", "two"),
        ("stdout", "three"),
        ("stdout", "no newline yet"),
    ]


def test_a_handler_writing_to_a_captured_stream_goes_straight_to_the_real_one(root: logging.Logger) -> None:
    real = io.StringIO()
    lines = logs.Lines(logging.getLogger("stderr"), logging.ERROR, real)
    root.handlers[:] = [logging.StreamHandler(lines)]  # as a user's basicConfig() would, once stderr is captured
    print("oops", file=lines)
    assert real.getvalue() == "oops\n"
