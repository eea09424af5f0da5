"""CloudEvents 1.0 as request logging sends them: HTTP headers (binary mode) and JSON lines.

An :class:`Event` holds its data already encoded as JSON. Over HTTP the data is
the body and every attribute a `ce-` header (binary content mode); in a file or
the journal an event is one line of CloudEvents' JSON format, the attributes at
the top level and the data, as JSON, under `data`. The types and extension
attributes are those Seldon Core's executor sends, so its request loggers read
daneel's events as they are.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
REQUEST = "io.seldon.serving.inference.request"
RESPONSE = "io.seldon.serving.inference.response"
FEEDBACK = "io.seldon.serving.feedback"
#: daneel's own: a drift detector found that the requests of a window differ from the training data.
DRIFT = "io.daneel.detector.drift"
#: The CloudEvents type of each kind of record.
TYPES = {"request": REQUEST, "response": RESPONSE, "feedback": FEEDBACK, "drift": DRIFT}

#: Attributes every event has; everything else on a line is an extension.
_CORE = ("specversion", "id", "source", "type", "time", "datacontenttype")


@dataclass(slots=True)
class Event:
    """One CloudEvent; `data` is JSON, `extensions` are lower-case alphanumeric names to strings."""

    id: str
    type: str
    source: str
    time: str
    data: bytes
    extensions: dict[str, str] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        """The HTTP headers of binary content mode."""
        headers = {
            "ce-specversion": SPECVERSION,
            "ce-id": self.id,
            "ce-source": self.source,
            "ce-type": self.type,
            "ce-time": self.time,
            "content-type": CONTENT_TYPE,
        }
        headers.update((f"ce-{name}", value) for name, value in self.extensions.items())
        return headers

    def line(self) -> bytes:
        """The event in CloudEvents' JSON format, on one line ending in a newline."""
        attributes: dict[str, object] = {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
            "datacontenttype": CONTENT_TYPE,
            **self.extensions,
            "data": orjson.Fragment(self.data),  # already JSON: written as it is, not encoded again
        }
        return orjson.dumps(attributes) + b"\n"


def parse_line(line: bytes) -> Event | None:
    """An event written by :meth:`Event.line`; None for a line cut short (a crash mid-write) or not an event."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not all(isinstance(value.get(key), str) for key in ("id", "type", "source")):
        return None
    extensions = {key: str(item) for key, item in value.items() if key not in _CORE and key != "data"}
    data = orjson.dumps(value.get("data"))
    return Event(value["id"], value["type"], value["source"], str(value.get("time", "")), data, extensions)


def timestamp(seconds: float) -> str:
    """RFC 3339 in UTC, to the microsecond, as CloudEvents' `time` wants it."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


class EventIds:
    """Unique event ids shaped as UUIDs: a random prefix drawn once, then a count (no system call per id)."""

    def __init__(self) -> None:
        self._prefix = str(uuid.uuid4())[:24]
        self._count = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._count):012x}"
