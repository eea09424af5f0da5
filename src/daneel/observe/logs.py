"""Process-wide logging: human-readable lines, or JSON lines for log collectors.

Every line logged while a model or a graph node runs names them, whoever logs it (daneel, or
the user's own `logging` calls in `predict`): the code that calls a node sets :data:`where`, a
contextvar, around the call, and a filter on the handler copies it into the record when a line
is written. Nothing is done per request for lines that are never logged.

Text: ``2024-05-01 12:00:00,123 INFO my_model [iris-ab/a/classifier]: message``.
JSON: one object per line with `time`, `level`, `logger`, `message`, and when known `model`,
`predictor`, `node`, `request_id`, `trace_id`, `span_id`, `exception`, plus a call's `extra`.

A server logging JSON also takes over what would reach its stdout and stderr around logging (a
user's print(), Python's warnings), so that each line it writes is one JSON object.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
import warnings
from collections.abc import Iterable
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


def setup_logging(
    level: str = "info", format: Format = "text", stream: TextIO | None = None, capture: bool = False
) -> None:
    """Send every logger's lines to `stream` (stderr), as text or JSON; `auto` writes text to a terminal only.

    With `capture`, a process logging JSON logs what else it writes too (:func:`capture_output`).
    """
    stream = stream or _unwrapped(sys.stderr)
    json = resolve(format, stream) == "json"
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if capture and json:
        capture_output()


def capture_output() -> None:
    """Log each line written to stdout or stderr, and each of Python's warnings, as a record of its own.

    A user's print() and a library's warning (scikit-learn's, about a model pickled by another version)
    then reach the log one record a line, naming the model and the request they came from: stdout's
    lines at INFO on logger `stdout`, warnings at WARNING on `py.warnings`, and stderr's at ERROR on
    `stderr`, as a command's reason for failing and a traceback nothing caught are written there.
    """
    for name, level in (("stdout", logging.INFO), ("stderr", logging.ERROR)):
        real = _unwrapped(getattr(sys, name))
        if real is not None:
            setattr(sys, name, Lines(logging.getLogger(name), level, real))
    warnings.showwarning = _log_warning


class Lines:
    """Stands in for stdout or stderr: each line written to it is logged as a record of its own.

    What else is asked of it (`fileno`, `buffer`, `encoding`) is the real stream's.
    """

    def __init__(self, logger: logging.Logger, level: int, stream: TextIO) -> None:
        self.logger = logger
        self.level = level
        self.stream = stream
        self._pending = ""
        self._lock = threading.Lock()
        self._inside = threading.local()  # set while this thread logs a line

    def write(self, text: str) -> int:
        if getattr(self._inside, "logging", False):  # a handler that writes here: straight out, not round again
            return self.stream.write(text)
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._log(line)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Log what is written of a line so far (a progress bar redrawn in place writes no newline)."""
        if not getattr(self._inside, "logging", False):
            with self._lock:
                line, self._pending = self._pending, ""
            self._log(line)
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def _log(self, line: str) -> None:
        if not line.strip():
            return
        self._inside.logging = True
        try:
            self.logger.log(self.level, line.rstrip())
        finally:
            self._inside.logging = False

    def __getattr__(self, name: str) -> Any:
        if name == "stream":  # asked before __init__ set it (a copy being made): not the real stream's
            raise AttributeError(name)
        return getattr(self.stream, name)


def _unwrapped(stream: TextIO) -> TextIO:
    """The real stream behind one that :func:`capture_output` put in its place."""
    return stream.stream if isinstance(stream, Lines) else stream


#: Python's, for a warning shown on a file of the caller's choosing.
_show_warning = warnings.showwarning


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Log a warning as one record, its first line as Python writes it."""
    if file is not None:
        _show_warning(message, category, filename, lineno, file, line)
        return
    name = category.__name__
    logging.getLogger("py.warnings").warning("%s:%d: %s: %s", filename, lineno, name, message, extra={"category": name})


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
            fields["request_id"] = request.request_id or None
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
