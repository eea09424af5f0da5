"""Delivery to real sinks on loopback: straight from memory, through the journal while a sink is down,
across a close and a new start, and by two processes' worth of deliveries sharing one journal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from daneel.observe.cloudevents import REQUEST, Event, parse_line
from daneel.observe.delivery import Delivery, DeliverySettings
from daneel.observe.journal import SUFFIX, Journal
from daneel.observe.sinks import FileSink, HttpSink

from .sink import Sink

FAST = DeliverySettings(backoff_s=0.01, max_backoff_s=0.05, close_timeout_s=2.0, timeout_s=5.0)


class Ready:
    """A queued record whose event is made already."""

    def __init__(self, event: Event) -> None:
        self._event = event

    def event(self) -> Event:
        return self._event


class Broken:
    def event(self) -> Event:
        raise TypeError("not JSON")


def events(count: int, start: int = 0) -> list[Event]:
    return [
        Event(f"e{i}", REQUEST, "/daneel/d", "t", orjson.dumps({"i": i}), {"requestid": f"r{i}"})
        for i in range(start, start + count)
    ]


async def until(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def segments(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{SUFFIX}"))


def journaled(folder: Path) -> list[str]:
    return [e.id for path in segments(folder) for line in path.read_bytes().splitlines() if (e := parse_line(line))]


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A running sink, stopped after the test."""
    running = Sink().start()
    yield running
    running.stop()


@pytest.fixture
def down() -> Iterator[Sink]:
    """A sink's port with nothing listening on it yet; `down.start()` brings it up."""
    later = Sink().start()
    later.stop()
    yield later
    later.stop()


def queue(sending: Delivery, batch: list[Event]) -> None:
    for event in batch:
        sending.append(Ready(event))


def delivery(sink: Sink, folder: Path, settings: DeliverySettings = FAST) -> Delivery:
    return Delivery(HttpSink(sink.url, settings.concurrency, settings.timeout_s), Journal(folder), settings)


def test_events_go_straight_to_a_running_sink(sink: Sink, tmp_path: Path) -> None:

    async def main() -> Delivery:
        sending = delivery(sink, tmp_path)
        queue(sending, events(50))
        await until(lambda: len(sink.ids()) == 50, "50 events")
        await sending.close()
        return sending

    sent = asyncio.run(main())
    assert sent.tally.sent == 50 and sent.tally.spilled == 0
    assert len(sink.events()) == 50
    received = {event.id: event for event in sink.events()}
    assert received["e7"].headers["ce-requestid"] == "r7" and received["e7"].json() == {"i": 7}
    assert segments(tmp_path) == []


def test_a_sink_that_is_down_gets_every_event_once_it_is_back(down: Sink, tmp_path: Path) -> None:

    async def main() -> Delivery:
        sending = delivery(down, tmp_path)
        queue(sending, events(20))
        await until(lambda: sending.tally.spilled == 20, "20 events spilled")
        assert sorted(await asyncio.to_thread(journaled, tmp_path)) == sorted(f"e{i}" for i in range(20))
        down.start()
        await until(lambda: len(down.ids()) == 20, "the journal delivered")
        queue(sending, events(5, start=20))
        await until(lambda: len(down.ids()) == 25, "5 more events")
        await sending.close()
        return sending

    sent = asyncio.run(main())
    assert down.ids() == {f"e{i}" for i in range(25)}
    assert sent.tally.sent == len(down.events())
    assert segments(tmp_path) == []


def test_what_is_not_delivered_by_close_is_sent_by_the_next_start(down: Sink, tmp_path: Path) -> None:

    async def first() -> None:
        sending = delivery(down, tmp_path)
        queue(sending, events(30))
        await sending.close()

    async def second() -> None:
        sending = delivery(down, tmp_path)
        sending.start()
        await until(lambda: len(down.ids()) == 30, "the journal delivered at start")
        await sending.close()

    asyncio.run(first())
    assert sorted(journaled(tmp_path)) == sorted(f"e{i}" for i in range(30))
    down.start()
    asyncio.run(second())
    assert down.ids() == {f"e{i}" for i in range(30)}
    assert segments(tmp_path) == []


def test_closing_does_not_wait_long_on_a_slow_sink(sink: Sink, tmp_path: Path) -> None:
    """Sends still in flight when the close timeout ends are abandoned; their events go to the journal."""
    sink.delay = 1.0
    settings = DeliverySettings(backoff_s=0.01, close_timeout_s=0.3, timeout_s=30.0)

    async def main() -> None:
        sending = delivery(sink, tmp_path, settings)
        queue(sending, events(10))
        await asyncio.sleep(0.1)
        await sending.close()

    asyncio.run(main())
    assert {f"e{i}" for i in range(10)} <= set(journaled(tmp_path)) | sink.ids()


def test_events_a_sink_refuses_are_counted_and_not_kept(sink: Sink, tmp_path: Path) -> None:
    sink.status = 400

    async def main() -> Delivery:
        sending = delivery(sink, tmp_path)
        queue(sending, events(5))
        await until(lambda: sending.tally.failed == 5, "5 refusals")
        await sending.close()
        return sending

    sent = asyncio.run(main())
    assert (sent.tally.sent, sent.tally.spilled) == (0, 0)
    assert segments(tmp_path) == []


def test_a_full_queue_spills_on_the_request_path_and_loses_nothing(sink: Sink, tmp_path: Path) -> None:
    settings = DeliverySettings(max_queue=4, backoff_s=0.01, max_backoff_s=0.05)

    async def main() -> Delivery:
        sending = delivery(sink, tmp_path, settings)
        for event in events(10):  # no await between appends: the sender cannot take any yet
            sending.append(Ready(event))
        assert sending.tally.spilled == 6
        await until(lambda: len(sink.ids()) == 10, "all 10 events")
        await sending.close()
        return sending

    asyncio.run(main())
    assert sink.ids() == {f"e{i}" for i in range(10)}


def test_a_record_that_cannot_be_encoded_is_counted_and_the_rest_go(sink: Sink, tmp_path: Path) -> None:

    async def main() -> Delivery:
        sending = delivery(sink, tmp_path)
        sending.append(Ready(events(1)[0]))
        sending.append(Broken())
        sending.append(Ready(events(1, start=1)[0]))
        await until(lambda: len(sink.ids()) == 2, "2 events")
        await sending.close()
        return sending

    sent = asyncio.run(main())
    assert sent.tally.failed == 1 and sink.ids() == {"e0", "e1"}


def test_two_processes_replaying_one_journal_send_each_event_once(sink: Sink, tmp_path: Path) -> None:
    writer = Journal(tmp_path, segment_bytes=1)
    for start in range(0, 150, 10):
        writer.append([event.line() for event in events(10, start=start)])
    writer.close()

    async def main() -> None:
        workers = [delivery(sink, tmp_path), delivery(sink, tmp_path)]
        for worker in workers:
            worker.start()
        await until(lambda: len(sink.ids()) == 150, "150 events")
        await asyncio.gather(*(worker.close() for worker in workers))

    asyncio.run(main())
    assert len(sink.events()) == 150 and len(sink.ids()) == 150
    assert segments(tmp_path) == []


def test_a_file_sink_appends_one_json_line_per_event(tmp_path: Path) -> None:
    target = tmp_path / "logs" / "events.jsonl"

    async def main() -> None:
        sending = Delivery(FileSink(target), Journal(tmp_path / "journal"), FAST)
        queue(sending, events(3))
        await sending.close()

    asyncio.run(main())
    written = [parse_line(line) for line in target.read_bytes().splitlines()]
    assert written == events(3)
