"""Process-wide logging: human-readable lines, or JSON lines for log collectors.

Every line logged while a model or a graph node runs names them, whoever logs it (daneel, or
the user's own `logging` calls in `predict`): the code that calls a node sets :data:`where`, a
contextvar, around the call, and a filter on the handler copies it into the record when a line
is written. Nothing is done per request for lines that are never logged.

Text: ``2024-05-01 12:00:00,123 INFO my_model [iris-ab/a/classifier]: message``.
JSON: one object per line with `time`, `level`, `logger`, `message`, and when known `model`,
`predictor`, `node`, `request_id`, `trace_id`, `span_id`, `exception`, plus a call's `extra`.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

from daneel.observe import tracing
from daneel.protocol import context

Format = Literal["auto", "text", "json"]
FORMATS: tuple[Format, ...] = ("auto", "text", "json")

#: What runs now: (model, predictor, node), "" where there is none. A deployment's graph node is
#: (deployment, predictor, node); a model called on its own (model, "", "").
where: contextvars.ContextVar[tuple[str, str, str] | None] = contextvars.ContextVar("daneel_where", default=None)

REQUEST_ID_HEADER = "x-request-id"
#: Fields the JSON format writes in this order before any others.
_FIELDS = ("model", "predictor", "node", "request_id", "trace_id", "span_id")
#: A record's own attributes, which are not a caller's `extra`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's coloured copy of the message
    *_FIELDS,
}


def setup_logging(level: str = "info", format: Format = "text", stream: TextIO | None = None) -> None:
    """Send every logger's lines to `stream` (stderr), as text or JSON; `auto` writes text to a terminal only."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if resolve(format, stream) == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def resolve(format: Format, stream: TextIO) -> Literal["text", "json"]:
    """The format `auto` stands for on `stream`: text for a person at a terminal, JSON for a collector."""
    if format != "auto":
        return format
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


class ContextFilter(logging.Filter):
    """Adds what is known of the request and of the node running to each record; a caller's `extra` wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__
        found = where.get()
        if found is not None:
            model, predictor, node = found
            fields.setdefault("model", model)
            fields.setdefault("predictor", predictor)
            fields.setdefault("node", node)
        request = context.current()
        if not fields.get("predictor") and request.predictor:
            fields["predictor"] = request.predictor
        if "request_id" not in fields:
            fields["request_id"] = request.header(REQUEST_ID_HEADER)
        ids = tracing.current_ids()
        if ids is not None:
            fields.setdefault("trace_id", ids[0])
            fields.setdefault("span_id", ids[1])
        return True


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [model/predictor/node]: message``; the brackets only while a model runs."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(where)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        names = [str(fields[key]) for key in ("model", "predictor", "node") if fields.get(key)]
        record.where = f" [{'/'.join(names)}]" if names else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; values JSON cannot hold are written as their str()."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = record.__dict__
        for key in _FIELDS:
            if fields.get(key):
                line[key] = fields[key]
        line.update((key, value) for key, value in fields.items() if key not in _STANDARD and key != "where")
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def _timestamp(created: float) -> str:
    """RFC 3339 in UTC to the millisecond, as log collectors parse it."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
