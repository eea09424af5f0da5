"""A user's Python class as a :class:`Generator`: its `generate(prompt, **params)` streams the text.

`generate` may be an async generator, a plain generator (stepped on a thread, one piece at a time, so
that each piece leaves as soon as it is yielded), or return the whole text at once. It yields strings,
each counted as one token, or `(text, tokens)` pairs where a piece holds another number of tokens.
It is given the parameters its signature names (`max_tokens`, `temperature`, `top_p`, `stop`, `seed`;
all of them with `**params`). The adapter stops pulling at `max_tokens` and cuts the text before a
stop sequence (even one split across pieces), whether or not the class does so itself; stopping closes
the class's generator, so its `finally` runs. The prompt's token count is the class's
`count_tokens(text)`, or its words.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from daneel.errors import DaneelError, ModelError
from daneel.runtime.generation import FinishReason, GenerationRequest, Piece

PARAMETERS = ("max_tokens", "temperature", "top_p", "stop", "seed")
_END = object()
#: Threads that step plain generators: one per request that is generating at this moment.
_THREADS = 64


class PythonGenerator:
    """The Generator protocol over an instance whose class defines `generate`."""

    def __init__(self, obj: Any, name: str) -> None:
        self._obj = obj
        self._name = name
        self._generate: Callable[..., Any] = obj.generate
        self._accepts = _accepted(self._generate)
        self._threads: ThreadPoolExecutor | None = None

    def chat_prompt(self, messages: Sequence[Mapping[str, str]]) -> str:
        own = getattr(self._obj, "chat_prompt", None)
        if callable(own):
            return str(self._user_call("chat_prompt", own, list(messages)))
        lines = [f"{message['role']}: {message['content']}" for message in messages]
        return "\n".join([*lines, "assistant:"])

    def generate(self, request: GenerationRequest) -> AsyncIterator[Piece]:
        return self._pieces(request)

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)

    async def _pieces(self, request: GenerationRequest) -> AsyncIterator[Piece]:
        prompt_tokens = self._count(request.prompt)
        source = self._source(request)
        produced, held, finish, stopped = 0, "", "stop", False
        try:
            async for chunk, tokens in source:
                text, held, stopped = _stop_at(held + chunk, request.stop)
                produced += tokens
                yield Piece(text, tokens)
                if stopped:
                    break
                if produced >= request.max_tokens:
                    finish = "length"
                    break
        finally:
            await source.aclose()
        yield Piece(held, 0, _reason(finish), prompt_tokens)

    async def _source(self, request: GenerationRequest) -> AsyncGenerator[tuple[str, int]]:
        """The class's pieces as (text, tokens), whatever kind of generator it wrote."""
        params = {key: _param(request, key) for key in PARAMETERS if self._accepts(key)}
        made = self._user_call("generate", self._generate, request.prompt, **params)
        if isinstance(made, str):
            yield made, 1
            return
        items: AsyncGenerator[Any] = made if isinstance(made, AsyncGenerator) else self._stepped(made)
        try:
            async for item in items:
                yield self._piece(item)
        except DaneelError:
            raise
        except Exception as exc:
            raise ModelError(f"{self._name}.generate raised {type(exc).__name__}: {exc}") from exc
        finally:
            await items.aclose()

    async def _stepped(self, iterator: Iterator[Any]) -> AsyncGenerator[Any]:
        """A plain generator's items, each `next` on a thread; closed once its step in progress ends."""
        if not isinstance(iterator, Iterator):
            raise ModelError(f"{self._name}.generate returned {type(iterator).__name__}; expected text or a generator")
        step: Future[Any] | None = None
        try:
            while True:
                step = self._pool().submit(next, iterator, _END)
                item = await asyncio.wrap_future(step)
                if item is _END:
                    return
                yield item
        finally:
            close = getattr(iterator, "close", None)
            if step is not None and callable(close):
                step.add_done_callback(lambda _: _quietly(close))  # on the stepping thread if it still runs

    def _pool(self) -> ThreadPoolExecutor:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(_THREADS, thread_name_prefix=f"daneel-generate-{self._name}")
        return self._threads

    def _piece(self, item: Any) -> tuple[str, int]:
        if isinstance(item, str):
            return item, 1
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and type(item[1]) is int:
            return item[0], item[1]
        raise ModelError(f"{self._name}.generate yielded {item!r}; expected a string or a (text, tokens) pair")

    def _count(self, text: str) -> int:
        own = getattr(self._obj, "count_tokens", None)
        if not callable(own):
            return len(text.split())
        counted = self._user_call("count_tokens", own, text)
        if type(counted) is not int:
            raise ModelError(f"{self._name}.count_tokens returned {counted!r}; expected an integer")
        return counted

    def _user_call(self, method: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise ModelError(f"{self._name}.{method} raised {type(exc).__name__}: {exc}") from exc


def _accepted(fn: Callable[..., Any]) -> Callable[[str], bool]:
    """Whether `fn` takes a keyword of that name."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return lambda name: True
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names.__contains__


def _param(request: GenerationRequest, key: str) -> Any:
    value = getattr(request, key)
    return list(value) if key == "stop" else value


def _stop_at(text: str, stops: tuple[str, ...]) -> tuple[str, str, bool]:
    """What of the unsent `text` may be sent, what is held back, and whether a stop sequence was reached.

    Text before the first stop sequence is sent, the sequence and what follows it dropped. Without one,
    the end of `text` that could begin a stop sequence is held back until the next piece tells.
    """
    if not stops:
        return text, "", False
    found = [index for index in (text.find(stop) for stop in stops) if index >= 0]
    if found:
        return text[: min(found)], "", True
    keep = max((n for stop in stops for n in range(1, len(stop)) if text.endswith(stop[:n])), default=0)
    return text[: len(text) - keep], text[len(text) - keep :], False


def _reason(finish: str) -> FinishReason:
    return "length" if finish == "length" else "stop"


def _quietly(close: Callable[[], Any]) -> None:
    with contextlib.suppress(Exception):  # a generator's own error as it closes is no one's to answer any more
        close()
