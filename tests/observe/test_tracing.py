"""Tracing: what the OTEL_* variables turn on, and how spans find their parents.

Spans go to the SDK's in-memory exporter through a real TracerProvider; the end-to-end test with
an OTLP collector and `daneel serve` is tests/server/test_tracing.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode

from daneel.errors import DaneelError, ModelError
from daneel.observe import tracing
from daneel.observe.tracing import Settings, Tracing

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(exported: InMemorySpanExporter) -> Iterator[Tracing]:
    provider = TracerProvider(resource=Resource({"service.name": "test"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exported))
    yield Tracing(provider)
    provider.shutdown()


def _by_name(exported: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exported.get_finished_spans()}


# What the variables configure


def test_nothing_configured_is_off() -> None:
    assert tracing.settings({}) is None
    assert tracing.from_environ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}) is None


def test_an_endpoint_turns_otlp_on_and_gets_the_traces_path() -> None:
    found = tracing.settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
    assert found == Settings(("otlp",), "http://collector:4318/v1/traces", resource={"service.name": "daneel"})


def test_the_traces_endpoint_is_used_as_it_is() -> None:
    environ = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}
    found = tracing.settings(environ)
    assert found is not None and found.endpoint == "http://c:4318/custom"


def test_grpc_keeps_the_base_endpoint_and_defaults_to_port_4317() -> None:
    grpc = tracing.settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert grpc is not None and (grpc.protocol, grpc.endpoint) == ("grpc", "http://c:4317")
    default = tracing.settings({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"})
    assert default is not None and default.endpoint == "http://localhost:4317"


def test_exporter_otlp_without_endpoint_goes_to_a_local_collector() -> None:
    found = tracing.settings({"OTEL_TRACES_EXPORTER": "otlp,console"})
    assert found is not None
    assert found.exporters == ("otlp", "console")
    assert found.endpoint == "http://localhost:4318/v1/traces"


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
    ],
)
def test_none_and_a_disabled_sdk_turn_tracing_off(environ: dict[str, str]) -> None:
    assert tracing.settings(environ) is None


def test_service_name_comes_from_the_variable_then_resource_attributes_then_the_caller() -> None:
    on = {"OTEL_TRACES_EXPORTER": "console"}
    assert tracing.settings(on, "iris-ab").resource == {"service.name": "iris-ab"}  # type: ignore[union-attr]
    attributes = {**on, "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,deployment.environment=prod%20eu"}
    found = tracing.settings(attributes, "iris-ab")
    assert found is not None
    assert found.resource == {"service.name": "from-attrs", "deployment.environment": "prod eu"}
    named = tracing.settings({**attributes, "OTEL_SERVICE_NAME": "svc"}, "iris-ab")
    assert named is not None and named.resource["service.name"] == "svc"


def test_samplers_are_read_with_their_ratio() -> None:
    on = {"OTEL_TRACES_EXPORTER": "console"}
    found = tracing.settings(
        {**on, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    )
    assert found is not None and (found.sampler, found.ratio) == ("parentbased_traceidratio", 0.25)
    sampler = tracing.provider(found).sampler
    assert isinstance(sampler, ParentBased)
    assert isinstance(sampler._root, TraceIdRatioBased) and sampler._root.rate == 0.25


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER: unknown exporter 'zipkin'"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' is not supported",
        ),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER: unknown"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
            "OTEL_TRACES_SAMPLER_ARG: expected a ratio from 0 to 1, got '2'",
        ),
    ],
)
def test_values_daneel_cannot_use_name_their_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(DaneelError, match=message):
        tracing.settings(environ)


def test_a_missing_exporter_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporter is installed here; an entry of None in sys.modules makes it missing, as it is without the extra."""
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc", None)
    with pytest.raises(
        DaneelError, match=r"opentelemetry\.exporter\.otlp\.proto\.grpc.*pip install 'daneel\[tracing\]'"
    ):
        tracing.settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert tracing.settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) is not None


def test_tracing_off_never_imports_opentelemetry() -> None:
    code = (
        "import sys; from daneel.observe import tracing, logs;"
        "assert tracing.from_environ({}) is None and tracing.outgoing_headers() is None;"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# Spans and their parents


def test_a_request_span_is_the_child_of_the_callers_traceparent(
    traced: Tracing, exported: InMemorySpanExporter
) -> None:
    scope = traced.request("POST /v2/models/{model}/infer", {"daneel.model": "iris"}, TRACEPARENT, "vendor=1")
    scope.set("http.response.status_code", 200)
    scope.set("daneel.predictor", None)
    scope.end()
    (span,) = exported.get_finished_spans()
    assert span.kind is SpanKind.SERVER
    assert f"{span.context.trace_id:032x}" == CALLER_TRACE
    assert span.parent is not None and f"{span.parent.span_id:016x}" == CALLER_SPAN and span.parent.is_remote
    assert span.context.trace_state.get("vendor") == "1"
    assert dict(span.attributes or {}) == {"daneel.model": "iris", "http.response.status_code": 200}
    assert span.resource.attributes["service.name"] == "test"


@pytest.mark.parametrize("traceparent", [None, "garbage", "00-00000000000000000000000000000000-b7ad6b7169203331-01"])
def test_without_a_valid_traceparent_the_request_starts_a_trace(
    traced: Tracing, exported: InMemorySpanExporter, traceparent: str | None
) -> None:
    traced.request("GET", {}, traceparent, None).end()
    (span,) = exported.get_finished_spans()
    assert span.parent is None


def test_node_spans_are_children_of_the_request_even_when_run_concurrently(
    traced: Tracing, exported: InMemorySpanExporter
) -> None:
    async def node(name: str) -> str | None:
        await asyncio.sleep(0)  # let the other branch interleave
        return tracing.current_ids()[1] if tracing.current_ids() else None

    async def request() -> tuple[list[str | None], str | None]:
        scope = traced.request("POST /api/v1.0/predictions", {}, TRACEPARENT, None)
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(traced.span(f"{n}.predict", {"daneel.node": n}, node(n))) for n in "ab"]
        after = tracing.current_ids()
        scope.end()
        return [task.result() for task in tasks], after[1] if after else None

    inner, after = asyncio.run(request())
    spans = _by_name(exported)
    server = spans["POST /api/v1.0/predictions"]
    assert after == f"{server.context.span_id:016x}"  # the request span is current again after its children
    for name, seen in zip("ab", inner, strict=True):
        child = spans[f"{name}.predict"]
        assert child.parent is not None and child.parent.span_id == server.context.span_id
        assert child.context.trace_id == server.context.trace_id
        assert seen == f"{child.context.span_id:016x}"  # what ran in the node saw the node's span
    assert tracing.current_ids() is None


def test_a_failed_call_marks_its_span_and_is_raised_as_it_was(traced: Tracing, exported: InMemorySpanExporter) -> None:
    async def broken() -> None:
        raise ModelError("model: predict raised ValueError: bad")

    with pytest.raises(ModelError):
        asyncio.run(traced.span("model.predict", {}, broken()))
    (span,) = exported.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "model: predict raised ValueError: bad"
    assert [event.name for event in span.events] == ["exception"]


def test_outgoing_headers_carry_the_current_span(traced: Tracing, exported: InMemorySpanExporter) -> None:
    assert tracing.outgoing_headers() is None
    scope = traced.request("POST", {}, TRACEPARENT, "vendor=1")
    inner = traced.start("remote.predict", {})
    headers = tracing.outgoing_headers()
    inner.end()
    scope.end()
    assert headers is not None
    span = _by_name(exported)["remote.predict"]
    assert headers == {
        "traceparent": f"00-{CALLER_TRACE}-{span.context.span_id:016x}-01",
        "tracestate": "vendor=1",
    }
    assert tracing.outgoing_headers() is None


def test_close_exports_what_is_still_batched(exported: InMemorySpanExporter) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exported, schedule_delay_millis=60_000))
    traced = Tracing(provider)
    traced.start("late", {}).end()
    assert exported.get_finished_spans() == ()
    asyncio.run(traced.close())
    assert [span.name for span in exported.get_finished_spans()] == ["late"]


def test_from_environ_builds_a_provider_of_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    made = tracing.from_environ({"OTEL_TRACES_EXPORTER": "console"}, "iris")
    assert made is not None
    from opentelemetry import trace

    assert trace.get_tracer_provider() is not made.provider  # never installed as the global provider
    made.start("hello", {}).end()
    asyncio.run(made.close())
    printed = capsys.readouterr().out
    (line,) = printed.splitlines()
    assert '"name": "hello"' in line and '"service.name": "iris"' in line


def test_http_route_names_the_model_and_version_as_placeholders() -> None:
    assert (
        tracing.http_route("/v2/models/iris/versions/2/infer", "iris", "2")
        == "/v2/models/{model}/versions/{version}/infer"
    )
    assert tracing.http_route("/api/v1.0/predictions", None, None) == "/api/v1.0/predictions"
