"""The little HTTP that the REST edge needs: reading bodies, writing responses, mapping errors.

daneel speaks raw ASGI rather than through a web framework: its routes are a fixed
set known at start, and the hot path should cost a dict lookup, not a framework.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from typing import Any, TypeVar
from urllib.parse import parse_qs

import orjson

from daneel.errors import DaneelError, ErrorCode, InvalidInput, Overloaded, PayloadTooLarge
from daneel.protocol import binary, jsonwire, v1, v2

Scope = dict[str, Any]
T = TypeVar("T")

log = logging.getLogger("daneel.rest")

#: The one table from daneel's error codes to HTTP statuses.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_INPUT: 400,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.REJECTED: 422,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.NOT_READY: 503,
    ErrorCode.NOT_IMPLEMENTED: 501,
    ErrorCode.MODEL_ERROR: 500,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.LOAD_ERROR: 500,
    ErrorCode.UNAUTHENTICATED: 401,
}

JSON = b"application/json"


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: bytes = JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class Stream(Response):
    """A response whose body is sent chunk by chunk as `chunks` yields them (server-sent events)."""

    chunks: AsyncGenerator[bytes] | None = None


SSE = b"text/event-stream; charset=utf-8"


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, jsonwire.dumps(value))


def tensors_response(header: Any, parts: list[bytes]) -> Response:
    """A V2 response: JSON alone, or with binary tensors the JSON header followed by their bytes."""
    if not parts:
        return json_response(header)
    head = jsonwire.dumps(header)
    response = Response(200, b"".join([head, *parts]), b"application/octet-stream")
    response.headers.append((b"inference-header-content-length", str(len(head)).encode()))
    return response


def error_response(exc: DaneelError, seldon: bool) -> Response:
    """The error in the protocol's own shape: Seldon's status object or V2's {"error"}."""
    status = HTTP_STATUS[exc.code]
    body = v1.error_body(status, exc.message, exc.reason) if seldon else {"error": exc.message}
    response = json_response(body, status)
    if isinstance(exc, Overloaded):
        response.headers.append((b"retry-after", str(max(1, round(exc.retry_after))).encode()))
    return response


#: OpenAI's error `type` by HTTP status; others are "invalid_request_error" (4xx) or "server_error".
_OPENAI_TYPES = {401: "authentication_error", 404: "not_found_error", 503: "server_error"}


def openai_error(exc: DaneelError) -> Response:
    """The error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}, `param` naming the field."""
    status = HTTP_STATUS[exc.code]
    kind = _OPENAI_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    param = getattr(exc, "field", "") or None
    error = {"message": exc.message, "type": kind, "param": param, "code": exc.code.value}
    return json_response({"error": error}, status)


def method_not_allowed(method: str, path: str, allowed: list[str], seldon: bool) -> Response:
    """405 in the protocol's own shape, with the Allow header HTTP asks for."""
    methods = ", ".join(allowed)
    message = f"method {method} not allowed on {path}; use {methods}"
    body = v1.error_body(405, message, "METHOD_NOT_ALLOWED") if seldon else {"error": message}
    response = json_response(body, 405)
    response.headers.append((b"allow", methods.encode()))
    return response


#: Requests whose JSON is this many bytes or more are decoded in a helper process (server/bodies.py), so that the
#: event loop keeps serving meanwhile.
LARGE_BODY = 1 << 20
#: The most parts of a multipart form, and fields of a urlencoded one (body or query string), that are read.
MAX_FORM_FIELDS = 1000

Body = bytes | bytearray


async def read_body(scope: Scope, receive: Any, limit: int) -> Body:
    """The whole request body; PayloadTooLarge as soon as it passes `limit` bytes.

    A body that comes in several chunks is gathered in one growing buffer rather than joined at the
    end, which would hold it twice.
    """
    length = header(scope, b"content-length")
    if length is not None and length.isascii() and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(limit)
    message = await receive()
    body: bytes = message.get("body", b"")
    size = len(body)
    if size > limit:
        raise PayloadTooLarge(limit)
    if not message.get("more_body", False):
        return body
    chunks = bytearray(body)
    while message.get("more_body", False):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        chunks += chunk
    return chunks


def parse_infer(body: Body, length: str | None) -> tuple[Any, binary.BinaryOutputs, memoryview | None]:
    """An inference request's JSON (header), the outputs it wants in binary, and its binary parts if any.

    `length` is the Inference-Header-Content-Length header, if the request has one.
    """
    head, blob = binary.split(body, length)
    request = parse_json(head)
    return request, binary.binary_outputs(request), blob


def json_size(body: Body, length: str | None) -> int:
    """How many of a request body's bytes are JSON: all of them, or the binary extension's header length.

    Tensor bytes after the header cost next to nothing to decode, so only the JSON's size is large or not.
    """
    if length is not None and length.isascii() and length.isdigit():
        return min(int(length), len(body))
    return len(body)


def decode_infer(body: Body, length: str | None) -> tuple[v2.InferenceRequest, binary.BinaryOutputs]:
    """An inference request decoded whole, its binary parts too: what a large body's helper process does."""
    request, wanted, blob = parse_infer(body, length)
    return (binary.decode_request(request, blob) if blob else v2.decode_request(request)), wanted


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


def parse_json(body: Body) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not body.strip():
            raise InvalidInput("body", "is empty; expected a JSON document") from None
        raise InvalidInput("body", f"invalid JSON ({exc})") from None


def seldon_body(scope: Scope, body: Body) -> Any:
    """A Seldon request: the form field or query parameter `json`, else the raw JSON body."""
    content_type = header(scope, b"content-type") or ""
    if content_type.startswith("multipart/form-data"):
        return parse_json(_multipart_field(content_type, body, "json"))
    if content_type.startswith("application/x-www-form-urlencoded") and not body.lstrip().startswith(b"{"):
        fields = _form_fields(body, "body")
        if "json" in fields:
            return parse_json(fields["json"][0].encode())
    if not body.strip() and scope.get("query_string"):
        fields = _form_fields(scope["query_string"], "query string")
        if "json" in fields:
            return parse_json(fields["json"][0].encode())
    return parse_json(body)


def _form_fields(text: Body, where: str) -> dict[str, list[str]]:
    try:
        return parse_qs(text.decode("utf-8", "replace"), max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # more fields than max_num_fields
        raise InvalidInput(where, f"a form may have at most {MAX_FORM_FIELDS} fields") from None


def _multipart_field(content_type: str, body: Body, name: str) -> bytes:
    head = b"Content-Type: " + content_type.encode() + b"\r\n\r\n"
    boundary = Message()
    boundary["content-type"] = content_type
    delimiter = boundary.get_boundary()
    # Counted before parsing: the parser's cost grows with the parts, a count's only with the bytes.
    if delimiter and body.count(b"--" + delimiter.encode("utf-8", "replace")) > MAX_FORM_FIELDS + 1:
        raise InvalidInput("body", f"a multipart form may have at most {MAX_FORM_FIELDS} parts")
    message = BytesParser().parsebytes(head + body)
    parts = message.get_payload() if message.is_multipart() else []
    for part in parts if isinstance(parts, list) else []:
        if isinstance(part, Message) and part.get_param("name", header="content-disposition") == name:
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else b""
    raise InvalidInput(name, f"multipart form has no field {name!r}")


async def send(send_fn: Any, response: Response) -> None:
    headers = [(b"content-type", response.content_type), (b"content-length", b"%d" % len(response.body))]
    if response.headers:
        headers += response.headers
    await send_fn({"type": "http.response.start", "status": response.status, "headers": headers})
    await send_fn({"type": "http.response.body", "body": response.body})


async def send_stream(send_fn: Any, receive: Any, response: Stream) -> None:
    """Send `response`'s chunks as they come; a client that disconnects closes them (and what feeds them)."""
    assert response.chunks is not None
    headers = [(b"content-type", response.content_type), (b"cache-control", b"no-cache"), *response.headers]
    await send_fn({"type": "http.response.start", "status": response.status, "headers": headers})
    sending = asyncio.ensure_future(_send_chunks(send_fn, response.chunks))
    watching = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((sending, watching), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sending, watching):
            task.cancel()
        await asyncio.gather(sending, watching, return_exceptions=True)
        await response.chunks.aclose()
    if not sending.cancelled() and sending.exception() is not None:
        log.error("a streamed response failed", exc_info=sending.exception())


async def _send_chunks(send_fn: Any, chunks: AsyncIterator[bytes]) -> None:
    async for chunk in chunks:
        await send_fn({"type": "http.response.body", "body": chunk, "more_body": True})
    await send_fn({"type": "http.response.body", "body": b"", "more_body": False})


async def unless_gone(receive: Any, call: Awaitable[T]) -> T:
    """`call`'s result; cancelled as soon as the client disconnects (the request's body has been read before).

    For work whose answer is sent only at its end, so that a client that gave up does not keep it running.
    """
    work = asyncio.ensure_future(call)
    watching = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((work, watching), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watching.cancel()
        work.cancel()
        await asyncio.gather(work, watching, return_exceptions=True)
    if work.cancelled():
        raise InvalidInput("", "the client disconnected before the answer was ready")
    return work.result()


async def _disconnected(receive: Any) -> None:
    """Return once the client has gone (the request's body has been read before)."""
    while (await receive())["type"] != "http.disconnect":
        pass
