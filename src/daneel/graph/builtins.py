"""Routers and combiners that ship with daneel, named as in Seldon.

They implement the same :class:`Component` interface as users' classes:

- RANDOM_ABTEST (`ratioA`): sends a request to the first of two children with
  probability ratioA, else to the second.
- AVERAGE_COMBINER: the element-wise mean of the children's outputs.
- EPSILON_GREEDY (`n_branches`, `epsilon`, `best_branch`, `seed`) and
  THOMPSON_SAMPLING (`n_branches`, `seed`): multi-armed bandits that learn from
  the rewards sent as feedback. What they learn lives in a
  :class:`~daneel.graph.state.Store`, shared by every worker and replica.

A reward is a number in [0, 1], the mean over the rows of the rewarded request,
as in Seldon's routers: feedback with reward r on a request of n rows counts as
n tries that earned r*n. (Seldon's routers round r*n down to whole successes;
daneel keeps the fraction.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from daneel.errors import InvalidInput, LoadError, ModelError
from daneel.graph.state import Branch, Store
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback
from daneel.runtime.component import Component, Kind


@dataclass(slots=True)
class Settings:
    """What a built-in is made from: its node's name, parameters and children, and the shared state."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    children: int = 0
    state: Store | None = None
    state_key: str = ""
    rng: random.Random = field(default_factory=random.Random)


class Builtin(Component):
    PARAMETERS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Settings) -> None:
        self.name = settings.name
        self.settings = settings
        unknown = sorted(set(settings.parameters) - set(self.PARAMETERS))
        if unknown:
            expected = ", ".join(self.PARAMETERS) or "none"
            raise LoadError(
                f"{self.name}: unknown parameter(s) {', '.join(unknown)} for {self.implementation}; expected {expected}"
            )

    def number(self, key: str, default: float | None, low: float, high: float) -> float:
        value = self.settings.parameters.get(key, default)
        if value is None:
            raise LoadError(f"{self.name}: parameter {key} is missing; expected a number from {low:g} to {high:g}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise LoadError(f"{self.name}: parameter {key}: expected a number, got {value!r}") from None
        if not low <= number <= high:
            raise LoadError(f"{self.name}: parameter {key}: expected a number from {low:g} to {high:g}, got {value!r}")
        return number

    def integer(self, key: str, default: int | None, low: int, high: int) -> int:
        number = self.number(key, default, low, high)
        if number % 1:
            raise LoadError(f"{self.name}: parameter {key}: expected an integer, got {number:g}")
        return int(number)

    def rng(self) -> random.Random:
        """A generator of its own when the node has a `seed` parameter, else the one the graph was given."""
        seed = self.settings.parameters.get("seed")
        return random.Random(self.integer("seed", 0, -(2**63), 2**63)) if seed is not None else self.settings.rng


class RandomABTest(Builtin):
    kind = Kind.ROUTER
    implementation = "RANDOM_ABTEST"
    PARAMETERS = ("ratioA",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        if settings.children != 2:
            raise LoadError(f"{self.name}: RANDOM_ABTEST needs exactly 2 children, it has {settings.children}")
        self.ratio_a = self.number("ratioA", None, 0.0, 1.0)
        self._rng = settings.rng

    async def route(self, payload: Payload) -> int:
        return 0 if self._rng.random() < self.ratio_a else 1


class AverageCombiner(Builtin):
    kind = Kind.COMBINER
    implementation = "AVERAGE_COMBINER"

    async def aggregate(self, payloads: list[Payload]) -> Payload:
        if not payloads:
            raise ModelError(f"{self.name}: nothing to average; no child answered")
        arrays = [np.asarray(payload.data) for payload in payloads]
        for i, array in enumerate(arrays):
            if array.dtype.kind not in "biuf":
                raise ModelError(f"{self.name}: child output {i} is not numeric ({_describe(payloads[i].data)})")
        shapes = [array.shape for array in arrays]
        if len(set(shapes)) > 1:
            raise ModelError(f"{self.name}: cannot average outputs of different shapes {', '.join(map(str, shapes))}")
        first = payloads[0]
        return Payload(np.mean(np.stack(arrays), axis=0), first.names, dict(first.meta), first.form)


class Bandit(Builtin):
    """A router that learns which child earns the most reward; state is kept in a shared store."""

    kind = Kind.ROUTER

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        if settings.state is None:
            raise LoadError(f"{self.name}: {self.implementation} learns from feedback and needs a state store")
        if settings.children < 1:
            raise LoadError(f"{self.name}: {self.implementation} needs children to route to")
        self.state: Store = settings.state
        self.branches = self.integer("n_branches", settings.children, 1, 2**31)
        if self.branches != settings.children:
            raise LoadError(
                f"{self.name}: n_branches is {self.branches} but the router has {settings.children} children;"
                " expected them equal"
            )
        self._rng = self.rng()

    async def stats(self) -> list[Branch]:
        return await self.state.stats(self.settings.state_key, self.branches)

    async def send_feedback(self, feedback: Feedback) -> Payload:
        branch = feedback.routing.get(self.name)
        if branch is None or not 0 <= branch < self.branches:
            return Payload([], [], {})
        if not 0.0 <= feedback.reward <= 1.0:
            raise InvalidInput("reward", f"expected a number from 0 to 1 for {self.implementation} router {self.name}")
        rows = _rows(feedback.request)
        await self.state.add(self.settings.state_key, branch, rows, feedback.reward * rows)
        return Payload([], [], {})


class EpsilonGreedy(Bandit):
    """Exploits the branch with the best mean reward; explores another with probability epsilon."""

    implementation = "EPSILON_GREEDY"
    PARAMETERS = ("n_branches", "epsilon", "best_branch", "seed")

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.epsilon = self.number("epsilon", 0.1, 0.0, 1.0)
        self.best_branch = self.integer("best_branch", 0, 0, self.branches - 1)

    async def route(self, payload: Payload) -> int:
        best = self.best(await self.stats())
        if self.branches > 1 and self._rng.random() < self.epsilon:
            return self._rng.choice([branch for branch in range(self.branches) if branch != best])
        return best

    def best(self, stats: list[Branch]) -> int:
        """The branch with the highest mean reward; `best_branch` before any feedback and among ties."""
        if not any(branch.tries for branch in stats):
            return self.best_branch
        means = [branch.mean for branch in stats]
        top = max(means)
        return self.best_branch if means[self.best_branch] == top else means.index(top)


class ThompsonSampling(Bandit):
    """Draws each branch's success rate from Beta(1 + reward, 1 + tries - reward); routes to the highest draw."""

    implementation = "THOMPSON_SAMPLING"
    PARAMETERS = ("n_branches", "seed")

    async def route(self, payload: Payload) -> int:
        stats = await self.stats()
        draws = [self._rng.betavariate(1.0 + b.reward, 1.0 + max(b.tries - b.reward, 0.0)) for b in stats]
        return draws.index(max(draws))


BUILTINS: dict[str, type[Builtin]] = {
    cls.implementation: cls for cls in (RandomABTest, AverageCombiner, EpsilonGreedy, ThompsonSampling)
}


def build(implementation: str, settings: Settings) -> Builtin:
    return BUILTINS[implementation](settings)


def _rows(request: Payload | None) -> int:
    """How many predictions the rewarded request asked for: its rows, as Seldon counts them."""
    data = None if request is None else request.data
    shape = getattr(data, "shape", None)
    if shape:
        return int(shape[0])
    return len(data) if isinstance(data, list) and data else 1


def _describe(data: Any) -> str:
    return f"an array of {data.dtype}" if isinstance(data, np.ndarray) else f"a {type(data).__name__}"
