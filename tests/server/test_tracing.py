"""Traces and JSON logs from real `daneel serve` processes, received by a loopback OTLP/HTTP collector.

The collector is a real HTTP server in the test that decodes `ExportTraceServiceRequest`
messages with opentelemetry-proto, as an OpenTelemetry collector or Jaeger would.
"""

from __future__ import annotations

import os
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import requests
import tritonclient.grpc as grpcclient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"

NODES = """
import logging

log = logging.getLogger("user_model")


class Pre:
    def transform_input(self, X, names=None, meta=None):
        return [[v + 1 for v in row] for row in X]


class Model:
    def predict(self, X, names=None, meta=None):
        log.info("scoring %d rows", len(X))
        return [[sum(row)] for row in X]


class Out:
    def transform_output(self, X, names=None, meta=None):
        return [[10 * v for v in row] for row in X]
"""

GRAPH = """
apiVersion: daneel.dev/v1alpha1
kind: ModelDeployment
metadata: {name: traced}
spec:
  predictors:
  - name: main
    graph:
      name: out
      type: OUTPUT_TRANSFORMER
      implementation: nodes:Out
      children:
      - name: pre
        type: TRANSFORMER
        implementation: nodes:Pre
        children:
        - {name: model, type: MODEL, implementation: nodes:Model}
"""


@dataclass(frozen=True)
class Span:
    name: str
    service: str
    trace_id: str
    span_id: str
    parent: str  # "" for a root span
    kind: int
    start: int
    attributes: dict[str, Any]


@dataclass
class Collector:
    """What an OTLP/HTTP collector received at /v1/traces."""

    url: str = ""
    spans: list[Span] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def trace(self, trace_id: str) -> dict[str, Span]:
        with self.lock:
            return {span.name: span for span in self.spans if span.trace_id == trace_id}

    def traces(self, name: str) -> list[str]:
        """Ids of the traces with a span of this name, oldest first."""
        with self.lock:
            return [span.trace_id for span in self.spans if span.name == name]

    def received(self, request: ExportTraceServiceRequest) -> None:
        for resource in request.resource_spans:
            service = _attributes(resource.resource.attributes).get("service.name", "")
            for scope in resource.scope_spans:
                with self.lock:
                    self.spans.extend(_span(span, service) for span in scope.spans)


def _span(span: Any, service: str) -> Span:
    return Span(
        span.name,
        service,
        span.trace_id.hex(),
        span.span_id.hex(),
        span.parent_span_id.hex(),
        span.kind,
        span.start_time_unix_nano,
        _attributes(span.attributes),
    )


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    return getattr(value, which) if which else None


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    found = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            status = 404
            if self.path == "/v1/traces":
                found.received(ExportTraceServiceRequest.FromString(body))
                status = 200
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(status)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield found
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def otel_env(collector: Collector, **extra: str) -> dict[str, str]:
    """Spans to the collector, batched for 50 ms rather than the SDK's 5 s, so tests need not wait."""
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "50", **extra}


@pytest.fixture(scope="module")
def graph_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("traced")
    (folder / "nodes.py").write_text(textwrap.dedent(NODES))
    (folder / "deploy.yaml").write_text(textwrap.dedent(GRAPH))
    return folder


@pytest.fixture(scope="module")
def traced(module_serve: Any, collector: Collector, graph_folder: Path) -> Any:
    """The three-node graph, tracing to the collector and logging JSON.

    User code runs on worker threads (--executor thread): what it logs there still carries the node's context.
    """
    args = ("--log-format", "json", "--executor", "thread")
    return module_serve(graph_folder / "deploy.yaml", *args, env=otel_env(collector), cwd=graph_folder)


def _wait_trace(wait_for: Callable[..., None], collector: Collector, trace_id: str, names: set[str]) -> dict[str, Span]:
    wait_for(lambda: names <= set(collector.trace(trace_id)), f"spans {sorted(names)} of trace {trace_id}", timeout=30)
    return collector.trace(trace_id)


NODE_SPANS = {"pre.transform_input", "model.predict", "out.transform_output"}


def test_a_request_through_three_nodes_is_one_trace_under_the_callers_span(
    traced: Any, collector: Collector, wait_for: Callable[..., None]
) -> None:
    response = requests.post(
        f"{traced.url}/api/v1.0/predictions",
        json={"data": {"ndarray": [[1.0, 2.0]]}},
        headers={"traceparent": TRACEPARENT},
        timeout=30,
    )
    assert response.json()["data"]["ndarray"] == [[50.0]]
    spans = _wait_trace(wait_for, collector, CALLER_TRACE, {"POST /api/v1.0/predictions", *NODE_SPANS})
    server = spans["POST /api/v1.0/predictions"]
    assert server.parent == CALLER_SPAN
    assert server.kind == 2  # SPAN_KIND_SERVER
    assert server.service == "traced"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["http.route"] == "/api/v1.0/predictions"
    assert server.attributes["daneel.protocol"] == "seldon"
    assert server.attributes["daneel.predictor"] == "main"
    nodes = [spans[name] for name in NODE_SPANS]
    assert {span.parent for span in nodes} == {server.span_id}
    assert len({span.span_id for span in [server, *nodes]}) == 4
    order = sorted(nodes, key=lambda span: span.start)
    assert [span.name for span in order] == ["pre.transform_input", "model.predict", "out.transform_output"]
    model = spans["model.predict"]
    assert model.attributes["daneel.node"] == "model"
    assert model.attributes["daneel.method"] == "predict"
    assert model.attributes["daneel.predictor"] == "main"
    assert model.attributes["daneel.implementation"]


def test_the_users_log_line_names_its_node_request_and_span(
    traced: Any, collector: Collector, wait_for: Callable[..., None]
) -> None:
    trace_id = "aaaabbbbccccddddeeeeffff00001111"
    headers = {"traceparent": f"00-{trace_id}-{CALLER_SPAN}-01", "x-request-id": "req-42"}
    body = {"data": {"ndarray": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]}}
    requests.post(f"{traced.url}/api/v1.0/predictions", json=body, headers=headers, timeout=30).raise_for_status()
    model = _wait_trace(wait_for, collector, trace_id, {"model.predict"})["model.predict"]
    wait_for(lambda: "scoring 3 rows" in traced.stderr, "the model's log line")
    lines = [orjson.loads(line) for line in traced.stderr.splitlines() if line.startswith("{")]
    (scoring,) = [line for line in lines if line["message"] == "scoring 3 rows"]
    assert (scoring["logger"], scoring["level"]) == ("user_model", "INFO")
    assert (scoring["model"], scoring["predictor"], scoring["node"]) == ("traced", "main", "model")
    assert scoring["request_id"] == "req-42"
    assert (scoring["trace_id"], scoring["span_id"]) == (trace_id, model.span_id)
    assert any(line["message"].startswith("serving traced on http://") for line in lines)


def test_a_v2_request_without_traceparent_starts_a_trace(
    traced: Any, collector: Collector, wait_for: Callable[..., None]
) -> None:
    name = "POST /v2/models/{model}/infer"
    before = len(collector.traces(name))
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
    response = requests.post(f"{traced.url}/v2/models/traced/infer", json=body, timeout=30)
    assert response.status_code == 200
    wait_for(lambda: len(collector.traces(name)) > before, f"a span {name}", timeout=30)
    trace_id = collector.traces(name)[-1]
    spans = _wait_trace(wait_for, collector, trace_id, {name, *NODE_SPANS})
    assert trace_id != CALLER_TRACE
    assert spans[name].parent == ""
    assert spans[name].attributes["daneel.model"] == "traced"
    assert spans[name].attributes["daneel.protocol"] == "v2"
    assert {spans[node].parent for node in NODE_SPANS} == {spans[name].span_id}


def test_a_grpc_call_honours_the_traceparent_in_its_metadata(
    traced: Any, collector: Collector, wait_for: Callable[..., None]
) -> None:
    trace_id, parent = "11112222333344445555666677778888", "1234567890abcdef"
    with grpcclient.InferenceServerClient(traced.grpc_target) as client:
        tensor = grpcclient.InferInput("x", [1, 2], "FP64")
        tensor.set_data_from_numpy(np.array([[1.0, 2.0]]))
        result = client.infer("traced", [tensor], headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    assert result.as_numpy(result.get_response().outputs[0].name).tolist() == [[50.0]]
    name = "inference.GRPCInferenceService/ModelInfer"
    spans = _wait_trace(wait_for, collector, trace_id, {name, *NODE_SPANS})
    assert spans[name].parent == parent
    assert spans[name].attributes["rpc.system"] == "grpc"
    assert spans[name].attributes["rpc.grpc.status_code"] == 0
    assert {spans[node].parent for node in NODE_SPANS} == {spans[name].span_id}


REMOTE_MODEL = """
class Triple:
    def predict(self, X, names=None, meta=None):
        return [[3 * v for v in row] for row in X]
"""


def test_the_trace_reaches_remote_nodes_over_rest_and_grpc(
    serve: Any, make_model: Callable[..., Path], collector: Collector, wait_for: Callable[..., None], tmp_path: Path
) -> None:
    remote = serve(make_model(REMOTE_MODEL, name="triple"), env=otel_env(collector, OTEL_SERVICE_NAME="remote"))
    (tmp_path / "nodes.py").write_text(textwrap.dedent(NODES))
    deploy = tmp_path / "remote.yaml"
    deploy.write_text(
        textwrap.dedent(
            f"""
            apiVersion: daneel.dev/v1alpha1
            kind: ModelDeployment
            metadata: {{name: calls-out}}
            spec:
              predictors:
              - name: main
                graph:
                  name: pre
                  type: TRANSFORMER
                  implementation: nodes:Pre
                  children:
                  - name: over-rest
                    type: MODEL
                    endpoint: {{service_host: 127.0.0.1, service_port: {remote.port}, type: REST}}
                    children:
                    - name: triple
                      type: MODEL
                      endpoint: {{service_host: 127.0.0.1, service_port: {remote.grpc_port}, type: GRPC}}
            """
        )
    )
    caller = serve(deploy, env=otel_env(collector), cwd=tmp_path)
    trace_id, parent = "99990000aaaabbbbccccddddeeeeffff", "fedcba0987654321"
    response = requests.post(
        f"{caller.url}/api/v1.0/predictions",
        json={"data": {"ndarray": [[1.0]]}},
        headers={"traceparent": f"00-{trace_id}-{parent}-01"},
        timeout=30,
    )
    assert response.json()["data"]["ndarray"] == [[18.0]]  # (1 + 1) * 3 * 3
    grpc_name = "inference.GRPCInferenceService/ModelInfer"
    names = {"POST /api/v1.0/predictions", "over-rest.predict", "triple.predict", "POST /predict", grpc_name}
    spans = _wait_trace(wait_for, collector, trace_id, names)
    assert spans["POST /api/v1.0/predictions"].parent == parent
    assert spans["POST /predict"].service == spans[grpc_name].service == "remote"
    assert spans["POST /predict"].parent == spans["over-rest.predict"].span_id
    assert spans[grpc_name].parent == spans["triple.predict"].span_id


def test_a_server_without_otel_variables_never_imports_opentelemetry(
    serve: Any, make_model: Callable[..., Path]
) -> None:
    if any(name.startswith("OTEL_") for name in os.environ):
        pytest.skip("this environment sets OTEL_* variables")
    server = serve(make_model(REMOTE_MODEL, name="plain"), env={"PYTHONPROFILEIMPORTTIME": "1"})
    requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[1.0]]}}, timeout=30)
    imported = {
        line.rsplit("|", 1)[1].strip() for line in server.stderr.splitlines() if line.startswith("import time:")
    }
    assert "daneel.observe.tracing" in imported
    assert not {module for module in imported if module.startswith("opentelemetry")}


def test_an_otel_value_daneel_cannot_use_fails_with_one_line(serve: Any, make_model: Callable[..., Path]) -> None:
    server = serve.exits(make_model(REMOTE_MODEL, name="bad-otel"), env={"OTEL_TRACES_EXPORTER": "zipkin"})
    assert server.returncode != 0
    assert "OTEL_TRACES_EXPORTER: unknown exporter 'zipkin'; expected otlp, console or none" in server.stderr
    assert "Traceback" not in server.stderr
