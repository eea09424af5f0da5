"""The JSON schemas of the text-generation bodies (server/generate.py), for the OpenAPI documents."""

from __future__ import annotations

from typing import Any

from daneel.protocol.schemas import Schema, ref

_STRING: Schema = {"type": "string"}
_INTEGER: Schema = {"type": "integer"}
_NULL_STRING: Schema = {"type": ["string", "null"]}
_FINISH: Schema = {"enum": ["stop", "length", None]}


def _object(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


def _sampling() -> dict[str, Schema]:
    """The fields every generation request may carry, as daneel checks them."""
    return {
        "max_tokens": {"type": "integer", "minimum": 1, "default": 16},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2, "default": 0},
        "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1},
        "stop": {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "maxItems": 4, "items": {"type": "string", "minLength": 1}},
            ]
        },
        "seed": _INTEGER,
    }


def _openai_request(prompt: dict[str, Schema], required: list[str]) -> Schema:
    schema = _object(["model", *required], model=_STRING, **prompt, **_sampling())
    schema["properties"]["stream"] = {"type": "boolean", "default": False}
    schema["properties"]["stream_options"] = _object([], include_usage={"type": "boolean"})
    schema["properties"]["n"] = {"const": 1}
    return schema


def _answer(kind: str, choice: Schema) -> Schema:
    schema = _object(["id", "object", "created", "model", "choices"])
    schema["properties"] = {
        "id": _STRING,
        "object": {"const": kind},
        "created": _INTEGER,
        "model": _STRING,
        "choices": {"type": "array", "items": choice},
        "usage": ref("Usage"),
    }
    return schema


def schemas() -> dict[str, Schema]:
    """The named schemas that the generation routes' entries refer to."""
    usage = _object(["prompt_tokens", "completion_tokens", "total_tokens"])
    usage["properties"] = {key: _INTEGER for key in usage["required"]}
    message = _object(["role"], role=_STRING, content={"anyOf": [_STRING, {"type": "array"}, {"type": "null"}]})
    text_choice = _object(["index", "text", "finish_reason"], index=_INTEGER, text=_STRING, finish_reason=_FINISH)
    chat_choice = _object(["index", "message", "finish_reason"], index=_INTEGER, finish_reason=_FINISH)
    chat_choice["properties"]["message"] = _object(["role", "content"], role={"const": "assistant"}, content=_STRING)
    generate = _object(["text_input"], text_input=_STRING, parameters=_object([], **_sampling()))
    generate["properties"] |= _sampling()
    error = _object(["message", "type", "param", "code"], message=_STRING, type=_STRING, param=_NULL_STRING)
    error["properties"]["code"] = _NULL_STRING
    return {
        "GenerateRequest": generate,
        "GenerateResponse": _object(
            ["model_name", "model_version", "text_output"],
            model_name=_STRING,
            model_version=_STRING,
            text_output=_STRING,
            finish_reason=_FINISH,
        ),
        "CompletionRequest": _openai_request(
            {"prompt": {"anyOf": [_STRING, {"type": "array", "minItems": 1, "maxItems": 1, "items": _STRING}]}},
            ["prompt"],
        ),
        "ChatCompletionRequest": _openai_request(
            {"messages": {"type": "array", "minItems": 1, "items": message}, "max_completion_tokens": _INTEGER},
            ["messages"],
        ),
        "Completion": _answer("text_completion", text_choice),
        "ChatCompletion": _answer("chat.completion", chat_choice),
        "Usage": usage,
        "ModelList": _object(
            ["object", "data"],
            object={"const": "list"},
            data={"type": "array", "items": _object(["id", "object"], id=_STRING, object={"const": "model"})},
        ),
        "OpenAIError": _object(["error"], error=error),
    }


def events(summary: str) -> dict[str, Any]:
    """A stream of server-sent events, as the 200 answer's schema by media type."""
    return {"text/event-stream": {"type": "string", "description": summary}}
