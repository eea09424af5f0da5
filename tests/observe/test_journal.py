"""The journal: segments written under a lock, claimed by one process at a time, kept across a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson

from daneel.observe.cloudevents import REQUEST, Event
from daneel.observe.journal import SUFFIX, Journal, Segment, folder_for, state_dir


def events(count: int, start: int = 0) -> list[Event]:
    return [
        Event(f"e{i}", REQUEST, "/daneel/d", "t", orjson.dumps({"i": i}), {"requestid": f"r{i}"})
        for i in range(start, start + count)
    ]


def lines(batch: list[Event]) -> list[bytes]:
    return [event.line() for event in batch]


def test_the_state_folder_follows_the_environment() -> None:
    assert state_dir({"DANEEL_STATE_DIR": "/s", "XDG_STATE_HOME": "/x"}) == Path("/s")
    assert state_dir({"XDG_STATE_HOME": "/x"}) == Path("/x/daneel")
    assert state_dir({}) == Path.home() / ".local" / "state" / "daneel"


def test_each_sink_has_a_folder_of_its_own_named_after_it(tmp_path: Path) -> None:
    a = folder_for(tmp_path, "http://logs.example:8080/in")
    b = folder_for(tmp_path, "http://logs.example:8080/other")
    assert a != b and a.parent == b.parent == tmp_path / "request-log"
    assert a.name.startswith("logs.example-8080-in-")


def test_a_segment_being_written_cannot_be_claimed_until_rotated(tmp_path: Path) -> None:
    writer, reader = Journal(tmp_path), Journal(tmp_path)
    writer.append(lines(events(3)))
    assert not writer.empty()
    assert reader.claim() is None and writer.claim() is None
    writer.rotate()
    assert writer.empty()
    segment = reader.claim()
    assert segment is not None
    assert [event.id for event in segment.events] == ["e0", "e1", "e2"]
    assert segment.events == events(3)
    segment.done()
    assert list(tmp_path.glob(f"*{SUFFIX}")) == []


def test_a_claimed_segment_is_nobody_elses(tmp_path: Path) -> None:
    writer = Journal(tmp_path)
    writer.append(lines(events(2)))
    writer.rotate()
    first = Journal(tmp_path).claim()
    assert first is not None
    assert Journal(tmp_path).claim() is None
    first.release()
    again = Journal(tmp_path).claim()
    assert again is not None and len(again.events) == 2
    again.done()
    assert Segment.take(first.path) is None  # delivered and deleted: a late claimer finds nothing


def test_segments_are_claimed_oldest_first_and_rotate_by_size(tmp_path: Path) -> None:
    writer = Journal(tmp_path, segment_bytes=1)
    for i in range(3):
        writer.append(lines(events(1, start=i)))
    assert len(list(tmp_path.glob(f"*{SUFFIX}"))) == 3
    reader = Journal(tmp_path)
    order = []
    while (segment := reader.claim()) is not None:
        order += [event.id for event in segment.events]
        segment.done()
    assert order == ["e0", "e1", "e2"]


def test_an_empty_segment_leaves_no_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append([])
    journal.rotate()
    journal.close()
    assert list(tmp_path.iterdir()) == []


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path: Path) -> None:
    writer = Journal(tmp_path)
    writer.append([*lines(events(2)), events(1, start=2)[0].line()[:20]])
    writer.rotate()
    segment = Journal(tmp_path).claim()
    assert segment is not None and [event.id for event in segment.events] == ["e0", "e1"]
    segment.release()


def test_a_process_killed_while_writing_leaves_its_events_to_the_next(tmp_path: Path) -> None:
    """A writer holds its segment's lock until it dies; the kernel then lets go and another process claims it."""
    script = textwrap.dedent(
        f"""
        import sys, orjson
        from pathlib import Path
        from daneel.observe.cloudevents import Event
        from daneel.observe.journal import Journal
        journal = Journal(Path({str(tmp_path)!r}))
        journal.append([Event(f"e{{i}}", "t", "s", "t", orjson.dumps(i)).line() for i in range(5)])
        print("written", flush=True)
        sys.stdin.read()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"written\n"
        assert Journal(tmp_path).claim() is None  # the writer is alive and holds it
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.stdout is not None
        proc.stdout.close()
    segment = Journal(tmp_path).claim()
    assert segment is not None
    assert [event.id for event in segment.events] == [f"e{i}" for i in range(5)]
    segment.done()
