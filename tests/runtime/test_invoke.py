import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from daneel.runtime.invoke import _SAMPLE, _STABLE_CALLS, Invoker


class Clock:
    """A clock that moves only when the work it times says so, and counts how often it is read."""

    def __init__(self) -> None:
        self.now = 0.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


class Work:
    """User code that costs `cost` seconds on the fake clock and reports the thread it ran on."""

    def __init__(self, clock: Clock, cost: float) -> None:
        self.clock = clock
        self.cost = cost

    def __call__(self) -> bool:
        self.clock.now += self.cost
        return threading.current_thread() is threading.main_thread()


def on_main_thread(invoker: Invoker, calls: int) -> list[bool]:
    async def run() -> list[bool]:
        return [await invoker() for _ in range(calls)]

    return asyncio.run(run())


def test_auto_warms_up_on_a_thread_then_runs_cheap_code_inline() -> None:
    clock = Clock()
    invoker = Invoker(Work(clock, cost=0.0001), clock=clock)
    assert on_main_thread(invoker, 5) == [False, False, False, True, True]
    assert invoker.inline


def test_auto_runs_unbounded_user_code_on_a_thread_however_cheap() -> None:
    clock = Clock()
    invoker = Invoker(Work(clock, cost=0.0001), clock=clock, bounded=False)
    assert on_main_thread(invoker, 50) == [False] * 50
    assert clock.reads == 0  # nothing to decide: not even timed


@pytest.mark.parametrize(("policy", "inline"), [("inline", True), ("thread", False)])
def test_explicit_policies_hold_for_unbounded_code_too(policy: str, inline: bool) -> None:
    invoker = Invoker(Work(Clock(), cost=0.0), policy, bounded=False)
    assert on_main_thread(invoker, 5) == [inline] * 5


def test_auto_keeps_slow_code_on_a_thread() -> None:
    clock = Clock()
    invoker = Invoker(Work(clock, cost=0.5), clock=clock)
    assert on_main_thread(invoker, 5) == [False] * 5
    assert invoker.mean_s == pytest.approx(0.5)


def test_auto_moves_code_that_became_slow_back_to_a_thread() -> None:
    clock = Clock()
    work = Work(clock, cost=0.0001)
    invoker = Invoker(work, clock=clock)
    on_main_thread(invoker, 4)
    work.cost = 0.5
    assert on_main_thread(invoker, 2) == [True, False]


def test_code_cheap_for_a_while_is_timed_on_one_call_in_a_few() -> None:
    clock = Clock()
    invoker = Invoker(Work(clock, cost=0.0001), clock=clock)
    on_main_thread(invoker, _STABLE_CALLS)
    clock.reads = 0
    assert on_main_thread(invoker, 10 * _SAMPLE) == [True] * (10 * _SAMPLE)
    assert clock.reads == 2 * 10  # a start and an end for each timed call


def test_code_that_became_slow_is_caught_by_the_next_timed_call() -> None:
    clock = Clock()
    work = Work(clock, cost=0.0001)
    invoker = Invoker(work, clock=clock)
    on_main_thread(invoker, _STABLE_CALLS)
    work.cost = 0.5
    assert on_main_thread(invoker, _SAMPLE + 1)[-1] is False


def test_code_near_the_threshold_is_timed_on_every_call() -> None:
    clock = Clock()
    invoker = Invoker(Work(clock, cost=0.0005), clock=clock)
    on_main_thread(invoker, _STABLE_CALLS)
    clock.reads = 0
    assert on_main_thread(invoker, 10) == [True] * 10
    assert clock.reads == 2 * 10


def test_the_threshold_decides_what_is_cheap() -> None:
    clock = Clock()
    invoker = Invoker(Work(clock, cost=0.01), threshold_s=0.1, clock=clock)
    assert on_main_thread(invoker, 4)[-1] is True


@pytest.mark.parametrize(("policy", "inline"), [("inline", True), ("thread", False)])
def test_explicit_policies_hold_from_the_first_call(policy: str, inline: bool) -> None:
    clock = Clock()
    invoker = Invoker(Work(clock, cost=0.5 if inline else 0.0), policy, clock=clock)
    assert on_main_thread(invoker, 5) == [inline] * 5


def test_unknown_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="'fast'"):
        Invoker(print, "fast")


def test_coroutine_functions_are_awaited_on_the_loop() -> None:
    async def predict(x: int) -> tuple[int, bool]:
        await asyncio.sleep(0)
        return x * 2, threading.current_thread() is threading.main_thread()

    invoker = Invoker(predict, "thread")
    assert invoker.is_async
    assert asyncio.run(invoker(21)) == (42, True)


def test_arguments_and_results_pass_through() -> None:
    invoker = Invoker(lambda a, b: a - b)
    assert asyncio.run(invoker(5, 3)) == 2


@pytest.mark.parametrize("policy", ["inline", "thread", "auto"])
def test_exceptions_reach_the_caller(policy: str) -> None:
    def fail() -> Any:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        asyncio.run(Invoker(fail, policy)())


def test_an_injected_executor_runs_the_code() -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="user-code") as executor:
        invoker = Invoker(lambda: threading.current_thread().name, "thread", executor=executor)
        assert asyncio.run(invoker()).startswith("user-code")
