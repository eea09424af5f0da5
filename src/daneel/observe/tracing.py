"""OpenTelemetry traces: a span for each request at the edges, and one for each call on a graph node.

Tracing is off unless the standard OTEL_* variables name an exporter (an OTLP endpoint, or
OTEL_TRACES_EXPORTER). It is read by :func:`from_environ` when a serving process starts; each
process (each worker, after the fork) makes its own TracerProvider, never the global one, and
hands it down in :class:`Tracing`. OpenTelemetry is imported only then: a server without tracing
neither pays for the import at start nor for anything but an `is None` test per request.

Spans find their parent through OpenTelemetry's context, a contextvar: concurrent requests and a
graph's children, which run as asyncio tasks that copy the context, each see their own. The W3C
`traceparent` and `tracestate` headers of a caller make the request span its child, and are sent
on to remote nodes (:func:`outgoing_headers`).
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import sys
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote

from daneel.errors import DaneelError, describe
from daneel.protocol.context import RequestContext
from daneel.version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler
    from opentelemetry.trace import Span
    from opentelemetry.util.types import AttributeValue

T = TypeVar("T")

Attributes = Mapping[str, "AttributeValue"]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
EXPORTERS = ("otlp", "console")
PROTOCOLS = ("http/protobuf", "grpc")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
#: Where OTLP goes when OTEL_TRACES_EXPORTER=otlp names no endpoint: a collector on this host.
DEFAULT_ENDPOINTS = {"http/protobuf": "http://localhost:4318", "grpc": "http://localhost:4317"}
_TRACES_PATH = "v1/traces"
_OTLP_MODULES = {
    "http/protobuf": "opentelemetry.exporter.otlp.proto.http",
    "grpc": "opentelemetry.exporter.otlp.proto.grpc",
}
#: gRPC status codes that are the server's failure rather than the caller's (UNKNOWN, DEADLINE_EXCEEDED,
#: UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS), as OpenTelemetry's conventions for RPC spans list them.
_GRPC_SERVER_ERRORS = frozenset({2, 4, 12, 13, 14, 15})


@dataclass(frozen=True, slots=True)
class Settings:
    """What the OTEL_* variables ask for, checked; see docs/tracing.md."""

    exporters: tuple[str, ...]
    endpoint: str  # where OTLP spans go: the full URL over HTTP, the collector's address over gRPC
    protocol: str = "http/protobuf"
    sampler: str = "parentbased_always_on"
    ratio: float = 1.0
    resource: dict[str, str] = field(default_factory=dict)


def settings(environ: Mapping[str, str], service: str = "daneel") -> Settings | None:
    """The tracing that `environ` configures, or None when it configures none.

    Cheap and free of OpenTelemetry, so that a command can check the variables before it forks
    workers; a variable with a value daneel cannot use raises DaneelError naming it.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporters = _exporters(environ)
    if not exporters:
        return None
    protocol = _protocol(environ)
    sampler, ratio = _sampler(environ)
    _check_installed(exporters, protocol)
    return Settings(exporters, _endpoint(environ, protocol), protocol, sampler, ratio, _resource(environ, service))


def from_environ(environ: Mapping[str, str], service: str = "daneel") -> Tracing | None:
    """This process's tracing as `environ` configures it, or None (tracing off).

    Call it in the process that serves, once it runs: the span processor starts a thread.
    """
    found = settings(environ, service)
    return None if found is None else Tracing(provider(found))


def _exporters(environ: Mapping[str, str]) -> tuple[str, ...]:
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not named:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        return ("otlp",) if endpoint else ()
    exporters = tuple(dict.fromkeys(name.strip() for name in named.split(",") if name.strip()))
    if "none" in exporters:
        return ()
    for name in exporters:
        if name not in EXPORTERS:
            raise DaneelError(f"OTEL_TRACES_EXPORTER: unknown exporter {name!r}; expected otlp, console or none")
    return exporters


def _check_installed(exporters: tuple[str, ...], protocol: str) -> None:
    """Fail with the install command, rather than a traceback in each worker, when the SDK or exporter is missing."""
    modules = ["opentelemetry.sdk"]
    if "otlp" in exporters:
        modules.append(_OTLP_MODULES[protocol])
    for module in modules:
        try:
            found = importlib.util.find_spec(module)
        except ImportError:
            found = None
        if found is None:
            raise DaneelError(f"tracing needs {module}, from daneel's tracing extra: pip install 'daneel[tracing]'")


def _protocol(environ: Mapping[str, str]) -> str:
    variable = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
    if not environ.get(variable):
        variable = "OTEL_EXPORTER_OTLP_PROTOCOL"
    protocol = environ.get(variable, "").strip().lower() or "http/protobuf"
    if protocol not in PROTOCOLS:
        raise DaneelError(f"{variable}: {protocol!r} is not supported; expected http/protobuf or grpc")
    return protocol


def _endpoint(environ: Mapping[str, str], protocol: str) -> str:
    """The traces endpoint: the per-signal variable as it is, else the base one (plus /v1/traces over HTTP)."""
    exact = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if exact:
        return exact
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or DEFAULT_ENDPOINTS[protocol]
    if protocol == "grpc":
        return base
    return base if base.endswith(_TRACES_PATH) else base.rstrip("/") + "/" + _TRACES_PATH


def _sampler(environ: Mapping[str, str]) -> tuple[str, float]:
    name = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    if name not in SAMPLERS:
        raise DaneelError(f"OTEL_TRACES_SAMPLER: unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")
    argument = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if not name.endswith("traceidratio") or not argument:
        return name, 1.0
    try:
        ratio = float(argument)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise DaneelError(f"OTEL_TRACES_SAMPLER_ARG: expected a ratio from 0 to 1, got {argument!r}")
    return name, ratio


def _resource(environ: Mapping[str, str], service: str) -> dict[str, str]:
    """OTEL_RESOURCE_ATTRIBUTES (key=value,... percent-encoded), the service named by OTEL_SERVICE_NAME first."""
    attributes = {"service.name": service}
    for item in environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, equals, value = item.partition("=")
        if equals and key.strip():
            attributes[unquote(key.strip())] = unquote(value.strip())
    if environ.get("OTEL_SERVICE_NAME", "").strip():
        attributes["service.name"] = environ["OTEL_SERVICE_NAME"].strip()
    return attributes


def provider(found: Settings) -> TracerProvider:
    """A TracerProvider that batches spans to the exporters `found` names."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Closed by Tracing.close, on the serving loop's way out, rather than by an atexit hook of the SDK's.
    made = TracerProvider(sampler=_sampling(found), resource=Resource(found.resource), shutdown_on_exit=False)
    for name in found.exporters:
        made.add_span_processor(BatchSpanProcessor(_exporter(name, found)))
    return made


def _exporter(name: str, found: Settings) -> SpanExporter:
    """One exporter; headers, timeouts, compression and certificates are read from OTEL_* by the exporter itself."""
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # One span per line on stdout, as it is when the server starts (a test may have replaced it).
        return ConsoleSpanExporter(out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n")
    if found.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(endpoint=found.endpoint)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=found.endpoint)


def _sampling(found: Settings) -> Sampler:
    from opentelemetry.sdk.trace import sampling

    root: Sampler = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(found.ratio),
    }[found.sampler.removeprefix("parentbased_")]
    return sampling.ParentBased(root) if found.sampler.startswith("parentbased_") else root


#: The tracing of the span being served, for calls out of it (remote nodes) and for log lines in it.
_active: contextvars.ContextVar[Tracing | None] = contextvars.ContextVar("daneel_tracing", default=None)


def outgoing_headers() -> dict[str, str] | None:
    """`traceparent` (and `tracestate`) for a call made from within the current span; None when not traced."""
    tracing = _active.get()
    return None if tracing is None else tracing.inject()


def current_ids() -> tuple[str, str] | None:
    """The current span's trace id and span id in hex, as logs show them; None when not traced."""
    tracing = _active.get()
    return None if tracing is None else tracing.ids()


class Tracing:
    """One process's tracer and how its spans propagate; made by :func:`from_environ`, closed by its owner."""

    def __init__(self, tracer_provider: TracerProvider) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = tracer_provider
        self._tracer = tracer_provider.get_tracer("daneel", __version__)
        self._propagator = TraceContextTextMapPropagator()
        # The API's functions kept at hand: the request path then looks no module attribute up.
        self._attach, self._detach, self._empty = context.attach, context.detach, context.Context
        self._in_context, self._current_span = trace.set_span_in_context, trace.get_current_span
        self._server, self._internal = trace.SpanKind.SERVER, trace.SpanKind.INTERNAL
        self._status, self._error = trace.Status, trace.StatusCode.ERROR

    def request(self, name: str, attributes: Attributes, traceparent: str | None, tracestate: str | None) -> Scope:
        """A server span for one request, made current; its parent is the caller's `traceparent`, if valid."""
        parent = self._empty()
        if traceparent is not None:
            carrier = {TRACEPARENT: traceparent}
            if tracestate is not None:
                carrier[TRACESTATE] = tracestate
            parent = self._propagator.extract(carrier, parent)
        return Scope(self, self._tracer.start_span(name, parent, self._server, attributes))

    def http(self, method: str, route: str, protocol: str, model: str, request: RequestContext) -> Scope:
        """The server span of an HTTP request to a model, named by its method and route template."""
        attributes = {"http.request.method": method, "http.route": route, "daneel.protocol": protocol}
        if model:
            attributes["daneel.model"] = model
        traceparent, tracestate = request.header(TRACEPARENT), request.header(TRACESTATE)
        return self.request(f"{method} {route}", attributes, traceparent, tracestate)

    def rpc(self, service: str, method: str, model: str, request: RequestContext) -> Scope:
        """The server span of a gRPC call to a model, named `service/method` as OpenTelemetry's RPC spans are."""
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method, "daneel.protocol": "v2"}
        if model:
            attributes["daneel.model"] = model
        traceparent, tracestate = request.header(TRACEPARENT), request.header(TRACESTATE)
        return self.request(f"{service}/{method}", attributes, traceparent, tracestate)

    def start(self, name: str, attributes: Attributes) -> Scope:
        """An internal span, child of the current one, made current."""
        return Scope(self, self._tracer.start_span(name, None, self._internal, attributes))

    async def span(self, name: str, attributes: Attributes, call: Awaitable[T]) -> T:
        """Await `call` within a span of its own; a failure marks the span as an error."""
        scope = self.start(name, attributes)
        try:
            return await call
        except BaseException as exc:
            scope.fail(exc)
            raise
        finally:
            scope.end()

    def inject(self) -> dict[str, str]:
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier)
        return carrier

    def ids(self) -> tuple[str, str] | None:
        found = self._current_span().get_span_context()
        return (f"{found.trace_id:032x}", f"{found.span_id:016x}") if found.is_valid else None

    async def close(self) -> None:
        """Export what is still batched, then stop; the exporters' network calls run off the loop."""
        await asyncio.to_thread(self.provider.shutdown)


class Scope:
    """A started span, current until :meth:`end` (which must run in the same task that started it)."""

    __slots__ = ("_active", "_token", "_tracing", "span")

    def __init__(self, tracing: Tracing, span: Span) -> None:
        self._tracing = tracing
        self.span = span
        self._token = tracing._attach(tracing._in_context(span))
        self._active = _active.set(tracing)

    def set(self, key: str, value: AttributeValue | None) -> None:
        if value is not None and value != "":
            self.span.set_attribute(key, value)

    def fail(self, error: BaseException | str) -> None:
        """Mark the span as failed: with the exception as an event, or with a message."""
        if isinstance(error, BaseException):
            self.span.record_exception(error)
            error = error.message if isinstance(error, DaneelError) else describe(error)
        self.span.set_status(self._tracing._status(self._tracing._error, error))

    def answered(self, status: int, predictor: str | None) -> None:
        """End an HTTP request's span; a 5xx marks it failed (a 4xx is the caller's error, not the server's)."""
        self.span.set_attribute("http.response.status_code", status)
        self.set("daneel.predictor", predictor)
        if status >= 500:
            self.fail("")
        self.end()

    def returned(self, code: int, predictor: str | None, message: str = "") -> None:
        """End a gRPC call's span with its status code (0 is OK); the server's own failures mark it failed."""
        self.span.set_attribute("rpc.grpc.status_code", code)
        self.set("daneel.predictor", predictor)
        if code in _GRPC_SERVER_ERRORS:
            self.fail(message)
        self.end()

    def end(self) -> None:
        _active.reset(self._active)
        self._tracing._detach(self._token)
        self.span.end()


def http_route(path: str, model: str | None, version: str | None) -> str:
    """A request path with the model and version it names as placeholders, so span names stay few."""
    if model:
        path = path.replace(f"/{model}", "/{model}", 1)
    if version:
        path = path.replace(f"/versions/{version}", "/versions/{version}", 1)
    return path
