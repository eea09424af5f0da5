"""The gRPC edge: `inference.GRPCInferenceService` and MLServer's `ModelRepositoryService`.

Servicers only translate between messages and the data plane, like the REST edge. Errors are
mapped to gRPC status codes once, by :data:`GRPC_STATUS`, in :func:`_answer`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from grpc import aio

from daneel.dataplane.dataplane import DataPlane
from daneel.errors import DaneelError, ErrorCode, NotReady, Overloaded, internal_error
from daneel.observe.requests import RequestMeter
from daneel.observe.tracing import Tracing
from daneel.protocol import v2grpc
from daneel.protocol.context import REQUEST_ID_HEADER, RequestContext, request_context
from daneel.protocol.proto import grpc_predict_v2_pb2 as pb
from daneel.protocol.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from daneel.protocol.proto import model_repository_pb2 as repo_pb
from daneel.protocol.proto import model_repository_pb2_grpc as repo_grpc
from daneel.server import access
from daneel.server.auth import Auth, grpc_group

log = logging.getLogger("daneel.grpc")

T = TypeVar("T")

INFERENCE_SERVICE = "inference.GRPCInferenceService"

#: The one table from daneel's error codes to gRPC status codes (the REST twin is http.HTTP_STATUS).
GRPC_STATUS: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.INVALID_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.PAYLOAD_TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.REJECTED: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.NOT_READY: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.NOT_IMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    ErrorCode.MODEL_ERROR: grpc.StatusCode.INTERNAL,
    ErrorCode.TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorCode.OVERLOADED: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.LOAD_ERROR: grpc.StatusCode.INTERNAL,
    ErrorCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
}


async def _answer(
    context: aio.ServicerContext,
    method: str,
    call: Callable[[], Awaitable[T]],
    meter: RequestMeter | None = None,
    model: str | None = None,
    tracing: Tracing | None = None,
) -> T:
    """Run one call with the request's metadata as its headers (for the layers below, as over REST).

    A failure ends the RPC with its status code and message; the server never dies of it. Headers
    the layers below add go back as metadata: initial on success, trailing on failure; the request's
    id (`x-request-id`) goes back in the trailing metadata either way. With a `meter`, the call is
    counted and timed as a request to `model`; with `tracing`, it is a span.
    """
    if meter is not None:
        start, in_flight = time.perf_counter(), meter.started(model)
    with request_context(_headers(context)) as request:
        span = None if tracing is None else tracing.rpc(INFERENCE_SERVICE, method, model or "", request)

        def finished(code: grpc.StatusCode, message: str = "") -> None:
            if span is not None:
                span.returned(code.value[0], request.predictor, message)
            if meter is not None:
                in_flight.dec()
                meter.done(model, method, request.predictor, code.name, time.perf_counter() - start)

        try:
            result = await call()
        except Exception as exc:
            code, message, extra = _failure(exc, method, request.request_id)
            finished(code, message)
            context.set_trailing_metadata((*_metadata(request.response_headers), *extra, _id(request)))
            await context.abort(code, message)
            raise AssertionError("context.abort returns only by raising") from exc
        finished(grpc.StatusCode.OK)
    context.set_trailing_metadata((_id(request),))
    if request.response_headers:
        await context.send_initial_metadata(_metadata(request.response_headers))
    return result


def _metadata(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((name.lower(), value) for name, value in headers.items())


def _id(request: RequestContext) -> tuple[str, str]:
    return REQUEST_ID_HEADER, request.request_id


def _request_id(context: aio.ServicerContext) -> str | None:
    """The id :func:`_answer` sent back in the trailing metadata, else the client's (calls outside `_answer`)."""
    for metadata in (context.trailing_metadata(), context.invocation_metadata()):
        for key, value in metadata or ():
            if key == REQUEST_ID_HEADER:
                return str(value)
    return None


def _headers(context: aio.ServicerContext) -> list[tuple[bytes, bytes]]:
    """Invocation metadata as ASGI-style headers (names are lower-case in gRPC already)."""
    return [
        (key.encode("latin-1"), value if isinstance(value, bytes) else value.encode("latin-1"))
        for key, value in context.invocation_metadata() or ()
    ]


def _failure(exc: Exception, method: str, request_id: str) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str], ...]]:
    """The status code, details and extra trailing metadata for an error; call it while handling `exc`.

    An error that is not daneel's own is logged in full, and the client told only the request's id.
    """
    if not isinstance(exc, DaneelError):
        log.exception("unexpected error in %s (request %s)", method, request_id)
        return grpc.StatusCode.INTERNAL, internal_error(request_id).message, ()
    extra = (("retry-after", str(max(1, round(exc.retry_after)))),) if isinstance(exc, Overloaded) else ()
    return GRPC_STATUS.get(exc.code, grpc.StatusCode.INTERNAL), exc.message, extra


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """The Open Inference Protocol over one :class:`DataPlane`."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane
        metrics = dataplane.telemetry.metrics
        self.meter = RequestMeter(metrics, dataplane.labels, "grpc") if metrics is not None else None
        self.tracing = dataplane.telemetry.tracing

    async def ServerLive(self, request: pb.ServerLiveRequest, context: aio.ServicerContext) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: aio.ServicerContext) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=_holds(self.dataplane.ready))

    async def ModelReady(self, request: pb.ModelReadyRequest, context: aio.ServicerContext) -> pb.ModelReadyResponse:
        async def ready() -> pb.ModelReadyResponse:
            return pb.ModelReadyResponse(
                ready=_holds(lambda: self.dataplane.model_ready(request.name, request.version or None))
            )

        return await _answer(context, "ModelReady", ready)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: aio.ServicerContext
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**self.dataplane.server_metadata())

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        async def metadata() -> pb.ModelMetadataResponse:
            return v2grpc.metadata_response(self.dataplane.model_metadata(request.name, request.version or None))

        return await _answer(context, "ModelMetadata", metadata)

    async def ModelInfer(self, request: pb.ModelInferRequest, context: aio.ServicerContext) -> pb.ModelInferResponse:
        async def infer() -> pb.ModelInferResponse:
            decoded = v2grpc.decode_request(request)
            response = await self.dataplane.infer_decoded(request.model_name, request.model_version or None, decoded)
            return v2grpc.encode_response(response, raw=bool(request.raw_input_contents))

        return await _answer(context, "ModelInfer", infer, self.meter, request.model_name, self.tracing)


def _holds(check: Callable[[], None]) -> bool:
    """Whether a readiness check passes; a model or server that is not ready is an answer, not an error."""
    try:
        check()
    except NotReady:
        return False
    return True


class RepositoryServicer(repo_grpc.ModelRepositoryServiceServicer):
    """MLServer's repository calls: list, load and unload models."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane

    async def RepositoryIndex(
        self, request: repo_pb.RepositoryIndexRequest, context: aio.ServicerContext
    ) -> repo_pb.RepositoryIndexResponse:
        async def index() -> repo_pb.RepositoryIndexResponse:
            entries = self.dataplane.repository_index(request.ready)
            return repo_pb.RepositoryIndexResponse(models=[_index_entry(entry) for entry in entries])

        return await _answer(context, "RepositoryIndex", index)

    async def RepositoryModelLoad(
        self, request: repo_pb.RepositoryModelLoadRequest, context: aio.ServicerContext
    ) -> repo_pb.RepositoryModelLoadResponse:
        async def load() -> repo_pb.RepositoryModelLoadResponse:
            await self.dataplane.load_model(request.model_name)
            return repo_pb.RepositoryModelLoadResponse()

        return await _answer(context, "RepositoryModelLoad", load)

    async def RepositoryModelUnload(
        self, request: repo_pb.RepositoryModelUnloadRequest, context: aio.ServicerContext
    ) -> repo_pb.RepositoryModelUnloadResponse:
        async def unload() -> repo_pb.RepositoryModelUnloadResponse:
            await self.dataplane.unload_model(request.model_name)
            return repo_pb.RepositoryModelUnloadResponse()

        return await _answer(context, "RepositoryModelUnload", unload)


def _index_entry(entry: dict[str, Any]) -> repo_pb.RepositoryIndexResponse.ModelIndex:
    fields = ("name", "version", "state", "reason")
    return repo_pb.RepositoryIndexResponse.ModelIndex(**{f: str(entry.get(f) or "") for f in fields})


class _WrappingInterceptor(aio.ServerInterceptor):  # type: ignore[misc]  # grpc.aio has no stubs
    """Wraps each unary method's handler once, with what :meth:`wrap` gives for it, and keeps the result."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = details.method
        found = self._wrapped.get(method)
        if found is None:
            handler = await continuation(details)
            behaviour = (
                None if handler is None or handler.unary_unary is None else self.wrap(method, handler.unary_unary)
            )
            if behaviour is None:
                return handler
            found = self._wrapped[method] = _rewrapped(handler, behaviour)
        return found

    def wrap(self, method: str, behaviour: Callable[[Any, aio.ServicerContext], Awaitable[Any]]) -> Any:
        """What runs instead of `method`'s unary `behaviour`, or None to leave its handler as it is."""
        raise NotImplementedError


class AccessLogInterceptor(_WrappingInterceptor):
    """Logs each unary call once answered, with its status code; each method's handler is wrapped once."""

    def wrap(self, method: str, behaviour: Callable[[Any, aio.ServicerContext], Awaitable[Any]]) -> Any:
        return _logged(method, behaviour)


def _rewrapped(handler: grpc.RpcMethodHandler, behaviour: Any) -> grpc.RpcMethodHandler:
    """A unary handler like `handler`, running `behaviour` instead."""
    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
    )


class AuthInterceptor(_WrappingInterceptor):
    """Ends a call to a guarded method with UNAUTHENTICATED unless its `authorization` metadata holds the token.

    The check runs in the handler, for each call; each guarded method's handler is wrapped once.
    """

    def __init__(self, auth: Auth) -> None:
        super().__init__()
        self.auth = auth

    def wrap(self, method: str, behaviour: Callable[[Any, aio.ServicerContext], Awaitable[Any]]) -> Any:
        return _guarded(self.auth, behaviour) if self.auth.guards(grpc_group(method)) else None


def _guarded(auth: Auth, behaviour: Callable[[Any, aio.ServicerContext], Awaitable[Any]]) -> Any:
    async def guarded(request: Any, context: aio.ServicerContext) -> Any:
        given = next((str(v) for k, v in context.invocation_metadata() or () if k == "authorization"), None)
        refused = auth.refusal(given)
        if refused is not None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, refused)
        return await behaviour(request, context)

    return guarded


def _logged(method: str, behaviour: Callable[[Any, aio.ServicerContext], Awaitable[Any]]) -> Any:
    async def logged(request: Any, context: aio.ServicerContext) -> Any:
        start = time.perf_counter()
        try:
            return await behaviour(request, context)
        finally:
            code = context.code() or (grpc.StatusCode.CANCELLED if context.cancelled() else grpc.StatusCode.OK)
            access.call(method, code.name, time.perf_counter() - start, _request_id(context), context.peer())

    return logged


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def start(
    dataplane: DataPlane,
    host: str,
    port: int,
    max_message_bytes: int,
    access_log: bool = False,
    auth: Auth | None = None,
    credentials: grpc.ServerCredentials | None = None,
) -> aio.Server:
    """Listen on host:port and serve; a port that cannot be bound stops the process with one line.

    With `access_log`, each call is logged once answered (:mod:`daneel.server.access`); with `auth`,
    guarded calls need its token; with `credentials`, the port speaks TLS.
    """
    interceptors = [AccessLogInterceptor()] if access_log else []
    if auth is not None:
        interceptors.append(AuthInterceptor(auth))  # inside the access log, which then logs refusals too
    server = aio.server(
        interceptors=interceptors or None,
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ],
    )
    # protoc writes these without annotations
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(dataplane), server)  # type: ignore[no-untyped-call]
    repo_grpc.add_ModelRepositoryServiceServicer_to_server(RepositoryServicer(dataplane), server)  # type: ignore[no-untyped-call]
    try:
        if credentials is None:
            server.add_insecure_port(address(host, port))
        else:
            server.add_secure_port(address(host, port), credentials)
    except RuntimeError:
        raise SystemExit(f"daneel: cannot listen for gRPC on {address(host, port)}") from None
    await server.start()
    return server
