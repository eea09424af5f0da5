"""A CloudEvents sink on loopback for tests: a real HTTP server in a thread, recording what it is sent.

It can be stopped and started again on the same port (a sink that goes down and
comes back), and told to answer with another status (a sink that refuses).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # clients open many connections at once; the default backlog of 5 drops some


@dataclass(frozen=True)
class Received:
    """One POST: its headers (lower-case names) and its body."""

    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["ce-id"]

    @property
    def type(self) -> str:
        return self.headers["ce-type"]

    def json(self) -> Any:
        return orjson.loads(self.body)


class Sink:
    """Records every CloudEvent POSTed to http://127.0.0.1:PORT/ while running."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.status = 200
        self.delay = 0.0  # seconds before each answer: a slow sink
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> Sink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with sink._lock:
                    sink._connections.add(self.connection)

            def finish(self) -> None:
                with sink._lock:
                    sink._connections.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = sink.status
                time.sleep(sink.delay)
                if status < 300:
                    with sink._lock:
                        sink.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut the connections kept alive, so that clients find the sink down."""
        if self._server is not None:
            self._server.shutdown()
            with self._lock:
                for connection in self._connections:
                    with contextlib.suppress(OSError):
                        connection.shutdown(socket.SHUT_RDWR)
            self._server.server_close()  # joins the handlers' threads
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def events(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def ids(self) -> set[str]:
        return {event.id for event in self.events()}
