"""The OpenAPI 3.1 documents of the REST edge: one for the server, one per model.

The paths come from the REST app's own route table (`RestApp.templates`), each path's error
shape from the app's own resolver (Seldon's or V2's), the error statuses from the one table that
maps daneel's errors to HTTP, and the bodies' schemas from `protocol.schemas`, built from the
codecs' own tables. What this module adds is an entry per route in `_OPERATIONS`: its summary,
its bodies and the errors it can answer. A route served without an entry makes :func:`document`
raise, so the document cannot fall behind the routes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any
from urllib.parse import quote

from daneel.errors import ErrorCode
from daneel.protocol import schemas
from daneel.protocol.datatypes import DATATYPES
from daneel.protocol.schemas import Schema, ref
from daneel.server import console, generate_schemas
from daneel.server.http import HTTP_STATUS
from daneel.version import __version__

Document = dict[str, Any]
#: Whether a concrete path's errors take Seldon's shape (rather than V2's): from RestApp.route.
IsSeldon = Callable[[str], bool]

GATEWAY = "/seldon/{namespace}/{deployment}"
MODEL = "/v2/models/{model_name}"
VERSION = "/versions/{model_version}"

_BODY = (ErrorCode.INVALID_INPUT, ErrorCode.PAYLOAD_TOO_LARGE)
_MODEL = (ErrorCode.NOT_FOUND, ErrorCode.NOT_READY)
_CALL = (*_BODY, *_MODEL, ErrorCode.REJECTED, ErrorCode.NOT_IMPLEMENTED, ErrorCode.TIMEOUT, ErrorCode.OVERLOADED)
#: Any path answers 500 on an unexpected error: the server never dies of a request.
_ALWAYS = (ErrorCode.MODEL_ERROR,)
_JSON = "application/json"
_BINARY = "application/octet-stream"
_BINARY_HEADER = "Inference-Header-Content-Length"


def _object(**properties: Schema) -> Schema:
    return {"type": "object", "required": list(properties), "properties": properties}


@dataclass(frozen=True, slots=True)
class Operation:
    """What the route table cannot say about a route: its summary, its bodies' schemas and its errors."""

    id: str
    summary: str
    tag: str
    answer: dict[str, Schema]  # the 200 answer's schema by media type
    body: dict[str, Schema] | None = None  # the request body's schema by media type
    errors: tuple[ErrorCode, ...] = ()
    description: str = ""
    body_required: bool = True
    query: Schema | None = None  # Seldon's GET: the message as the query parameter `json`
    error_schema: str = ""  # the errors' schema where the path's protocol does not decide it (OpenAI's)


def _json(schema: Schema) -> dict[str, Schema]:
    return {_JSON: schema}


_PLAIN = {"text/plain": {"schema": {"type": "string"}}}
_FORM = _object(json={"type": "string", "contentMediaType": _JSON})


def _seldon_post(id: str, summary: str, body: str, description: str) -> Operation:
    """A Seldon endpoint: JSON as the raw body, or as the form field `json`."""
    bodies = {_JSON: ref(body), "application/x-www-form-urlencoded": _FORM, "multipart/form-data": _FORM}
    return Operation(id, summary, "seldon", _json(ref("SeldonMessage")), bodies, _CALL, description)


def _model_side(method: str, summary: str, body: str = "SeldonMessage") -> dict[str, Operation]:
    """A model-side path of Seldon's microservice API: POST, or GET with the message in the query."""
    post = _seldon_post(method, summary, body, f"Calls the component's `{method}`.")
    get = replace(post, id=f"{method}_get", body=None, query=ref(body))
    return {"POST": post, "GET": get}


def _text(id: str, summary: str, tag: str, description: str = "", media: str = "text/plain") -> Operation:
    return Operation(id, summary, tag, {media: {"type": "string"}}, description=description)


def _operations() -> dict[str, dict[str, Operation]]:
    """Every route's entry, by path template (without the gateway prefix or a version) and method."""
    predictions = _seldon_post("predictions", "Predict", "SeldonMessage", "Calls the component's main method.")
    feedback = _seldon_post("feedback", "Send feedback", "Feedback", "Calls the component's `send_feedback`.")
    seldon_metadata = Operation("seldon_metadata", "Metadata", "seldon", _json(ref("SeldonMetadata")), None, _MODEL)
    load = _text("load_model", "Load or reload a model", "repository", "200 once it has loaded.")
    load = replace(load, errors=(ErrorCode.NOT_FOUND, ErrorCode.NOT_IMPLEMENTED, ErrorCode.LOAD_ERROR))
    operations: dict[str, dict[str, Operation]] = {
        "/v2": {"GET": Operation("server_metadata", "Server metadata", "v2", _json(ref("ServerMetadata")))},
        "/v2/health/live": {"GET": Operation("live", "Liveness", "v2", _json(_object(live={"const": True})))},
        "/v2/health/ready": {
            "GET": Operation(
                "ready", "Readiness", "v2", _json(_object(ready={"const": True})), None, (ErrorCode.NOT_READY,)
            )
        },
        MODEL: {"GET": Operation("model_metadata", "Model metadata", "v2", _json(ref("ModelMetadata")), None, _MODEL)},
        f"{MODEL}/ready": {
            "GET": Operation(
                "model_ready",
                "Model readiness",
                "v2",
                _json(_object(name={"type": "string"}, ready={"const": True})),
                None,
                _MODEL,
            )
        },
        f"{MODEL}/infer": {"POST": _infer()},
        f"{MODEL}/openapi.json": {
            "GET": Operation(
                "model_openapi",
                "The model's own OpenAPI document",
                "docs",
                _json(ref("OpenAPIDocument")),
                None,
                _MODEL,
                "Its inference request and response typed by the model's metadata, where that declares them.",
            )
        },
        "/v2/repository/index": {
            "POST": Operation(
                "repository_index",
                "Every model and its state",
                "repository",
                _json(ref("RepositoryIndex")),
                _json(ref("RepositoryIndexRequest")),
                _BODY,
                body_required=False,
            )
        },
        "/v2/repository/models/{model_name}/load": {"POST": load},
        "/v2/repository/models/{model_name}/unload": {
            "POST": replace(load, id="unload_model", summary="Unload a model", errors=load.errors[:2])
        },
        "/api/v1.0/predictions": {"POST": predictions},
        "/api/v0.1/predictions": {"POST": replace(predictions, id="predictions_v0_1")},
        "/api/v1.0/feedback": {"POST": feedback},
        "/api/v0.1/feedback": {"POST": replace(feedback, id="feedback_v0_1")},
        "/api/v1.0/metadata": {"GET": seldon_metadata},
        "/metadata": {"GET": replace(seldon_metadata, id="metadata")},
        "/health/ping": {"GET": _text("ping", "Liveness: pong", "seldon")},
        "/health/status": {
            "GET": Operation(
                "health_status",
                "Health: the component's health_status, once ready",
                "seldon",
                _json(ref("SeldonMessage")),
                None,
                _MODEL,
            )
        },
        "/predict": _model_side("predict", "Predict"),
        "/transform-input": _model_side("transform_input", "Transform the input"),
        "/transform-output": _model_side("transform_output", "Transform the output"),
        "/route": _model_side("route", "Choose a child"),
        "/aggregate": _model_side("aggregate", "Combine the children's outputs", "SeldonMessageList"),
        "/send-feedback": _model_side("send_feedback", "Send feedback", "Feedback"),
        "/metrics": {"GET": _text("metrics", "Prometheus metrics", "metrics", "Prometheus's text format.")},
        "/openapi.json": {
            "GET": Operation("openapi", "This document", "docs", _json(ref("OpenAPIDocument")), None, ())
        },
        "/docs": {"GET": _text("docs", "Interactive API docs", "docs", media="text/html")},
    }
    operations.update(_generation())
    page = _text("console", "The console", "console", "What the server holds, live figures, a try-it panel.", _HTML)
    operations.update({"/": {"GET": page}, "/console": {"GET": replace(page, id="console_page")}})
    operations["/console/"] = {"GET": replace(page, id="console_page_slash")}
    for name, summary in _CONSOLE_DATA.items():
        data = Operation(f"console_{name}", summary, "console", _json({"type": "object"}), None, ())
        operations[f"/console/api/{name}"] = {"GET": data}
    return operations


def _generation() -> dict[str, dict[str, Operation]]:
    """V2's generate extension and the OpenAI-compatible paths (docs/generation.md)."""
    errors = (*_BODY, *_MODEL)
    generate = Operation(
        "generate",
        "Generate text",
        "generate",
        _json(ref("GenerateResponse")),
        _json(ref("GenerateRequest")),
        errors,
        "The whole continuation of `text_input` as one JSON object; 400 for a model that does not generate text.",
    )
    stream = replace(generate, id="generate_stream", summary="Generate text, streamed as server-sent events")
    stream = replace(stream, answer=generate_schemas.events("`data: {GenerateResponse}` per piece"))
    openai = replace(generate, tag="openai", error_schema="OpenAIError", description="")
    streamed = "With `stream: true`, server-sent events: `data: {chunk}` per piece, then `data: [DONE]`."
    return {
        f"{MODEL}/generate": {"POST": generate},
        f"{MODEL}/generate_stream": {"POST": stream},
        "/v1/completions": {
            "POST": replace(
                openai,
                id="completions",
                summary="Complete a prompt (OpenAI-compatible)",
                answer={**_json(ref("Completion")), **generate_schemas.events("text_completion chunks")},
                body=_json(ref("CompletionRequest")),
                description=streamed,
            )
        },
        "/v1/chat/completions": {
            "POST": replace(
                openai,
                id="chat_completions",
                summary="Answer a chat (OpenAI-compatible)",
                answer={**_json(ref("ChatCompletion")), **generate_schemas.events("chat.completion.chunk chunks")},
                body=_json(ref("ChatCompletionRequest")),
                description=streamed,
            )
        },
        "/v1/models": {
            "GET": replace(
                openai,
                id="openai_models",
                summary="The models that generate text",
                answer=_json(ref("ModelList")),
                body=None,
                errors=(),
            )
        },
    }


_HTML = "text/html"
_GENERATE_PATHS = ("/generate", "/generate_stream")
_CONSOLE_DATA = {
    "models": "The console's data: every model, deployment and graph node with its state (docs/console.md)",
    "figures": "The console's data: request, latency and detector totals summed over the workers",
    "requests": "The console's data: the last requests and responses request logging logged",
}
_CONSOLE_FILES = "/console/static/"


def _console_file(template: str) -> Operation:
    """One of the console's own files (its script, its style sheet), which the page loads."""
    name = template.removeprefix(_CONSOLE_FILES)
    id = f"console_file_{re.sub(r'[^a-z0-9]', '_', name.lower())}"
    return _text(id, f"The console's {name}", "console", media=console.media_type(name).split(";")[0])


def _infer() -> Operation:
    binary = {"type": "string", "format": "binary"}
    return Operation(
        "infer",
        "Infer",
        "v2",
        {_JSON: ref("InferenceResponse"), _BINARY: binary},
        {_JSON: ref("InferenceRequest"), _BINARY: binary},
        _CALL,
        "JSON in and out. With the binary tensor extension, the JSON comes first, its length in bytes in the "
        f"header {_BINARY_HEADER}, and tensors' bytes follow; an answer with binary outputs is {_BINARY} alike.",
    )


_OPERATIONS = _operations()
_TAGS = {
    "v2": "Open Inference Protocol (V2)",
    "seldon": "Seldon protocol",
    "repository": "The model repository extension",
    "metrics": "Metrics",
    "docs": "These documents",
    "generate": "Text generation: V2's generate extension (docs/generation.md)",
    "openai": "OpenAI-compatible text generation (docs/generation.md)",
    "console": "The console in the browser, and the data it reads (docs/console.md)",
    "gateway": "The same endpoints as Seldon's gateway addresses them: /seldon/{namespace}/{deployment}/...",
}


def document(templates: Iterable[tuple[str, str]], is_seldon: IsSeldon) -> Document:
    """The server's document: every (path template, method) the app serves, and each one behind the gateway."""
    templates = list(templates)
    paths: dict[str, dict[str, Any]] = {}
    for prefix in ("", GATEWAY):
        for template, method in templates:
            path = prefix + template
            paths.setdefault(path, {})[method.lower()] = _operation(template, path, method, is_seldon)
    return _assemble(paths, schemas.components() | generate_schemas.schemas(), _parameters(), "daneel")


def model_document(
    metadata: dict[str, Any], templates: Iterable[tuple[str, str]], is_seldon: IsSeldon, generates: bool = False
) -> Document:
    """One model's document: its V2 paths with its name in them, the inference bodies typed by its metadata.

    Versioned paths are listed only when the model declares versions (it answers any version otherwise), and
    the generate extension's only for a model that `generates` text.
    """
    name, versions = str(metadata["name"]), [str(v) for v in metadata.get("versions") or []]
    parameters = _parameters()
    if versions:
        parameters["model_version"]["schema"] = {"enum": versions}
    paths: dict[str, dict[str, Any]] = {}
    for template, method in templates:
        if not template.startswith(MODEL) or (VERSION in template and not versions):
            continue
        if not generates and template.endswith(_GENERATE_PATHS):
            continue
        path = template.replace("{model_name}", quote(name, safe=""))
        paths.setdefault(path, {})[method.lower()] = _operation(template, path, method, is_seldon)
    components = schemas.components() | generate_schemas.schemas()
    components |= _typed(metadata.get("inputs") or [], metadata.get("outputs") or [])
    return _assemble(paths, components, parameters, f"daneel: model {name}")


def _typed(inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Schema]:
    """The inference bodies narrowed to the tensors a model declares (names, datatypes, shapes)."""
    typed: dict[str, Schema] = {}
    if inputs:
        tensors = [schemas.request_input(t["name"], _datatype(t), _dims(t)) for t in inputs]
        typed["InferenceRequest"] = schemas.inference_request(_one_of(tensors))
        typed["InferenceRequest"]["properties"]["inputs"]["maxItems"] = len(tensors)
        if all(_datatype(t) and _dims(t) is not None for t in inputs):
            example = [schemas.example_input(t["name"], t["datatype"], t["shape"]) for t in inputs]
            typed["InferenceRequest"]["examples"] = [{"inputs": example}]
    if outputs:
        # The declared outputs come first; the generic one stays, since a deployment's metadata declares its
        # first predictor's outputs, and another predictor (an A/B test's candidate) may answer with others.
        tensors = [schemas.response_output(t["name"], _datatype(t)) for t in outputs]
        typed["InferenceResponse"] = schemas.inference_response({"anyOf": [*tensors, ref("ResponseOutput")]})
    return typed


def _datatype(tensor: dict[str, Any]) -> str | None:
    datatype = tensor.get("datatype")
    return datatype if datatype in DATATYPES else None


def _dims(tensor: dict[str, Any]) -> list[int] | None:
    shape = tensor.get("shape")
    if isinstance(shape, list) and all(type(d) is int for d in shape):
        return shape
    return None


def _one_of(tensors: list[Schema]) -> Schema:
    return tensors[0] if len(tensors) == 1 else {"anyOf": tensors}


def _operation(template: str, path: str, method: str, is_seldon: IsSeldon) -> dict[str, Any]:
    """The operation object of `method` on `template` as the document shows it: at `path`."""
    entry = _entry(template, method)
    operation: dict[str, Any] = {"operationId": _id(path, entry.id), "summary": entry.summary}
    operation["tags"] = ["gateway" if path.startswith(GATEWAY) else entry.tag]
    if entry.description:
        operation["description"] = entry.description
    parameters: list[dict[str, Any]] = [
        {"$ref": f"#/components/parameters/{p}"} for p in _PARAMETERS if "{" + p + "}" in path
    ]
    if entry.query is not None:
        query = {_JSON: {"schema": entry.query}}
        parameters.append({"name": "json", "in": "query", "required": True, "content": query})
    if _BINARY in (entry.body or {}):
        parameters.append({"name": _BINARY_HEADER, "in": "header", "schema": {"type": "string", "pattern": "^[0-9]+$"}})
    if parameters:
        operation["parameters"] = parameters
    if entry.body is not None:
        content = {media: {"schema": schema} for media, schema in entry.body.items()}
        operation["requestBody"] = {"required": entry.body_required, "content": content}
    shape = entry.error_schema or ("SeldonError" if is_seldon(_concrete(path)) else "V2Error")
    operation["responses"] = {"200": _answer(entry), **_errors(entry.errors, shape)}
    if entry.query is not None:
        # A query string too long for the HTTP server is refused before daneel sees it, in plain text.
        operation["responses"]["400"]["content"] = {**operation["responses"]["400"]["content"], **_PLAIN}
    return operation


def _entry(template: str, method: str) -> Operation:
    template = template.replace(VERSION, "")
    entry = _OPERATIONS.get(template, {}).get(method)
    if entry is None and template.startswith(_CONSOLE_FILES) and method == "GET":
        return _console_file(template)
    if entry is None:
        raise LookupError(f"{method} {template} is served but has no entry in daneel.server.openapi._OPERATIONS")
    return entry


def _id(path: str, id: str) -> str:
    versioned = f"{id}_version" if VERSION in path else id
    return f"gateway_{versioned}" if path.startswith(GATEWAY) else versioned


def _answer(entry: Operation) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": "OK", "content": {m: {"schema": s} for m, s in entry.answer.items()}}
    if _BINARY in entry.answer:
        header = {"description": f"the length of the JSON before the tensors' bytes, in {_BINARY} answers"}
        answer["headers"] = {_BINARY_HEADER: {**header, "schema": {"type": "string"}}}
    return answer


def _errors(codes: tuple[ErrorCode, ...], shape: str) -> dict[str, Any]:
    """The error answers, by status, in the path's protocol's shape; each lists the errors it stands for."""
    by_status: dict[int, list[str]] = {}
    for code in (*codes, *_ALWAYS):
        by_status.setdefault(HTTP_STATUS[code], []).append(code.value.replace("_", " "))
    schema = {_JSON: {"schema": ref(shape)}}
    errors: dict[str, Any] = {}
    for status, names in sorted(by_status.items()):
        errors[str(status)] = {"description": "; ".join(dict.fromkeys(names)), "content": schema}
        if ErrorCode.OVERLOADED.value.replace("_", " ") in names:
            retry = {"description": "seconds to wait, when overloaded", "schema": {"type": "string"}}
            errors[str(status)]["headers"] = {"Retry-After": retry}
    return errors


def _concrete(path: str) -> str:
    """A path the resolver can route: the template's parameters filled in."""
    for parameter in _PARAMETERS:
        path = path.replace("{" + parameter + "}", "x")
    return path


_PARAMETERS = ("namespace", "deployment", "model_name", "model_version")


def _parameters() -> dict[str, Any]:
    segment = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
    return {name: {"name": name, "in": "path", "required": True, "schema": dict(segment)} for name in _PARAMETERS}


def _assemble(paths: dict[str, Any], components: dict[str, Schema], parameters: dict[str, Any], title: str) -> Document:
    components["OpenAPIDocument"] = _object(openapi={"type": "string"}, paths={"type": "object"})
    tags = {tag for operations in paths.values() for operation in operations.values() for tag in operation["tags"]}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": __version__,
            "description": "Seldon's protocol and the Open Inference Protocol (V2) as daneel serves them. "
            "Errors take the shape of the path's protocol.",
        },
        "tags": [{"name": tag, "description": text} for tag, text in _TAGS.items() if tag in tags],
        "paths": paths,
        "components": {"schemas": components, "parameters": parameters},
    }


@functools.cache
def page() -> bytes:
    """The page at /docs: our own small HTML file, installed with the package.

    Swagger UI would be the usual choice, but its assets are megabytes of JavaScript, and the PyPI
    packages that ship them add a templating dependency to every server; this page is one file of
    a few kilobytes with no build step and nothing fetched from elsewhere, so it works offline.
    """
    return resources.files("daneel.server").joinpath("docs.html").read_bytes()
