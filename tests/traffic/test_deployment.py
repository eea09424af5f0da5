import asyncio
import random
from collections import Counter
from typing import Any

import numpy as np
import pytest

from daneel.errors import ModelError
from daneel.protocol import context
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback
from daneel.runtime.component import Component
from daneel.spec.model import Sticky
from daneel.traffic.deployment import PREDICTOR_HEADER, Deployment


class Constant(Component):
    """A predictor answering a fixed value, recording what it saw."""

    def __init__(self, name: str, value: float, fail: bool = False) -> None:
        self.name = name
        self.value = value
        self.fail = fail
        self.seen: list[Payload] = []
        self.feedback: list[Feedback] = []
        self.loaded = self.closed = False
        self.release = asyncio.Event()
        self.wait = False

    async def load(self) -> None:
        self.loaded = True

    async def close(self) -> None:
        self.closed = True

    async def predict(self, payload: Payload) -> Payload:
        self.seen.append(payload)
        if self.wait:
            await self.release.wait()
        if self.fail:
            raise ModelError(f"{self.name} is broken")
        if isinstance(payload.data, np.ndarray):
            payload.data *= 0  # a model that changes its input in place
        return Payload(np.array([[self.value]]), [], {"tags": {"by": self.name}})

    async def send_feedback(self, feedback: Feedback) -> Payload:
        self.feedback.append(feedback)
        return Payload([], [], {})


def request(**meta: Any) -> Payload:
    return Payload(np.array([[1.0, 2.0]]), [], meta)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_requests_split_by_traffic_and_name_their_predictor() -> None:
    a, b = Constant("a", 1), Constant("b", 2)
    deployment = Deployment("dep", [(a, 75), (b, 25)], rng=random.Random(5))

    async def send() -> Counter[str]:
        counts: Counter[str] = Counter()
        for _ in range(2000):
            with context.request_context() as ctx:
                result = await deployment.predict(request())
            assert result.meta["predictor"] == ctx.response_headers[PREDICTOR_HEADER]
            counts[result.meta["predictor"]] += 1
        return counts

    counts = run(send())
    assert 0.71 <= counts["a"] / 2000 <= 0.79


def test_sticky_requests_stay_on_one_predictor() -> None:
    deployment = Deployment("dep", [(Constant("a", 1), 50), (Constant("b", 2), 50)], sticky=Sticky(header="x-user"))

    async def predictor_of(user: str) -> str:
        with context.request_context([(b"x-user", user.encode())]):
            return str((await deployment.predict(request())).meta["predictor"])

    for user in ("ada", "grace", "alan"):
        assert len({run(predictor_of(user)) for _ in range(10)}) == 1


def test_a_shadow_sees_every_request_and_its_answer_is_not_returned() -> None:
    main, shadow = Constant("main", 1), Constant("shadow", 9)
    deployment = Deployment("dep", [(main, 100)], shadow)

    async def send() -> list[Payload]:
        results = [await deployment.predict(request()) for _ in range(20)]
        await asyncio.gather(*deployment._shadow_tasks)
        return results

    results = run(send())
    assert [r.data[0][0] for r in results] == [1] * 20
    assert len(shadow.seen) == 20
    assert deployment.shadow_stats.sent == 20 and deployment.shadow_stats.differed == 20


def test_the_shadow_gets_its_own_copy_of_the_request() -> None:
    main, shadow = Constant("main", 1), Constant("shadow", 1)
    deployment = Deployment("dep", [(main, 100)], shadow)
    shadow.wait = True

    async def send() -> None:
        await deployment.predict(request())
        await asyncio.sleep(0)
        shadow.release.set()
        await asyncio.gather(*deployment._shadow_tasks)

    run(send())
    assert shadow.seen[0].data.tolist() == [[0.0, 0.0]]  # the shadow zeroed its own copy only
    assert main.seen[0] is not shadow.seen[0]


def test_a_failing_shadow_does_not_reach_the_caller() -> None:
    deployment = Deployment("dep", [(Constant("main", 1), 100)], Constant("shadow", 0, fail=True))

    async def send() -> Payload:
        result = await deployment.predict(request())
        await asyncio.gather(*deployment._shadow_tasks)
        return result

    assert run(send()).data.tolist() == [[1]]
    assert deployment.shadow_stats.failed == 1


def test_a_slow_shadow_never_holds_the_caller_and_excess_copies_are_dropped() -> None:
    shadow = Constant("shadow", 1)
    shadow.wait = True
    deployment = Deployment("dep", [(Constant("main", 1), 100)], shadow, max_shadow_in_flight=3)

    async def send() -> None:
        for _ in range(5):
            await deployment.predict(request())  # returns although the shadow has not answered
        assert deployment.shadow_stats.dropped == 2
        await deployment.close()

    run(send())
    assert deployment.shadow_stats.sent == 3


def test_an_agreeing_shadow_is_counted() -> None:
    deployment = Deployment("dep", [(Constant("main", 4), 100)], Constant("shadow", 4))

    async def send() -> None:
        await deployment.predict(request())
        await asyncio.gather(*deployment._shadow_tasks)

    run(send())
    assert deployment.shadow_stats.agreed == 1


def test_the_callers_error_is_the_main_predictors() -> None:
    deployment = Deployment("dep", [(Constant("main", 1, fail=True), 100)], Constant("shadow", 1))
    with pytest.raises(ModelError, match="main is broken"):
        run(deployment.predict(request()))


def test_feedback_goes_to_the_predictor_named_in_the_response() -> None:
    a, b = Constant("a", 1), Constant("b", 2)
    deployment = Deployment("dep", [(a, 50), (b, 50)])
    feedback = Feedback(request(), Payload([], [], {"predictor": "b"}), None, 1.0, {})
    result = run(deployment.send_feedback(feedback))
    assert b.feedback == [feedback] and a.feedback == []
    assert result.meta["predictor"] == "b"


def test_load_and_close_reach_every_predictor_and_the_shadow() -> None:
    a, b, shadow = Constant("a", 1), Constant("b", 2), Constant("s", 3)
    deployment = Deployment("dep", [(a, 50), (b, 50)], shadow)
    run(deployment.load())
    run(deployment.close())
    assert all(c.loaded and c.closed for c in (a, b, shadow))
    assert [p.name for p in deployment.parts()] == ["a", "b", "s"]


def test_metadata_is_the_main_predictors_under_the_deployments_name() -> None:
    big = Constant("big", 2)
    big.implementation = "big-model"
    deployment = Deployment("dep", [(Constant("small", 1), 10), (big, 90)])
    assert deployment.metadata().name == "dep"
    assert deployment.metadata().platform == "big-model"
    assert big.metadata().name == "big"
