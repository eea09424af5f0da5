"""The REST edge: Seldon's paths and the Open Inference Protocol on one port.

Handlers only translate between HTTP and the data plane. Errors are mapped to
HTTP once, in :meth:`RestApp.__call__`, in the shape of the protocol the path
belongs to.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from daneel.dataplane.dataplane import DataPlane
from daneel.errors import DaneelError, InvalidInput, NotFound
from daneel.protocol import binary
from daneel.protocol.context import request_context
from daneel.server import http
from daneel.server.http import Response, Scope, json_response

log = logging.getLogger("daneel.rest")

Handler = Callable[[Scope, Any, str | None, str | None], Awaitable[Response]]

_SELDON_POST = {
    "/api/v1.0/predictions": "predictions",
    "/api/v0.1/predictions": "predictions",
    "/api/v1.0/feedback": "send-feedback",
    "/api/v0.1/feedback": "send-feedback",
    "/predict": "predict",
    "/transform-input": "transform-input",
    "/transform-output": "transform-output",
    "/route": "route",
    "/aggregate": "aggregate",
    "/send-feedback": "send-feedback",
}
_REPOSITORY_MODELS = "/v2/repository/models/"
_TEXT = b"text/plain; charset=utf-8"
_MODEL_SIDE = ("/predict", "/transform-input", "/transform-output", "/route", "/aggregate", "/send-feedback")


class RestApp:
    """An ASGI application over one :class:`DataPlane`."""

    def __init__(self, dataplane: DataPlane, max_body_bytes: int = 64 * 1024 * 1024) -> None:
        self.dataplane = dataplane
        self.max_body_bytes = max_body_bytes
        self.routes: dict[str, dict[str, Handler]] = {
            "/v2": {"GET": self._server_metadata},
            "/v2/health/live": {"GET": self._live},
            "/v2/health/ready": {"GET": self._ready},
            "/v2/repository/index": {"POST": self._repository_index},
            "/health/ping": {"GET": self._ping},
            "/health/status": {"GET": self._health_status},
            "/api/v1.0/metadata": {"GET": self._seldon_metadata},
            "/metadata": {"GET": self._seldon_metadata},
        }
        for path, method in _SELDON_POST.items():
            handler = self._seldon_handler(method)
            self.routes[path] = {"POST": handler, "GET": handler} if path in _MODEL_SIDE else {"POST": handler}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = _strip_gateway(scope["path"])
        seldon = not path.startswith("/v2")
        with request_context(scope["headers"]) as context:
            try:
                response = await self._dispatch(scope, receive, path, seldon)
            except DaneelError as exc:
                response = http.error_response(exc, seldon)
            except Exception as exc:  # the server never dies of a request
                log.exception("unexpected error on %s %s", scope["method"], path)
                response = http.error_response(DaneelError(f"internal error: {type(exc).__name__}: {exc}"), seldon)
        for name, value in context.response_headers.items():
            response.headers.append((name.encode("latin-1"), value.encode("latin-1")))
        await http.send(send, response)

    async def _dispatch(self, scope: Scope, receive: Any, path: str, seldon: bool) -> Response:
        methods = self.routes.get(path)
        model = version = None
        if methods is None and path.startswith("/v2/models/"):
            methods, model, version = self._model_route(path)
        if methods is None and path.startswith(_REPOSITORY_MODELS):
            methods, model = self._repository_route(path)
        if methods is None:
            raise NotFound(f"no such path: {path}")
        handler = methods.get(scope["method"])
        if handler is None:
            return http.method_not_allowed(scope["method"], path, list(methods), seldon)
        return await handler(scope, receive, model, version)

    def _model_route(self, path: str) -> tuple[dict[str, Handler] | None, str | None, str | None]:
        parts = path[len("/v2/models/") :].split("/")
        model, rest = parts[0], parts[1:]
        version = None
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = rest[1], rest[2:]
        if not model or not rest:
            return ({"GET": self._model_metadata} if model else None), model, version
        if rest == ["ready"]:
            return {"GET": self._model_ready}, model, version
        if rest == ["infer"]:
            return {"POST": self._infer}, model, version
        return None, model, version

    # Open Inference Protocol

    async def _server_metadata(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        return json_response(self.dataplane.server_metadata())

    async def _live(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        return json_response({"live": True})

    async def _ready(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        self.dataplane.ready()
        return json_response({"ready": True})

    async def _model_metadata(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        return json_response(self.dataplane.model_metadata(str(model), version))

    async def _model_ready(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        self.dataplane.model_ready(str(model), version)
        return json_response({"name": model, "ready": True})

    async def _infer(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        """JSON, or with Triton's binary tensor extension a JSON header followed by tensor bytes."""
        body = await http.read_body(scope, receive, self.max_body_bytes)
        head, blob = binary.split(body, http.header(scope, b"inference-header-content-length"))
        request = http.parse_json(head)
        wanted = binary.binary_outputs(request)
        if not blob:
            response = await self.dataplane.infer(str(model), version, request)
        else:
            response = await self.dataplane.infer_decoded(str(model), version, binary.decode_request(request, blob))
        return http.tensors_response(*binary.encode_response(response, wanted))

    # The repository extension

    def _repository_route(self, path: str) -> tuple[dict[str, Handler] | None, str | None]:
        model, _, action = path[len(_REPOSITORY_MODELS) :].partition("/")
        handler = {"load": self._load_model, "unload": self._unload_model}.get(action)
        return ({"POST": handler} if model and handler else None), model

    async def _repository_index(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        body = await http.read_body(scope, receive, self.max_body_bytes)
        request = http.parse_json(body) if body.strip() else {}
        if not isinstance(request, dict):
            raise InvalidInput("body", 'expected a JSON object such as {"ready": true}')
        ready = request.get("ready", False)
        if not isinstance(ready, bool):
            raise InvalidInput("ready", f"expected true or false, got {ready!r}")
        return json_response(self.dataplane.repository_index(ready))

    async def _load_model(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        await self.dataplane.load_model(str(model))
        return Response(200, b"", _TEXT)

    async def _unload_model(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        await self.dataplane.unload_model(str(model))
        return Response(200, b"", _TEXT)

    # Seldon protocol

    def _seldon_handler(self, method: str) -> Handler:
        async def handle(scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
            body = http.seldon_body(scope, await http.read_body(scope, receive, self.max_body_bytes))
            return json_response(await self.dataplane.seldon(method, body))

        return handle

    async def _seldon_metadata(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        return json_response(self.dataplane.seldon_metadata())

    async def _ping(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        return Response(200, b"pong", b"text/plain; charset=utf-8")

    async def _health_status(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        return json_response(await self.dataplane.health_status())


def _strip_gateway(path: str) -> str:
    """Seldon's gateway paths /seldon/<namespace>/<deployment>/... address the same endpoints."""
    if path.startswith("/seldon/"):
        parts = path.split("/", 4)
        return "/" + parts[4] if len(parts) == 5 else "/"
    return path
