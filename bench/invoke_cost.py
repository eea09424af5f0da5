"""What a thread hop costs next to the user code it would move off the event loop.

Measures, on this machine and on the loop `daneel serve` uses (uvloop when installed):

- a cheap synchronous function called inline, and through `loop.run_in_executor`;
- iris LogisticRegression.predict_proba on one row, called directly and through
  `daneel.runtime.invoke.Invoker` with each policy (inline, thread, auto).

Run: .venv/bin/python bench/invoke_cost.py [--calls N] [--rounds R]
Each figure is the median over R rounds of the mean time per call over N sequential calls.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from daneel.runtime.invoke import Invoker


def cheap(x: Any) -> Any:
    return x


async def per_call_us(call: Callable[[], Awaitable[Any]], calls: int, rounds: int) -> float:
    """Median over rounds of the mean microseconds per awaited call."""
    for _ in range(min(calls, 200)):
        await call()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(calls):
            await call()
        samples.append((time.perf_counter_ns() - start) / calls / 1000)
    return statistics.median(samples)


async def measure(calls: int, rounds: int) -> list[tuple[str, float, str]]:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    row = X[:1].copy()
    loop = asyncio.get_running_loop()

    async def inline_cheap() -> Any:
        return cheap(row)

    async def hop_cheap() -> Any:
        return await loop.run_in_executor(None, cheap, row)

    async def direct_proba() -> Any:
        return model.predict_proba(row)

    table = [
        ("cheap function, inline", await per_call_us(inline_cheap, calls, rounds), ""),
        ("cheap function, run_in_executor", await per_call_us(hop_cheap, calls, rounds), "the thread hop"),
        ("predict_proba(1 row), direct", await per_call_us(direct_proba, calls, rounds), ""),
    ]
    for policy in ("inline", "thread", "auto"):
        invoker = Invoker(model.predict_proba, policy)

        async def via_invoker(invoker: Invoker = invoker) -> Any:
            return await invoker(row)

        cost = await per_call_us(via_invoker, calls, rounds)
        note = "ran inline" if invoker.inline else "ran on a thread"
        if policy == "auto":
            note += f" after 3 warm-up calls on a thread; EWMA {invoker.mean_s * 1e6:.0f} µs"
        table.append((f"predict_proba(1 row), Invoker {policy}", cost, note))
    return table


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="sequential calls per round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; the median is reported")
    args = parser.parse_args()
    loop = new_loop()
    try:
        table = loop.run_until_complete(measure(args.calls, args.rounds))
    finally:
        loop.close()
    print(f"{platform.python_implementation()} {platform.python_version()}, {type(loop).__module__} loop,")
    print(f"numpy {np.__version__}, {args.rounds} rounds x {args.calls} calls\n")
    print(f"| {'call':<38} | {'µs/call':>8} | note")
    print(f"|{'-' * 40}|{'-' * 10}|------")
    for name, cost, note in table:
        print(f"| {name:<38} | {cost:>8.1f} | {note}")


if __name__ == "__main__":
    main()
