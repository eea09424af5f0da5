"""Text generation: what a component that writes text offers the generate and OpenAI-compatible endpoints.

A component that can generate implements :class:`Generator`: given a :class:`GenerationRequest`, it
yields :class:`Piece` after piece as the text is produced. The edges stream the pieces to the client
(V2's generate extension, OpenAI's completions with `stream: true`) or join them. A client that goes
away closes the iterator (`aclose`), and the generator stops generating for that request. Batching
concurrent requests into one model call is the generator's own business: the edges call `generate`
once per request, concurrently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One prompt and how to continue it. `temperature` 0 means greedy decoding."""

    prompt: str
    max_tokens: int = 16
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Piece:
    """Text produced since the last piece, and how many tokens it holds.

    The last piece of a generation carries `finish_reason` ("stop": a stop sequence or the end of the
    sequence was reached; "length": `max_tokens` were produced) and `prompt_tokens`, the length of the
    prompt in tokens; earlier pieces carry None and 0.
    """

    text: str
    tokens: int = 1
    finish_reason: FinishReason | None = None
    prompt_tokens: int = 0


@runtime_checkable
class Generator(Protocol):
    """A component that generates text token by token."""

    def generate(self, request: GenerationRequest) -> AsyncIterator[Piece]:
        """The pieces of the continuation of `request.prompt`, as they are produced."""
        ...

    def chat_prompt(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The prompt that a chat's messages (`role`, `content`) make for this model (its chat template)."""
        ...


async def close(pieces: AsyncIterator[Any]) -> None:
    """Stop a generation: close its iterator where it can be closed (an async generator can), else let it be."""
    aclose = getattr(pieces, "aclose", None)
    if aclose is not None:
        await aclose()
