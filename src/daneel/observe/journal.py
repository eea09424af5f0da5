"""A sink's journal: events waiting on disk for their sink to take them.

Each sink has a folder of its own under the state folder. A process appends to a
segment file of its own (one JSON line per event, :meth:`Event.line`), holding an
exclusive `flock` on it while it writes; it fsyncs after each batch. A segment is
*claimed* to be delivered by whoever takes its lock: the process that wrote it once
it has moved on to a new segment, another worker, or, after a restart or a crash
(the kernel drops a dead process's locks), the next daneel to serve the sink. A
claimed segment is deleted once delivered, so no two processes deliver the same
events, and none is lost: at worst a process that dies while delivering leaves its
segment for the next to deliver again.

Every method is synchronous and thread-safe; callers on an event loop run them in
a thread (`asyncio.to_thread`), as writing and syncing can wait on the disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from daneel.observe.cloudevents import Event, parse_line

SUFFIX = ".jsonl"
#: A segment is closed, and so open to be claimed, once it has grown this large.
SEGMENT_BYTES = 16 * 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def state_dir(environ: Mapping[str, str]) -> Path:
    """daneel's state folder: $DANEEL_STATE_DIR, else $XDG_STATE_HOME/daneel, else ~/.local/state/daneel."""
    configured = environ.get("DANEEL_STATE_DIR")
    if configured:
        return Path(configured)
    return Path(environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "daneel"


def folder_for(state: Path, sink: str) -> Path:
    """The journal folder of the sink at `sink` (a URL or a file path): readable, and unique to it."""
    digest = hashlib.sha256(sink.encode()).hexdigest()[:12]
    readable = _UNSAFE.sub("-", sink.split("://", 1)[-1]).strip("-")[-48:]
    return state / "request-log" / f"{readable}-{digest}"


class Journal:
    """This process's side of one sink's journal folder."""

    def __init__(self, folder: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.folder = folder
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._names = (f"{os.getpid()}-{n}" for n in itertools.count())

    def append(self, lines: Iterable[bytes], sync: bool = True) -> None:
        """Write events (each :meth:`Event.line`) to this process's segment, and sync them to disk.

        Written, they outlive this process; synced, they outlive the machine's next crash too.
        """
        data = b"".join(lines)
        if not data:
            return
        with self._lock:
            fd = self._open()
            write_all(fd, data)
            if sync:
                os.fsync(fd)
            self._size += len(data)
            if self._size >= self.segment_bytes:
                self._close()

    def empty(self) -> bool:
        """Whether this process's open segment holds nothing (other segments may still wait)."""
        with self._lock:
            return self._size == 0

    def rotate(self) -> None:
        """Close this process's segment, so that it can be claimed; the next append starts another."""
        with self._lock:
            self._close()

    def claim(self) -> Segment | None:
        """The oldest segment no process writes or delivers now, locked for this one; None when there is none."""
        if not self.folder.is_dir():
            return None
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            if path == self._path:
                continue
            segment = Segment.take(path)
            if segment is not None:
                return segment
        return None

    def close(self) -> None:
        with self._lock:
            self._close()

    def _open(self) -> int:
        if self._fd is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            # Named by time first, so that segments sort oldest first; the process id keeps names apart.
            path = self.folder / f"{time.time_ns():020d}-{next(self._names)}{SUFFIX}"
            # Locked under another name, then renamed: no claimer can see the segment before it is locked.
            hidden = path.with_suffix(".new")
            fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            hidden.rename(path)
            self._fd, self._path, self._size = fd, path, 0
        return self._fd

    def _close(self) -> None:
        if self._fd is None:
            return
        assert self._path is not None
        if self._size == 0:
            self._path.unlink(missing_ok=True)
        else:
            os.fsync(self._fd)
        os.close(self._fd)  # releases the lock: the segment can now be claimed
        self._fd = self._path = None
        self._size = 0


class Segment:
    """A journal file claimed for delivery: its events, and the lock that keeps other processes off it."""

    def __init__(self, path: Path, fd: int, events: list[Event]) -> None:
        self.path = path
        self.events = events
        self._fd: int | None = fd
        self._lock = threading.Lock()

    @classmethod
    def take(cls, path: Path) -> Segment | None:
        """Lock `path` and read it; None when another process holds it, or has delivered it already."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if not _still_linked(fd, path):  # delivered and deleted by another process since we listed it
            os.close(fd)
            return None
        with os.fdopen(os.dup(fd), "rb") as file:
            events = [event for line in file if (event := parse_line(line)) is not None]
        return cls(path, fd, events)

    def done(self) -> None:
        """Every event is delivered: delete the file, then let go of it."""
        with self._lock:
            if self._fd is not None:
                self.path.unlink(missing_ok=True)
                os.close(self._fd)
                self._fd = None

    def release(self) -> None:
        """Let go without deleting: the events are delivered later, by this process or another."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _still_linked(fd: int, path: Path) -> bool:
    with contextlib.suppress(FileNotFoundError):
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    return False


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
