"""The access log (`daneel serve --access-log`): one line per HTTP request and per gRPC call, once answered.

Off by default, and then none of it runs: the runner wraps the HTTP apps in :class:`AccessLog`, and
gives the gRPC server its interceptor, only when it is on.

Text, as uvicorn writes it plus the duration and the request id (the client's `X-Request-ID`, else the
one daneel made for the request and sent back; `-` for a scrape of the metrics port, or a gRPC
ServerLive, ServerReady or ServerMetadata call, sent none)::

    127.0.0.1:51234 - "POST /v2/models/iris/infer HTTP/1.1" 200 1.8ms 7f3c
    ipv4:127.0.0.1:51240 - "/inference.GRPCInferenceService/ModelInfer" OK 0.9ms 5d0c9e2a41b84f7e9a3c6b1f2e8d7a60

JSON: that line as `message`, and fields `protocol` (http, grpc), `method`, `path` (HTTP), `status`
(HTTP's number) or `code` (gRPC's name), `duration_ms`, `request_id` and `client`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from daneel.protocol.context import REQUEST_ID_HEADER
from daneel.server import http
from daneel.server.http import Scope

log = logging.getLogger("daneel.access")
_REQUEST_ID = REQUEST_ID_HEADER.encode("latin-1")

#: What uvicorn answers for an app that fails before it starts its answer.
_UNANSWERED = 500


class AccessLog:
    """An ASGI app that logs each HTTP request to the app it wraps, once the answer has gone."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = _UNANSWERED
        request_id = http.header(scope, _REQUEST_ID)  # the client's, until the answer names the one it used

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = message["status"]
                request_id = _answered_id(message) or request_id
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            _request(scope, status, time.perf_counter() - start, request_id)


def _answered_id(start: dict[str, Any]) -> str | None:
    for key, value in start.get("headers", ()):
        if key == _REQUEST_ID:
            return bytes(value).decode("latin-1")
    return None


def _request(scope: Scope, status: int, seconds: float, request_id: str | None) -> None:
    client = scope.get("client")
    address = f"{client[0]}:{client[1]}" if client else "-"
    method, path, version = scope["method"], scope["path"], scope.get("http_version", "1.1")
    line = f'{address} - "{method} {path} HTTP/{version}" {status}'
    _log(line, {"protocol": "http", "method": method, "path": path, "status": status}, seconds, request_id, address)


def call(method: str, code: str, seconds: float, request_id: str | None, peer: str) -> None:
    """Log one gRPC call: its full method name, its status code's name (OK, INTERNAL, ...), the time it took."""
    line = f'{peer or "-"} - "{method}" {code}'
    _log(line, {"protocol": "grpc", "method": method, "code": code}, seconds, request_id, peer)


def _log(line: str, fields: dict[str, Any], seconds: float, request_id: str | None, client: str) -> None:
    ms = seconds * 1000
    extra = {**fields, "duration_ms": round(ms, 3), "request_id": request_id, "client": client}
    log.info("%s %.1fms %s", line, ms, request_id or "-", extra=extra)
