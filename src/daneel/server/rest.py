"""The REST edge: Seldon's paths and the Open Inference Protocol on one port.

Handlers only translate between HTTP and the data plane. Errors are mapped to
HTTP once, in :meth:`RestApp.__call__`, in the shape of the protocol the path
belongs to.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from daneel.dataplane.dataplane import DataPlane
from daneel.errors import DaneelError, InvalidInput, NotFound, internal_error
from daneel.observe.requests import RequestMeter
from daneel.observe.tracing import Scope as SpanScope
from daneel.protocol import binary, jsonwire
from daneel.protocol.context import REQUEST_ID_HEADER, RequestContext, request_context
from daneel.server import http, openapi
from daneel.server.bodies import Decoder
from daneel.server.console import Console
from daneel.server.generate import Generation
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
_FEEDBACK = frozenset(path for path, method in _SELDON_POST.items() if method == "send-feedback")
_REPOSITORY_MODELS = "/v2/repository/models/"
_OPENAI = "/v1/"
_TEXT = b"text/plain; charset=utf-8"
_REQUEST_ID = REQUEST_ID_HEADER.encode("latin-1")
PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"
_MODEL_SIDE = ("/predict", "/transform-input", "/transform-output", "/route", "/aggregate", "/send-feedback")
#: Distinct request paths whose route is remembered; each model's paths are a handful of them.
_ROUTES_KEPT = 4096


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request path leads: its handlers by method (None: nowhere), and the model and version it names."""

    path: str  # without Seldon's gateway prefix
    seldon: bool  # errors take the Seldon protocol's shape
    methods: dict[str, Handler] | None
    model: str | None = None
    version: str | None = None
    service: str = ""  # for inference and feedback: the path as metrics name it; other paths are not measured
    openai: bool = False  # an OpenAI-compatible path (/v1/...): errors take OpenAI's shape

    @property
    def protocol(self) -> str:
        return "openai" if self.openai else "seldon" if self.seldon else "v2"


class RestApp:
    """An ASGI application over one :class:`DataPlane`."""

    def __init__(self, dataplane: DataPlane, max_body_bytes: int = 64 * 1024 * 1024) -> None:
        self.dataplane = dataplane
        self.max_body_bytes = max_body_bytes
        self.decoder = Decoder()
        self.tracing = dataplane.telemetry.tracing
        self.routes: dict[str, dict[str, Handler]] = {
            "/v2": {"GET": self._server_metadata},
            "/v2/health/live": {"GET": self._live},
            "/v2/health/ready": {"GET": self._ready},
            "/v2/repository/index": {"POST": self._repository_index},
            "/health/ping": {"GET": self._ping},
            "/health/status": {"GET": self._health_status},
            "/api/v1.0/metadata": {"GET": self._seldon_metadata},
            "/metadata": {"GET": self._seldon_metadata},
            "/openapi.json": {"GET": self._openapi},
            "/docs": {"GET": self._docs},
        }
        for path, method in _SELDON_POST.items():
            handler = self._seldon_handler(method)
            self.routes[path] = {"POST": handler, "GET": handler} if path in _MODEL_SIDE else {"POST": handler}
        self._model_routes: dict[tuple[str, ...], dict[str, Handler]] = {
            (): {"GET": self._model_metadata},
            ("ready",): {"GET": self._model_ready},
            ("infer",): {"POST": self._infer},
            ("openapi.json",): {"GET": self._model_openapi},
        }
        generation = Generation(dataplane, max_body_bytes)  # V2's generate extension, OpenAI's completions
        self._model_routes.update(generation.model_routes())
        self.routes.update(generation.routes())
        self._repository_routes: dict[str, dict[str, Handler]] = {
            "load": {"POST": self._load_model},
            "unload": {"POST": self._unload_model},
        }
        self.routes.update(Console(dataplane).routes())  # the page at / and its data under /console/api
        self._document: bytes | None = None  # built on the first request for it: the routes are fixed by then
        # Routing a path is pure, so each distinct path is parsed once rather than on every request.
        self.route = functools.lru_cache(maxsize=_ROUTES_KEPT)(self._resolve)
        metrics = dataplane.telemetry.metrics
        self.meters: dict[str, RequestMeter] | None = None
        if metrics is not None:
            self.routes["/metrics"] = {"GET": self._metrics}
            self.meters = {
                protocol: RequestMeter(metrics, dataplane.labels, protocol, _FEEDBACK)
                for protocol in ("seldon", "v2", "openai")
            }

    def templates(self) -> list[tuple[str, str]]:
        """Every path this app answers, as an OpenAPI path template, with each of its methods."""
        found = [(path, method) for path, methods in self.routes.items() for method in methods]
        for prefix in ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}"):
            for parts, methods in self._model_routes.items():
                found += [("/".join((prefix, *parts)), method) for method in methods]
        for action, methods in self._repository_routes.items():
            found += [(f"{_REPOSITORY_MODELS}{{model_name}}/{action}", method) for method in methods]
        return found

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        route = self.route(scope["path"])
        meter = self.meters[route.protocol] if self.meters is not None and route.service else None
        if meter is not None:
            start, in_flight = time.perf_counter(), meter.started(route.model)
        with request_context(scope["headers"]) as context:
            span = None if self.tracing is None or not route.service else self._span(scope, route, context)
            try:
                response = await self._handler(scope, route)(scope, receive, route.model, route.version)
            except DaneelError as exc:
                response = _error_response(exc, route)
            except Exception:  # the server never dies of a request; the detail is for the log, not the client
                log.exception("unexpected error on %s %s (request %s)", scope["method"], route.path, context.request_id)
                response = _error_response(internal_error(context.request_id), route)
            if span is not None:
                span.answered(response.status, context.predictor)
        for name, value in context.response_headers.items():
            response.headers.append((name.encode("latin-1"), value.encode("latin-1")))
        response.headers.append((_REQUEST_ID, context.request_id.encode("latin-1")))
        if isinstance(response, http.Stream):  # a stream's time is all of it, to its last piece
            await http.send_stream(send, receive, response)
            if meter is None:
                return
            seconds = time.perf_counter() - start
        elif meter is None:
            await http.send(send, response)
            return
        else:
            seconds = time.perf_counter() - start
            await http.send(send, response)  # the answer leaves first; counting it can wait a moment
        in_flight.dec()
        meter.done(route.model, route.service, context.predictor, str(response.status), seconds)

    def _span(self, scope: Scope, route: Route, context: RequestContext) -> SpanScope:
        """A traced request's server span: requests to models only, as for metrics, not health checks."""
        assert self.tracing is not None
        model = self.dataplane.labels(route.model)[0]
        return self.tracing.http(scope["method"], route.service, route.protocol, model, context)

    def _handler(self, scope: Scope, route: Route) -> Handler:
        """The route's handler for the request's method; called by the caller, not here (one coroutine less)."""
        if route.methods is None:
            raise NotFound(f"no such path: {route.path}")
        return route.methods.get(scope["method"]) or self._not_allowed

    async def _not_allowed(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        route = self.route(scope["path"])
        if route.openai:
            message = f"method {scope['method']} not allowed on {route.path}; use {', '.join(route.methods or ())}"
            response = http.openai_error(InvalidInput("", message))
            response.status = 405
            return response
        return http.method_not_allowed(scope["method"], route.path, list(route.methods or ()), route.seldon)

    def _resolve(self, raw_path: str) -> Route:
        path = _strip_gateway(raw_path)
        seldon = not path.startswith("/v2")
        methods = self.routes.get(path)
        if path.startswith(_OPENAI):
            return Route(path, False, methods, service=path if methods and "POST" in methods else "", openai=True)
        if methods is not None:
            return Route(path, seldon, methods, service=path if path in _SELDON_POST else "")
        if path.startswith("/v2/models/"):
            methods, model, version = self._model_route(path[len("/v2/models/") :].split("/"))
            infer = methods is not None and "POST" in methods
            service = "/v2/models/{model}/" + path.rsplit("/", 1)[1] if infer else ""
            return Route(path, seldon, methods, model, version, service)
        if path.startswith(_REPOSITORY_MODELS):
            model, _, action = path[len(_REPOSITORY_MODELS) :].partition("/")
            return Route(path, seldon, self._repository_routes.get(action) if model else None, model)
        return Route(path, seldon, None)

    def _model_route(self, parts: list[str]) -> tuple[dict[str, Handler] | None, str, str | None]:
        """/v2/models/{model}[/versions/{version}][/ready|/infer], split at its slashes after /v2/models/."""
        model, rest = parts[0], parts[1:]
        version = None
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = rest[1], rest[2:]
        return (self._model_routes.get(tuple(rest)) if model else None), model, version

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
        length = http.header(scope, b"inference-header-content-length")
        if http.json_size(body, length) >= http.LARGE_BODY:  # decoded in a helper process: the loop keeps serving
            decoded, wanted = await self.decoder(http.decode_infer, body, length)
            response = await self.dataplane.infer_decoded(str(model), version, decoded)
            self.dataplane.check_json(str(model), response, wanted.wants)
            return self._answer(str(model), _infer_response, response, wanted)
        request, wanted, blob = http.parse_infer(body, length)
        if not blob:
            response = await self.dataplane.infer(str(model), version, request)
        else:
            response = await self.dataplane.infer_decoded(str(model), version, binary.decode_request(request, blob))
        self.dataplane.check_json(str(model), response, wanted.wants)
        return self._answer(str(model), _infer_response, response, wanted)

    def _answer(self, model: str | None, encode: Callable[..., Response], *args: Any) -> Response:
        """`encode(*args)`, a model's answer on the wire; one that JSON cannot hold is the model's error."""
        try:
            return encode(*args)
        except TypeError as exc:  # orjson's JSONEncodeError is one
            raise self.dataplane.unencodable(model, exc) from exc

    # The repository extension

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
            return self._answer(None, json_response, await self.dataplane.seldon(method, body))

        return handle

    async def _seldon_metadata(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        return json_response(self.dataplane.seldon_metadata())

    async def _metrics(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        assert self.dataplane.telemetry.metrics is not None
        return Response(200, self.dataplane.telemetry.metrics.registry.render(), PROMETHEUS_TEXT)

    # The OpenAPI documents and the page that shows them

    async def _openapi(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        if self._document is None:
            self._document = jsonwire.dumps(openapi.document(self.templates(), self.is_seldon))
        return Response(200, self._document)

    async def _model_openapi(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        metadata = self.dataplane.model_metadata(str(model), version)
        generates = self.dataplane.generates(str(model), version)
        return json_response(openapi.model_document(metadata, self.templates(), self.is_seldon, generates))

    def is_seldon(self, path: str) -> bool:
        """Whether errors on `path` take the Seldon protocol's shape (else V2's)."""
        return self.route(path).seldon

    async def _docs(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        return Response(200, openapi.page(), b"text/html; charset=utf-8")

    async def _ping(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        return Response(200, b"pong", b"text/plain; charset=utf-8")

    async def _health_status(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        return json_response(await self.dataplane.health_status())


def _infer_response(response: Any, wanted: binary.BinaryOutputs) -> Response:
    if not (wanted.default or wanted.named):
        return json_response(response)  # nothing asked for in binary: plain JSON, nothing to split out
    return http.tensors_response(*binary.encode_response(response, wanted))


def _error_response(exc: DaneelError, route: Route) -> Response:
    return http.openai_error(exc) if route.openai else http.error_response(exc, route.seldon)


def _strip_gateway(path: str) -> str:
    """Seldon's gateway paths /seldon/<namespace>/<deployment>/... address the same endpoints."""
    if path.startswith("/seldon/"):
        parts = path.split("/", 4)
        return "/" + parts[4] if len(parts) == 5 else "/"
    return path
