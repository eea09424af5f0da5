import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from conftest import free_port
from daneel.errors import ErrorCode, InvalidInput, ModelError, ModelTimeout, NotImplementedByModel, NotReady
from daneel.graph.build import BuildContext, build_graph
from daneel.graph.executor import Graph
from daneel.graph.remote import RemoteComponent
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback
from daneel.runtime.component import Kind
from daneel.spec.model import Predictor

from .helpers import Add, node, request, run

REMOTE = """
import json

import numpy as np


class Remote:
    def __init__(self, log):
        self.log = log

    def predict(self, X, names):
        if np.min(X) < 0:
            raise ValueError("negative input")
        return X * 2

    def transform_input(self, X, names):
        return X + 1

    def transform_output(self, X, names):
        return X - 1

    def route(self, X, names):
        return 1

    def aggregate(self, Xs, names_list):
        return sum(np.asarray(x) for x in Xs)

    def send_feedback(self, X, names, reward, truth, routing=None):
        with open(self.log, "a") as log:
            log.write(json.dumps({"reward": reward}) + "\\n")

    def tags(self):
        return {"served_by": "remote"}
"""


@dataclass
class Served:
    """A `daneel serve` of the Remote class above, named "remote"; feedback it gets is logged to `log`."""

    port: int
    grpc_port: int
    log: Path


@pytest.fixture(scope="module")
def served(module_serve: Any, make_model: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Served:
    log = tmp_path_factory.mktemp("feedback") / "feedback.jsonl"
    server = module_serve(make_model(REMOTE, "remote"), "--parameters", json.dumps({"log": str(log)}))
    return Served(server.port, server.grpc_port, log)


def remote(name: str, kind: str, port: int, children: list[dict[str, Any]] | None = None, **endpoint: Any) -> dict:
    return {
        "name": name,
        "type": kind,
        "endpoint": {"service_host": "127.0.0.1", "service_port": port, **endpoint},
        "children": children or [],
    }


def graph_of(root: dict[str, Any], protocol: str = "seldon") -> Graph:
    return build_graph(Predictor.model_validate({"name": "p", "graph": root}), BuildContext(protocol=protocol))


def walk(graph: Graph, *calls: Callable[[Graph], Any]) -> list[Any]:
    """Load the graph, run calls on it and close it, all in one event loop (its clients belong to that loop)."""

    async def scenario() -> list[Any]:
        await graph.load()
        try:
            return [await call(graph) for call in calls]
        finally:
            await graph.close()

    return run(scenario())


def test_every_seldon_method_of_a_remote_node(served: Served) -> None:
    port = served.port
    models = [remote("m1", "MODEL", port), remote("m2", "MODEL", port)]
    router = remote("router", "ROUTER", port, [remote("a", "MODEL", port), remote("sum", "COMBINER", port, models)])
    graph = graph_of(remote("out", "OUTPUT_TRANSFORMER", port, [remote("in", "TRANSFORMER", port, [router])]))
    before = served.log.read_text().count("\n") if served.log.exists() else 0

    async def predict_and_reward(graph: Graph) -> Payload:
        response = await graph.predict(request([[1.0, 2.0]]))
        await graph.send_feedback(Feedback(request(), response, None, 0.5, response.meta["routing"]))
        return response

    (response,) = walk(graph, predict_and_reward)
    # in: +1 → router picks child 1 → both models double it, summed → out: -1
    np.testing.assert_array_equal(response.data, [[7.0, 11.0]])
    assert response.meta["routing"] == {"router": 1}
    assert list(response.meta["requestPath"]) == ["out", "in", "router", "sum", "m1", "m2"]
    assert response.meta["requestPath"]["m1"] == f"http://127.0.0.1:{port}"
    assert response.meta["tags"] == {"served_by": "remote"}
    # Feedback reached the router and the two models it chose, not the child it passed over.
    lines = served.log.read_text().splitlines()[before:]
    assert [json.loads(line) for line in lines] == [{"reward": 0.5}] * 3


def test_a_remote_nodes_health_is_its_servers(served: Served) -> None:
    assert walk(graph_of(remote("m", "MODEL", served.port)), lambda g: g.health()) == [None]
    assert walk(graph_of(remote("remote", "MODEL", served.port), protocol="v2"), lambda g: g.health()) == [None]
    assert walk(graph_of(remote("remote", "MODEL", served.grpc_port, type="GRPC")), lambda g: g.health()) == [None]
    port = free_port()
    with pytest.raises(NotReady, match=rf"^m \(http://127\.0\.0\.1:{port}/health/ping\): ConnectError"):
        walk(graph_of(remote("m", "MODEL", port)), lambda g: g.health())


def test_a_remote_v2_node_is_called_by_its_name(served: Served) -> None:
    graph = graph_of(remote("remote", "MODEL", served.port), protocol="v2")
    (response,) = walk(graph, lambda g: g.predict(request([[1.0, 2.0]])))
    np.testing.assert_array_equal(response.data, [[2.0, 4.0]])
    assert response.meta["tags"] == {"served_by": "remote"}


def test_a_remote_grpc_node(served: Served) -> None:
    graph = graph_of(remote("remote", "MODEL", served.grpc_port, type="GRPC"))
    (response,) = walk(graph, lambda g: g.predict(request([[1.5, 2.0]])))
    np.testing.assert_array_equal(response.data, [[3.0, 4.0]])
    assert response.meta["tags"] == {"served_by": "remote"}
    assert response.meta["requestPath"] == {"remote": f"grpc://127.0.0.1:{served.grpc_port}"}


def test_a_grpc_remote_that_never_listens_cannot_be_connected_to() -> None:
    port = free_port()
    graph = graph_of(remote("remote", "MODEL", port, type="GRPC"))
    with pytest.raises(ModelError, match=rf"^remote \(grpc://127\.0\.0\.1:{port}\): cannot connect"):
        walk(graph, lambda g: g.predict(request()))


def test_a_grpc_node_cannot_route(served: Served) -> None:
    graph = graph_of(remote("router", "ROUTER", served.grpc_port, [remote("a", "MODEL", served.port)], type="GRPC"))
    with pytest.raises(NotImplementedByModel, match=r"^router \(grpc://.*\): V2 gRPC has no route call"):
        walk(graph, lambda g: g.predict(request()))


def test_a_remote_models_error_comes_back_naming_the_node(served: Served) -> None:
    graph = graph_of(remote("doubler", "MODEL", served.port))
    url = f"http://127.0.0.1:{served.port}/predict"
    with pytest.raises(ModelError) as caught:
        walk(graph, lambda g: g.predict(request([[-1.0, 2.0]])))
    assert caught.value.message.startswith(f"doubler ({url}): ")
    assert caught.value.message.endswith("ValueError: negative input")


def test_a_remote_v2_node_of_another_name_is_not_found(served: Served) -> None:
    graph = graph_of(remote("elsewhere", "MODEL", served.port), protocol="v2")
    with pytest.raises(Exception) as caught:
        walk(graph, lambda g: g.predict(request()))
    assert getattr(caught.value, "code", None) is ErrorCode.NOT_FOUND
    assert str(caught.value).startswith(f"elsewhere (http://127.0.0.1:{served.port}/v2/models/elsewhere/infer): ")


# A hand-written server for what a healthy daneel never answers


@dataclass
class Fake:
    """A loopback HTTP server that answers every POST with `reply(path, body)`; None drops the connection."""

    port: int
    reply: Callable[[str, bytes], tuple[int, bytes] | None] = lambda path, body: (200, b"{}")
    requests: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def fake() -> Iterator[Fake]:
    state = Fake(0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            state.requests.append(self.path)
            answer = state.reply(self.path, body)
            if answer is None:
                self.close_connection = True
                return
            status, content = answer
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=30)


def call(component: RemoteComponent, payload: Payload | None = None) -> Payload:
    graph = Graph("p", node(component))
    result: Payload = walk(graph, lambda g: g.predict(payload or request()))[0]
    return result


def model(port: int, **options: Any) -> RemoteComponent:
    return RemoteComponent("far", Kind.MODEL, "127.0.0.1", port, **options)


def test_a_remote_400_stays_bad_input(fake: Fake) -> None:
    error = {"status": {"code": 400, "info": "data.ndarray: expected 4 columns", "status": "FAILURE"}}
    fake.reply = lambda path, body: (400, json.dumps(error).encode())
    with pytest.raises(InvalidInput) as caught:
        call(model(fake.port))
    assert caught.value.message == f"far (http://127.0.0.1:{fake.port}/predict): data.ndarray: expected 4 columns"


def test_a_remote_500_is_a_model_error_with_the_remote_message(fake: Fake) -> None:
    fake.reply = lambda path, body: (500, json.dumps({"error": "out of memory"}).encode())
    with pytest.raises(ModelError, match=rf"^far \(http://127\.0\.0\.1:{fake.port}/predict\): out of memory$"):
        call(model(fake.port))


def test_a_reply_that_is_not_json_is_a_model_error(fake: Fake) -> None:
    fake.reply = lambda path, body: (200, b"<html>proxy</html>")
    with pytest.raises(ModelError, match=r"^far \(.*/predict\): the reply is not JSON: '<html>proxy</html>'$"):
        call(model(fake.port))


def test_a_request_that_was_sent_is_never_retried(fake: Fake) -> None:
    fake.reply = lambda path, body: None
    with pytest.raises(ModelError, match=r"^far \(.*/predict\): RemoteProtocolError"):
        call(model(fake.port))
    assert fake.requests == ["/predict"]


def test_a_slow_remote_is_a_timeout_naming_the_node(fake: Fake) -> None:
    def stall(path: str, body: bytes) -> tuple[int, bytes]:
        fake.release.wait(60)
        return 200, b"{}"

    fake.reply = stall
    with pytest.raises(ModelTimeout, match=r"^far \(.*/predict\): no answer within 0\.2 s$"):
        call(model(fake.port, timeout_s=0.2))


class Refusing(httpx.AsyncBaseTransport):
    """Refuses the first `failures` connections, as a remote that is still starting would."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_connect_errors_are_retried(fake: Fake) -> None:
    fake.reply = lambda path, body: (200, json.dumps({"data": {"ndarray": [[5]]}}).encode())
    transport = Refusing(failures=2)
    result = call(model(fake.port, transport=transport))
    np.testing.assert_array_equal(result.data, [[5]])
    assert transport.attempts == 3
    assert fake.requests == ["/predict"]


def test_a_remote_that_never_listens_cannot_be_connected_to() -> None:
    port = free_port()
    with pytest.raises(ModelError, match=rf"^far \(http://127\.0\.0\.1:{port}/predict\): cannot connect"):
        call(model(port))


def test_a_remote_route_answer_must_be_one_index(fake: Fake) -> None:
    fake.reply = lambda path, body: (200, json.dumps({"data": {"ndarray": [[0, 1]]}}).encode())
    router = RemoteComponent("picker", Kind.ROUTER, "127.0.0.1", fake.port)
    graph = Graph("p", node(router, node(Add("a")), node(Add("b"))))
    with pytest.raises(ModelError, match=r"^picker \(.*/route\): route returned \[\[0, 1\]\]; expected one integer"):
        walk(graph, lambda g: g.predict(request()))


# A remote in another language


def test_a_nodejs_model_joins_a_graph(node_model: int) -> None:
    local = Add("plus-one", 1, Kind.TRANSFORMER)
    far = RemoteComponent("javascript", Kind.MODEL, "127.0.0.1", node_model)
    graph = Graph("p", node(local, node(far)))
    (response,) = walk(graph, lambda g: g.predict(request([[1.0, 2.0]])))
    np.testing.assert_array_equal(response.data, [[6.0, 9.0]])
    assert response.meta["tags"] == {"plus-one": True, "language": "javascript"}
    assert response.meta["requestPath"] == {"plus-one": "Add(1)", "javascript": f"http://127.0.0.1:{node_model}"}


@pytest.mark.parametrize(("protocol", "paths"), [("seldon", ["/send-feedback"]), ("v2", [])])
def test_feedback_reaches_a_remote_model_only_in_seldons_protocol(fake: Fake, protocol: str, paths: list[str]) -> None:
    graph = Graph("p", node(model(fake.port, protocol=protocol)))
    walk(graph, lambda g: g.send_feedback(Feedback(request(), None, None, 1.0, {})))
    assert fake.requests == paths
