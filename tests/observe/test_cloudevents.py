"""CloudEvents as request logging writes them: binary-mode headers, JSON lines, ids and times."""

from __future__ import annotations

import re

import orjson

from daneel.observe.cloudevents import DRIFT, FEEDBACK, REQUEST, RESPONSE, TYPES, Event, EventIds, parse_line, timestamp


def event(**extensions: str) -> Event:
    data = orjson.dumps({"data": {"ndarray": [[1.5, 2]]}, "meta": {"puid": "p1"}})
    return Event("e1", REQUEST, "/daneel/iris", "2024-01-02T03:04:05.000006Z", data, extensions)


def test_the_types_are_seldons() -> None:
    assert TYPES == {"request": REQUEST, "response": RESPONSE, "feedback": FEEDBACK, "drift": DRIFT}
    assert DRIFT == "io.daneel.detector.drift"  # daneel's own: Seldon has no drift event
    assert (REQUEST, RESPONSE, FEEDBACK) == (
        "io.seldon.serving.inference.request",
        "io.seldon.serving.inference.response",
        "io.seldon.serving.feedback",
    )


def test_binary_mode_puts_every_attribute_in_a_ce_header() -> None:
    headers = event(requestid="p1", modelid="iris").headers()
    assert headers == {
        "ce-specversion": "1.0",
        "ce-id": "e1",
        "ce-source": "/daneel/iris",
        "ce-type": REQUEST,
        "ce-time": "2024-01-02T03:04:05.000006Z",
        "content-type": "application/json",
        "ce-requestid": "p1",
        "ce-modelid": "iris",
    }


def test_a_line_holds_the_attributes_and_the_data_as_json_not_as_a_string() -> None:
    line = event(requestid="p1").line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    value = orjson.loads(line)
    assert value["data"] == {"data": {"ndarray": [[1.5, 2]]}, "meta": {"puid": "p1"}}
    assert value["specversion"] == "1.0" and value["datacontenttype"] == "application/json"
    assert value["requestid"] == "p1"


def test_a_line_reads_back_as_the_same_event() -> None:
    original = event(requestid="p1", node="a")
    assert parse_line(original.line()) == original


def test_a_line_cut_short_or_foreign_reads_as_nothing() -> None:
    line = event().line()
    assert parse_line(line[: len(line) // 2]) is None
    assert parse_line(b'{"hello": 1}\n') is None
    assert parse_line(b"\n") is None


def test_timestamps_are_rfc3339_in_utc() -> None:
    assert timestamp(0.5) == "1970-01-01T00:00:00.500000Z"


def test_event_ids_are_unique_and_shaped_as_uuids() -> None:
    ids = EventIds()
    drawn = {ids() for _ in range(1000)}
    assert len(drawn) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", one) for one in drawn)
    assert ids() not in {EventIds()() for _ in range(10)}
