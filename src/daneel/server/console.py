"""The console: a page at `/` (and `/console`) showing what the server holds, and the data it reads.

The page is static HTML, CSS and JavaScript shipped in the package (`server/static/console`);
it reads its data from `/console/api/...` every few seconds:

- `models`: every model, deployment and graph node with its state, runtime, versions, inputs and
  outputs, and each deployment's predictors and graph as its file declares them;
- `figures`: the server's own metrics, added up over every worker (see :mod:`daneel.server.figures`);
- `requests`: the last requests and responses that request logging logged, in this worker.

Every path the console serves starts with `/console`, but for `/` itself, so that one rule can
guard them all.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from daneel.dataplane.dataplane import DataPlane
from daneel.dataplane.repository import Entry, State
from daneel.errors import DaneelError, NotFound, describe
from daneel.observe.payloads import Record, encode
from daneel.server.figures import figures
from daneel.server.http import Response, Scope, json_response
from daneel.spec import load
from daneel.spec.model import Node, Predictor, node_type

log = logging.getLogger("daneel.console")

Handler = Callable[[Scope, Any, str | None, str | None], Awaitable[Response]]

PAGE_PATHS = ("/", "/console", "/console/")
API = "/console/api"
_STATIC = "/console/static/"
_TYPES = {".html": b"text/html; charset=utf-8", ".js": b"text/javascript; charset=utf-8", ".css": b"text/css"}
#: A logged body longer than this is shown cut short, so that the tail stays quick to fetch.
_BODY_SHOWN = 8192
_DEPLOYMENT = "DEPLOYMENT"


def media_type(path: str) -> str:
    """The Content-Type of one of the console's files, by its suffix."""
    return _TYPES.get(Path(path).suffix, b"application/octet-stream").decode()


class Console:
    """The console's routes over one data plane: path -> {"GET": handler}, added to the REST app's table."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane
        self._files = {f"{_STATIC}{name}": body for name, body in _assets().items()}

    def routes(self) -> dict[str, dict[str, Handler]]:
        table: dict[str, dict[str, Handler]] = {path: {"GET": self._page} for path in PAGE_PATHS}
        table.update((path, {"GET": self._asset}) for path in self._files)
        table[f"{API}/models"] = {"GET": self._models}
        table[f"{API}/figures"] = {"GET": self._figures}
        table[f"{API}/requests"] = {"GET": self._requests}
        return table

    async def _page(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        return self._file(f"{_STATIC}index.html")

    async def _asset(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        return self._file(scope["path"])

    def _file(self, path: str) -> Response:
        body = self._files.get(path)
        if body is None:
            raise NotFound(f"no such path: {path}")
        response = Response(200, body, media_type(path).encode())
        response.headers.append((b"cache-control", b"no-cache"))
        return response

    async def _models(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        return json_response({"models": models(self.dataplane), "metrics": self._metrics_on()})

    async def _figures(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        metrics = self.dataplane.telemetry.metrics
        if metrics is None:
            return json_response({"metrics": False})
        return json_response({"metrics": True, **figures(metrics)})

    async def _requests(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        payloads = self.dataplane.telemetry.payloads
        logging_on = payloads is not None and payloads.active
        records = list(payloads.recent) if payloads is not None else []
        return json_response({"logging": logging_on, "records": recent(records)})

    def _metrics_on(self) -> bool:
        return self.dataplane.telemetry.metrics is not None


def _assets() -> dict[str, bytes]:
    folder = resources.files("daneel.server").joinpath("static", "console")
    return {item.name: item.read_bytes() for item in folder.iterdir() if item.is_file()}


def models(dataplane: DataPlane) -> list[dict[str, Any]]:
    """Every entry of the repository, deployments with their graphs; the parts of one follow it."""
    entries = dataplane.repository.entries.values()
    shown = [_model(entry) for entry in entries]
    known = {entry.name for entry in entries}
    for index in dataplane.repository.index():
        if index["name"] not in known:  # a model folder found since the start, not loaded
            shown.append({"name": index["name"], "state": index["state"], "reason": index["reason"], "kind": "model"})
    return shown


def _model(entry: Entry) -> dict[str, Any]:
    spec, component = entry.spec, entry.component
    implementation = spec.implementation if spec is not None else (component.implementation if component else "")
    shown: dict[str, Any] = {
        "name": entry.name,
        "state": entry.state.value,
        "reason": entry.reason,
        "load_seconds": round(entry.load_seconds, 3),
        "part_of": entry.part_of,
        "implementation": implementation,
        "kind": "deployment" if implementation == _DEPLOYMENT else ("node" if entry.part_of else "model"),
    }
    if component is not None and entry.state is State.READY:
        shown.update(_metadata(entry))
    if implementation == _DEPLOYMENT and spec is not None and spec.path is not None:
        shown["deployment"] = _deployment(spec.path, spec.parameters.get("components_dir"))
    return shown


def _metadata(entry: Entry) -> dict[str, Any]:
    assert entry.component is not None
    try:
        metadata = entry.component.metadata()
    except Exception as exc:  # the console shows what it can of a model whose metadata fails
        return {"metadata_error": describe(exc)}
    return {
        "platform": metadata.platform,
        "versions": metadata.versions,
        "inputs": [spec.as_dict() for spec in metadata.inputs],
        "outputs": [spec.as_dict() for spec in metadata.outputs],
    }


def _deployment(path: Path, components_dir: str | None) -> dict[str, Any]:
    """The deployment's predictors and graphs as its file declares them, with its traffic settings."""
    try:
        deployment = load(path, Path(components_dir) if components_dir else None)
    except DaneelError as exc:
        return {"error": exc.message}
    weights = deployment.traffic()
    sticky = deployment.spec.sticky
    return {
        "file": str(path),
        "sticky": sticky.model_dump(exclude_none=True) if sticky is not None else None,
        "predictors": [_predictor(p, weights.get(p.name, 0)) for p in deployment.spec.predictors],
    }


def _predictor(predictor: Predictor, traffic: int) -> dict[str, Any]:
    return {
        "name": predictor.name,
        "traffic": 0 if predictor.shadow else traffic,
        "shadow": predictor.shadow,
        "detectors": [{"name": d.name, "kind": d.kind.value} for d in predictor.detectors],
        "graph": _node(predictor.graph),
    }


def _node(node: Node) -> dict[str, Any]:
    endpoint = node.endpoint
    remote = f"{endpoint.service_host}:{endpoint.service_port} ({endpoint.type.value})" if endpoint else None
    return {
        "name": node.name,
        "type": node_type(node).value,
        "implementation": node.implementation or "",
        "model_uri": node.model_uri or "",
        "remote": remote if node.remote else None,
        "detectors": [{"name": d.name, "kind": d.kind.value} for d in node.detectors],
        "children": [_node(child) for child in node.children],
    }


def recent(records: list[Record]) -> list[dict[str, Any]]:
    """The logged tail, newest first; a request logged by two loggers (its deployment's and --request-log's) once."""
    seen: set[tuple[str, str, str]] = set()
    shown = []
    for record in reversed(records):
        key = (record.kind, record.request_id, record.model)
        if key in seen:
            continue
        seen.add(key)
        shown.append(_record(record))
    return shown


def _record(record: Record) -> dict[str, Any]:
    try:
        body = encode(record)
    except Exception as exc:  # a body that cannot be shown must not hide the others
        body = orjson.dumps(f"(cannot show: {describe(exc)})")
    shown: Any = body.decode("utf-8", "replace")[:_BODY_SHOWN] + " …" if len(body) > _BODY_SHOWN else orjson.loads(body)
    return {
        "time": record.time,
        "kind": record.kind,
        "request_id": record.request_id,
        "protocol": record.protocol,
        "model": record.model,
        "predictor": record.predictor,
        "body": shown,
    }
