"""Text generation on the REST edge: V2's generate extension and OpenAI's completions.

Handlers decode a request into a :class:`GenerationRequest`, ask the data plane for the model's
:class:`Generator`, and encode its pieces: joined into one JSON answer, or streamed as server-sent
events (`data: {...}` and a blank line per piece). The first piece is awaited before the answer
starts, so that an error before any text is a plain error status; one after it is an event.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from daneel.dataplane.dataplane import DataPlane
from daneel.errors import DaneelError, InvalidInput, NotFound, internal_error
from daneel.protocol import context, jsonwire
from daneel.runtime import generation
from daneel.runtime.generation import GenerationRequest, Generator, Piece
from daneel.server import http
from daneel.server.http import Response, Scope, json_response

log = logging.getLogger("daneel.rest")

#: Encodes one piece as the JSON of one event; the last piece has a finish_reason.
Encode = Callable[[Piece], list[Any]]

_MAX_STOPS = 4
_ROLES = frozenset({"system", "user", "assistant", "developer", "tool"})


class Generation:
    """The handlers of the generate and OpenAI-compatible routes over one data plane."""

    def __init__(self, dataplane: DataPlane, max_body_bytes: int) -> None:
        self.dataplane = dataplane
        self.max_body_bytes = max_body_bytes

    def routes(self) -> dict[str, dict[str, Any]]:
        """The OpenAI-compatible paths; the generate extension's are a model's (see `model_routes`)."""
        return {
            "/v1/completions": {"POST": self.completions},
            "/v1/chat/completions": {"POST": self.chat_completions},
            "/v1/models": {"GET": self.models},
        }

    def model_routes(self) -> dict[tuple[str, ...], dict[str, Any]]:
        return {("generate",): {"POST": self.generate}, ("generate_stream",): {"POST": self.generate_stream}}

    async def _body(self, scope: Scope, receive: Any) -> dict[str, Any]:
        body = http.parse_json(await http.read_body(scope, receive, self.max_body_bytes))
        if not isinstance(body, dict):
            raise InvalidInput("body", "expected a JSON object")
        return body

    # V2's generate extension

    async def generate(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        name, generator, request = await self._v2(scope, receive, model, version)
        text, last = await http.unless_gone(receive, _joined(generator.generate(request)))
        answer = {"model_name": name, "model_version": version or "", "text_output": text}
        return json_response({**answer, **_v2_finish(last)})

    async def generate_stream(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        name, generator, request = await self._v2(scope, receive, model, version)

        def encode(piece: Piece) -> list[Any]:
            event = {"model_name": name, "model_version": version or "", "text_output": piece.text}
            return [{**event, **_v2_finish(piece)} if piece.finish_reason else event]

        error = _v2_error
        return await _stream(receive, generator.generate(request), encode, error, done=False)

    async def _v2(
        self, scope: Scope, receive: Any, model: str | None, version: str | None
    ) -> tuple[str, Generator, GenerationRequest]:
        body = await self._body(scope, receive)
        name, generator = self.dataplane.generator(str(model), version)
        parameters = body.get("parameters", {})
        if not isinstance(parameters, dict):
            raise InvalidInput("parameters", 'expected a JSON object such as {"max_tokens": 16}')
        prompt = body.get("text_input")
        if not isinstance(prompt, str):
            raise InvalidInput("text_input", f"expected the prompt as a string, got {_kind(prompt)}")
        # Triton reads sampling fields from `parameters` or beside `text_input`; `parameters` wins.
        fields = {**{k: v for k, v in body.items() if k != "parameters"}, **parameters}
        where = {k: f"parameters.{k}" if k in parameters else k for k in fields}
        return name, generator, _request(prompt, fields, where)

    # OpenAI's completions

    async def completions(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        body = await self._body(scope, receive)
        name, generator = self._openai_model(body)
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise InvalidInput("prompt", f"expected a string (or a list of one), got {_kind(prompt)}")
        request = _request(prompt, body, {})
        head = _head("cmpl", "text_completion", name)
        if not _streams(body):
            text, last = await http.unless_gone(receive, _joined(generator.generate(request)))
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": last.finish_reason}
            return json_response({**head, "choices": [choice], "usage": _usage(last, _completion_tokens(last))})
        usage = _Usage(_include_usage(body))

        def encode(piece: Piece) -> list[Any]:
            choice = {"index": 0, "text": piece.text, "logprobs": None, "finish_reason": piece.finish_reason}
            return [{**head, "choices": [choice]}, *usage.chunks(head, piece)]

        return await _stream(receive, generator.generate(request), encode, _openai_event)

    async def chat_completions(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        body = await self._body(scope, receive)
        name, generator = self._openai_model(body)
        prompt = generator.chat_prompt(_messages(body.get("messages")))
        fields, where = dict(body), {k: k for k in body}
        if "max_completion_tokens" in body:  # the newer name of max_tokens
            fields["max_tokens"], where["max_tokens"] = body["max_completion_tokens"], "max_completion_tokens"
        request = _request(prompt, fields, where)
        head = _head("chatcmpl", "chat.completion", name)
        if not _streams(body):
            text, last = await http.unless_gone(receive, _joined(generator.generate(request)))
            message = {"role": "assistant", "content": text}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": last.finish_reason}
            return json_response({**head, "choices": [choice], "usage": _usage(last, _completion_tokens(last))})
        head["object"] = "chat.completion.chunk"
        usage = _Usage(_include_usage(body))
        first = [True]

        def encode(piece: Piece) -> list[Any]:
            delta: dict[str, Any] = {"role": "assistant", "content": piece.text} if first[0] else {}
            if not first[0] and piece.text:
                delta = {"content": piece.text}
            first[0] = False
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": piece.finish_reason}
            return [{**head, "choices": [choice]}, *usage.chunks(head, piece)]

        return await _stream(receive, generator.generate(request), encode, _openai_event)

    async def models(self, scope: Scope, receive: Any, model: str | None, version: str | None) -> Response:
        listed = [{"id": name, "object": "model", "created": 0, "owned_by": "daneel"} for name in self._listed()]
        return json_response({"object": "list", "data": listed})

    def _listed(self) -> list[str]:
        return self.dataplane.generating_models()

    def _openai_model(self, body: dict[str, Any]) -> tuple[str, Generator]:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            served = ", ".join(self._listed()) or "none here"
            raise InvalidInput("model", f"expected the name of a served model that generates text ({served})")
        try:
            return self.dataplane.generator(model)
        except NotFound as exc:
            raise _UnknownModel(exc.message) from None


class _UnknownModel(NotFound):
    """A `model` field that names no served model: OpenAI's error names the field."""

    field = "model"


def _request(prompt: str, fields: dict[str, Any], where: dict[str, str]) -> GenerationRequest:
    """A GenerationRequest from a request's fields; InvalidInput names the field as the client wrote it."""
    max_tokens = fields.get("max_tokens", 16)
    if type(max_tokens) is not int or max_tokens < 1:
        raise InvalidInput(where.get("max_tokens", "max_tokens"), f"expected a positive integer, got {max_tokens!r}")
    temperature = _number(fields, "temperature", 0.0, 0.0, 2.0, where)
    top_p = _number(fields, "top_p", 1.0, 0.0, 1.0, where)
    if top_p == 0.0:
        raise InvalidInput(where.get("top_p", "top_p"), "expected a number above 0 and at most 1, got 0")
    seed = fields.get("seed")
    if seed is not None and type(seed) is not int:
        raise InvalidInput(where.get("seed", "seed"), f"expected an integer, got {seed!r}")
    n = fields.get("n", 1)
    if n != 1:
        raise InvalidInput(where.get("n", "n"), f"expected 1: one choice per request is generated, got {n!r}")
    return GenerationRequest(prompt, max_tokens, temperature, top_p, _stops(fields, where), seed)


def _number(fields: dict[str, Any], key: str, default: float, low: float, high: float, where: dict[str, str]) -> float:
    value = fields.get(key, default)
    if value is None:
        return default
    if type(value) not in (int, float) or not low <= value <= high:
        raise InvalidInput(where.get(key, key), f"expected a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _stops(fields: dict[str, Any], where: dict[str, str]) -> tuple[str, ...]:
    stop = fields.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) or len(stops) > _MAX_STOPS:
        expected = f"expected a string or a list of at most {_MAX_STOPS} non-empty strings, got {stop!r}"
        raise InvalidInput(where.get("stop", "stop"), expected)
    return tuple(stops)


def _messages(value: Any) -> list[dict[str, str]]:
    """A chat's messages as {role, content} with text content; content given as text parts is joined."""
    if not isinstance(value, list) or not value:
        raise InvalidInput("messages", f"expected a non-empty list of {{role, content}} objects, got {_kind(value)}")
    messages = []
    for index, message in enumerate(value):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in _ROLES:
            raise InvalidInput(f"messages[{index}].role", f"expected one of {', '.join(sorted(_ROLES))}, got {role!r}")
        messages.append({"role": str(role), "content": _content(message.get("content"), index)})
    return messages


def _content(content: Any, index: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(part.get("text", "")) for part in content)
    raise InvalidInput(f"messages[{index}].content", "expected a string or a list of text parts")


def _streams(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise InvalidInput("stream", f"expected true or false, got {stream!r}")
    return bool(stream)


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool):
        raise InvalidInput("stream_options", 'expected an object such as {"include_usage": true}')
    return bool(options.get("include_usage", False))


class _Usage:
    """Counts a stream's tokens; its last chunk (choices empty) carries the usage where the client asked for it."""

    def __init__(self, wanted: bool) -> None:
        self.wanted = wanted
        self.tokens = 0

    def chunks(self, head: dict[str, Any], piece: Piece) -> list[Any]:
        self.tokens += piece.tokens
        if not self.wanted or piece.finish_reason is None:
            return []
        return [{**head, "choices": [], "usage": _usage(piece, self.tokens)}]


def _head(prefix: str, kind: str, model: str) -> dict[str, Any]:
    return {"id": f"{prefix}-{os.urandom(12).hex()}", "object": kind, "created": int(time.time()), "model": model}


def _usage(last: Piece, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": last.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": last.prompt_tokens + completion,
    }


def _completion_tokens(last: Piece) -> int:
    """The total carried on the joined last piece by :func:`_joined`."""
    return last.tokens


def _v2_finish(piece: Piece) -> dict[str, Any]:
    return {"finish_reason": piece.finish_reason} if piece.finish_reason else {}


async def _joined(pieces: AsyncIterator[Piece]) -> tuple[str, Piece]:
    """The whole text, and the last piece carrying the total of tokens produced."""
    texts, tokens, last = [], 0, Piece("", 0, "stop")
    try:
        async for piece in pieces:
            texts.append(piece.text)
            tokens += piece.tokens
            last = piece
    finally:
        await generation.close(pieces)
    return "".join(texts), Piece(last.text, tokens, last.finish_reason or "stop", last.prompt_tokens)


async def _stream(
    receive: Any, pieces: AsyncIterator[Piece], encode: Encode, error: Callable[[DaneelError], Any], done: bool = True
) -> Response:
    """An SSE answer of the pieces; the first is awaited here, so that an error before it is the answer's status."""
    try:
        first = await http.unless_gone(receive, anext(pieces, None))
    except BaseException:
        await generation.close(pieces)
        raise
    request_id = context.current().request_id  # the stream is sent once the request's context has closed
    return http.Stream(200, b"", http.SSE, chunks=_events(first, pieces, encode, error, done, request_id))


async def _events(
    first: Piece | None,
    pieces: AsyncIterator[Piece],
    encode: Encode,
    error: Callable[[DaneelError], Any],
    done: bool,
    request_id: str,
) -> AsyncGenerator[bytes]:
    try:
        piece = first
        while piece is not None:
            for event in encode(piece):
                yield _event(event)
            piece = await anext(pieces, None)
    except DaneelError as exc:  # the status has gone: the error is the stream's last event
        yield _event(error(exc))
    except Exception:
        log.exception("unexpected error while streaming (request %s)", request_id)
        yield _event(error(internal_error(request_id)))
    finally:
        await generation.close(pieces)
    if done:
        yield b"data: [DONE]\n\n"


def _event(value: Any) -> bytes:
    return b"data: " + jsonwire.dumps(value) + b"\n\n"


def _v2_error(exc: DaneelError) -> Any:
    return {"error": exc.message}


def _openai_event(exc: DaneelError) -> Any:
    return {"error": {"message": exc.message, "type": "server_error", "param": None, "code": exc.code.value}}


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
