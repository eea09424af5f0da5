"""The REST edge in process: routing each path once, and reading bodies however they arrive."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from daneel.dataplane.dataplane import DataPlane
from daneel.dataplane.repository import Repository
from daneel.errors import PayloadTooLarge
from daneel.server import http
from daneel.server.rest import RestApp


@pytest.fixture
def app() -> RestApp:
    return RestApp(DataPlane(Repository([])))


@pytest.mark.parametrize(
    ("path", "methods", "model", "version", "seldon"),
    [
        ("/v2/models/iris/infer", ["POST"], "iris", None, False),
        ("/v2/models/iris/versions/3/infer", ["POST"], "iris", "3", False),
        ("/v2/models/iris/versions/3/ready", ["GET"], "iris", "3", False),
        ("/v2/models/iris", ["GET"], "iris", None, False),
        ("/v2/models/iris/versions/3", ["GET"], "iris", "3", False),
        ("/v2/repository/models/iris/load", ["POST"], "iris", None, False),
        ("/v2/repository/models/iris/unload", ["POST"], "iris", None, False),
        ("/seldon/ns/dep/api/v1.0/predictions", ["POST"], None, None, True),
        ("/predict", ["POST", "GET"], None, None, True),
    ],
)
def test_paths_lead_to_their_handlers(
    app: RestApp, path: str, methods: list[str], model: str | None, version: str | None, seldon: bool
) -> None:
    route = app.route(path)
    assert route.methods is not None and sorted(route.methods) == sorted(methods)
    assert (route.model, route.version, route.seldon) == (model, version, seldon)


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/",
        "/v2/models/iris/",
        "/v2/models/iris/explain",
        "/v2/models/iris/load",
        "/v2/repository/models/iris/x",
        "/nope",
    ],
)
def test_other_paths_lead_nowhere(app: RestApp, path: str) -> None:
    assert app.route(path).methods is None


def test_a_path_is_routed_once(app: RestApp) -> None:
    first = app.route("/v2/models/iris/infer")
    assert app.route("/v2/models/iris/infer") is first
    assert app.route("/v2/models/wine/infer").model == "wine"


def test_an_unknown_path_is_a_404_in_the_protocols_shape(app: RestApp) -> None:
    status, body = call(app, "GET", "/v2/nothing/here")
    assert (status, body) == (404, {"error": "no such path: /v2/nothing/here"})
    status, body = call(app, "GET", "/seldon/ns/dep/nothing")
    assert status == 404 and body["status"]["info"] == "no such path: /nothing"


def chunks_of(body: bytes, size: int) -> list[dict[str, Any]]:
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    return [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)]


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_a_body_is_read_whole_however_it_is_cut(size: int) -> None:
    body = b'{"inputs": [1, 2, 3]}' * 5
    assert asyncio.run(http.read_body({"headers": []}, receiver(chunks_of(body, size)), 1000)) == body


@pytest.mark.parametrize("size", [10, 1000])
def test_a_body_over_the_limit_is_rejected_however_it_is_cut(size: int) -> None:
    with pytest.raises(PayloadTooLarge):
        asyncio.run(http.read_body({"headers": []}, receiver(chunks_of(b"x" * 101, size)), 100))


def test_a_declared_length_over_the_limit_is_rejected_before_reading() -> None:
    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    with pytest.raises(PayloadTooLarge):
        asyncio.run(http.read_body({"headers": [(b"content-length", b"101")]}, receive, 100))


def receiver(messages: list[dict[str, Any]]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def call(app: RestApp, method: str, path: str, body: bytes = b"") -> tuple[int, Any]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    asyncio.run(app(scope, receiver(chunks_of(body, 1 << 20)), send))
    start, answer = sent
    assert dict(start["headers"])[b"content-length"] == str(len(answer["body"])).encode()
    return start["status"], orjson.loads(answer["body"])


class _BrokenIndex(Repository):
    def index(self, ready_only: bool = False) -> list[dict[str, Any]]:
        raise RuntimeError("cannot read /srv/secret/models")


def test_an_internal_error_tells_the_client_only_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    app = RestApp(DataPlane(_BrokenIndex([])))
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v2/repository/index", "headers": [], "query_string": b""}
    with caplog.at_level("ERROR", logger="daneel.rest"):
        asyncio.run(app(scope, receiver(chunks_of(b"{}", 100)), send))
    start, answer = sent
    request_id = dict(start["headers"])[b"x-request-id"].decode()
    assert start["status"] == 500
    assert orjson.loads(answer["body"]) == {
        "error": f"internal error; the server log has the detail under request id {request_id}"
    }
    [record] = caplog.records
    assert request_id in record.getMessage() and record.exc_info is not None
    assert "cannot read /srv/secret/models" in str(record.exc_info[1])
