"""HTTP connections that a slow or hostile client cannot hold forever.

uvicorn's httptools protocol, with what it lacks for a server facing the open network:

- a client has `header_timeout` seconds to send a request's line and headers, from its first byte
  (or from connecting), and `body_timeout` seconds for the body once the headers are in; then it
  gets 408 and the connection closes;
- the request line and headers together may take `max_header_bytes`, and there may be `max_headers`
  headers: beyond, 431;
- at most `max_connections` connections are served at once: a request on one more is answered 503
  (`Retry-After: 1`) and its connection closed, while those already open carry on;
- once the server stops, a request still unanswered `shutdown_timeout` seconds later gets 503.

Each limit holds per process: with `--workers N` the server as a whole accepts N times as many.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from daneel.errors import NotReady, Overloaded
from daneel.protocol import jsonwire
from daneel.server import http
from daneel.server.rest import _strip_gateway

log = logging.getLogger("daneel.server")


@dataclass(frozen=True, slots=True)
class Limits:
    """What one process allows its clients (the settings of the same names say what each does)."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    max_connections: int = 2048
    shutdown_timeout_s: float = 25.0


class _TooLarge(Exception):
    """Raised from a parser callback; uvicorn turns any parser error into a 400, which daneel makes a 431."""


class Connection(HttpToolsProtocol):
    """One client connection, under :class:`Limits`; :func:`protocol` makes the class uvicorn is given."""

    limits: ClassVar[Limits] = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_headers = True
        self._header_bytes = 0
        self._header_count = 0
        self._parsed_bytes = 0
        self._too_large = ""
        self._due = 0.0  # when the part awaited must have arrived, on the loop's clock; 0: nothing awaited
        self._awaited = _HEADERS
        self._deadline: asyncio.TimerHandle | None = None
        self._admitted = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._admitted = len(self.connections) <= self.limits.max_connections
        self._await(_HEADERS)
        if not self._admitted:  # one over the limit gets its 503 as soon as it asks, or soon goes
            self._due = self.loop.time() + min(_OVER_LIMIT_WAIT_S, self.limits.header_timeout_s)
        _sweep_from(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._due = 0.0
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._reading_headers and self._header_bytes > self.limits.max_header_bytes and not self._too_large:
            limit = self.limits.max_header_bytes
            self._refuse(431, f"request line and headers exceed {limit} bytes (--max-header-bytes)")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        self._header_bytes = 0
        self._header_count = 0
        self._parsed_bytes = 0
        self._await(_HEADERS)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._too_large = f"more than {self.limits.max_headers} headers (--max-headers)"
            raise _TooLarge(self._too_large)
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        """Count bytes of the request line and headers as the parser hands them over: a request that arrives
        in one piece is complete before :meth:`data_received` can look."""
        self._parsed_bytes += size
        if self._parsed_bytes > self.limits.max_header_bytes:
            self._too_large = (
                f"request line and headers exceed {self.limits.max_header_bytes} bytes (--max-header-bytes)"
            )
            raise _TooLarge(self._too_large)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._due = 0.0
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.more_body:
            self._await(_BODY)

    def on_message_complete(self) -> None:
        self._due = 0.0
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._refuse(431, self._too_large)
        else:
            super().send_400_response(msg)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        super()._start_asgi_task(cycle, app if self._admitted else self._busy)

    async def _busy(self, scope: Any, receive: Any, send: Any) -> None:
        limit = self.limits.max_connections
        error = Overloaded(f"server busy: more than {limit} connections open (--max-connections); retry later")
        response = http.error_response(error, _seldon(scope["path"]))
        response.headers.append((b"connection", b"close"))
        await http.send(send, response)

    def shutdown(self) -> None:
        super().shutdown()
        if not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.limits.shutdown_timeout_s, self._abandon)

    def _abandon(self) -> None:
        """The shutdown deadline passed with this connection's request unanswered: 503, and close."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_started and not self.transport.is_closing():
            timeout = self.limits.shutdown_timeout_s
            error = NotReady(f"the server is shutting down and did not finish this request within {timeout:g} s")
            response = http.error_response(error, _seldon(cycle.scope.get("path", "")))
            self.transport.write(_raw(response))
            cycle.response_started = True  # what the application sends later goes nowhere
        self.transport.close()

    def _await(self, part: tuple[str, str]) -> None:
        """Expect `part` (headers or body) within its timeout; a timestamp, not a timer: a request arms
        and disarms two of them, and the sweep (:func:`_sweep_from`) looks at every connection each
        fraction of a second anyway."""
        self._awaited = part
        self._due = self.loop.time() + self._timeout(part)

    def _timeout(self, part: tuple[str, str]) -> float:
        return self.limits.header_timeout_s if part is _HEADERS else self.limits.body_timeout_s

    def overdue(self, now: float) -> None:
        if self._due and now >= self._due:
            self._timed_out()

    def _timed_out(self) -> None:
        self._due = 0.0
        what, option = self._awaited
        seconds = self._timeout(self._awaited)
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self.transport.close()  # an answer is half written: nothing else can be said on this connection
            return
        self._refuse(408, f"the request's {what} did not arrive within {seconds:g} s ({option})")

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` with a V2-shaped error, whatever the request was, and close the connection."""
        self._due = 0.0
        if not self.transport.is_closing():
            self.transport.write(_raw(http.Response(status, jsonwire.dumps({"error": message}))))
            if self.cycle is not None:
                self.cycle.response_started = True
            self.transport.close()


#: How long a connection beyond --max-connections may take to send its headers (and get its 503).
_OVER_LIMIT_WAIT_S = 1.0
#: File descriptors kept for what is not a client connection: model files, log files, the gRPC port.
_SPARE_DESCRIPTORS = 256

_HEADERS = ("headers", "--header-timeout")
_BODY = ("body", "--body-timeout")


def _sweep_from(connection: Connection) -> None:
    """Start the sweep of the server's connections for overdue parts, once per server.

    Every `interval` seconds (a quarter of the shorter timeout, at most 1 s) each connection is asked
    whether what it awaits is overdue: a timeout holds to within that interval.
    """
    state = connection.server_state
    if getattr(state, "daneel_sweeping", False):
        return
    state.daneel_sweeping = True  # type: ignore[attr-defined]
    loop, connections = connection.loop, connection.connections
    limits = connection.limits
    interval = min(1.0, max(0.05, min(limits.header_timeout_s, limits.body_timeout_s) / 4))

    def sweep() -> None:
        now = loop.time()
        for each in list(connections):
            if isinstance(each, Connection):
                each.overdue(now)
        loop.call_later(interval, sweep)

    loop.call_later(interval, sweep)


def make_room(max_connections: int) -> None:
    """Raise this process's open-file limit (and its workers') to hold `max_connections` connections;
    say so when the hard limit is too low, since connections past it would fail to be accepted."""
    wanted = max_connections + _SPARE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning(
            "the open-file limit (%d) is too low for --max-connections %d: connections past about %d will fail;"
            " raise it (ulimit -n) or lower --max-connections",
            soft,
            max_connections,
            max(0, soft - _SPARE_DESCRIPTORS),
        )


def protocol(limits: Limits) -> type[Connection]:
    """The connection class uvicorn is given, holding `limits`."""
    return type("Connection", (Connection,), {"limits": limits})


def _raw(response: http.Response) -> bytes:
    """A whole HTTP/1.1 response that closes the connection, for answers written outside any application."""
    reason = _REASONS.get(response.status, b"Error")
    head = [
        b"HTTP/1.1 %d %s" % (response.status, reason),
        b"content-type: " + response.content_type,
        b"content-length: %d" % len(response.body),
        b"connection: close",
        *(name + b": " + value for name, value in response.headers),
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + response.body


_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


def _seldon(path: str) -> bool:
    """Whether errors on `path` take the Seldon protocol's shape (as the REST edge decides)."""
    return not _strip_gateway(path).startswith("/v2")
