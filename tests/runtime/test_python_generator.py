"""A user's class with `generate` as a Generator: async, sync and whole-text classes, limits, closing, errors."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from daneel.errors import ModelError
from daneel.runtime.generation import GenerationRequest, Generator, Piece
from daneel.runtime.python_generator import PythonGenerator


class Words:
    """An async generator that yields its prompt's words and remembers being closed."""

    def __init__(self) -> None:
        self.closed = False

    async def generate(self, prompt: str) -> AsyncIterator[str]:
        try:
            for word in prompt.split():
                await asyncio.sleep(0)
                yield word + " "
        finally:
            self.closed = True


class Counted:
    """A sync generator that says how many tokens each piece holds, and counts the prompt's own way."""

    def __init__(self) -> None:
        self.closed = threading.Event()
        self.seen: dict[str, Any] = {}

    def generate(self, prompt: str, **params: Any) -> Iterator[tuple[str, int]]:
        self.seen = params
        try:
            yield "ab", 2
            yield "cd", 2
            yield "ef", 2
        finally:
            self.closed.set()

    def count_tokens(self, text: str) -> int:
        return len(text)

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return "|".join(message["content"] for message in messages)


class Whole:
    def generate(self, prompt: str) -> str:
        return prompt[::-1]


class Broken:
    def generate(self, prompt: str) -> Iterator[str]:
        yield "fine"
        raise RuntimeError("the weights are gone")


async def pieces(generator: Generator, request: GenerationRequest) -> list[Piece]:
    return [piece async for piece in generator.generate(request)]


def test_an_async_class_streams_its_pieces_and_ends_with_the_finish() -> None:
    words = Words()
    got = asyncio.run(pieces(PythonGenerator(words, "words"), GenerationRequest("a b c")))
    assert [p.text for p in got] == ["a ", "b ", "c ", ""]
    assert (got[-1].finish_reason, got[-1].prompt_tokens, got[-1].tokens) == ("stop", 3, 0)
    assert words.closed


def test_max_tokens_stops_the_class_and_closes_it() -> None:
    words = Words()
    got = asyncio.run(pieces(PythonGenerator(words, "words"), GenerationRequest("a b c d", max_tokens=2)))
    assert [p.text for p in got] == ["a ", "b ", ""]
    assert got[-1].finish_reason == "length"
    assert words.closed


def test_a_sync_class_runs_on_a_thread_with_its_own_counts_and_the_parameters_it_takes() -> None:
    counted = Counted()
    generator = PythonGenerator(counted, "counted")
    got = asyncio.run(pieces(generator, GenerationRequest("xyz", max_tokens=4, stop=("zz",), seed=7)))
    assert [(p.text, p.tokens) for p in got] == [("ab", 2), ("cd", 2), ("", 0)]
    assert (got[-1].finish_reason, got[-1].prompt_tokens) == ("length", 3)
    assert counted.seen == {"max_tokens": 4, "temperature": 0.0, "top_p": 1.0, "stop": ["zz"], "seed": 7}
    assert counted.closed.wait(30)
    generator.close()


def test_a_stop_sequence_cuts_the_text() -> None:
    got = asyncio.run(pieces(PythonGenerator(Counted(), "counted"), GenerationRequest("x", stop=("de",))))
    assert "".join(p.text for p in got) == "abc"
    assert got[-1].finish_reason == "stop"


def test_a_class_may_return_the_whole_text() -> None:
    got = asyncio.run(pieces(PythonGenerator(Whole(), "whole"), GenerationRequest("abc")))
    assert [p.text for p in got] == ["cba", ""]


def test_closing_a_generation_midway_closes_a_sync_class() -> None:
    counted = Counted()

    async def first() -> str:
        stream = PythonGenerator(counted, "counted").generate(GenerationRequest("x", max_tokens=100))
        piece = await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        return piece.text

    assert asyncio.run(first()) == "ab"
    assert counted.closed.wait(30)


def test_an_error_in_the_class_is_a_model_error_naming_it() -> None:
    with pytest.raises(ModelError, match=r"broken.generate raised RuntimeError: the weights are gone"):
        asyncio.run(pieces(PythonGenerator(Broken(), "broken"), GenerationRequest("x")))


def test_chat_prompt_is_the_classs_own_or_a_plain_layout() -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert PythonGenerator(Counted(), "c").chat_prompt(messages) == "be brief|hi"
    assert PythonGenerator(Words(), "w").chat_prompt(messages) == "system: be brief\nuser: hi\nassistant:"
