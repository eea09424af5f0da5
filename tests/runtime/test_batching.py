import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from daneel.errors import InvalidInput, LoadError, NotReady
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback
from daneel.runtime import batching, loader
from daneel.runtime.batching import Batched, wrap
from daneel.runtime.component import Component, Kind, Metadata
from daneel.runtime.python import PythonComponent
from daneel.spec.model import Batching


class Doubler(Component):
    """A row-wise model that records the rows of every call; a negative value is bad input."""

    name = "doubler"
    implementation = "test"

    def __init__(self, answer: Callable[[Any], Any] | None = None) -> None:
        self.calls: list[int] = []
        self.answer = answer or (lambda X: X * 2)
        self.gate: asyncio.Event | None = None  # set: each call waits for it, as a busy model would

    async def predict(self, payload: Payload) -> Payload:
        data = payload.data
        self.calls.append(len(next(iter(data.values()))) if isinstance(data, dict) else len(data))
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(data, np.ndarray) and (data < 0).any():
            raise InvalidInput("input", "negative values")
        return Payload(self.answer(data), ["x", "y"], {**payload.meta, "tags": {"by": "doubler"}}, output_name="out")

    async def route(self, payload: Payload) -> int:
        return 7

    async def aggregate(self, payloads: list[Payload]) -> Payload:
        return Payload(len(payloads))

    async def send_feedback(self, feedback: Feedback) -> Payload:
        return Payload("thanks")

    async def call_raw(self, method: str, message: Any) -> Any:
        return {"raw": method, "message": message}

    async def health(self) -> Any:
        return "fine"

    def metadata(self) -> Metadata:
        return Metadata("doubler", "test", ["3"])


def batched(model: Component, max_batch_size: int = 4, max_latency_ms: float = 0.0) -> Batched:
    component = Batched(model, Batching(max_batch_size=max_batch_size, max_latency_ms=max_latency_ms))
    asyncio.run(component.load())
    return component


def rows(*values: float, width: int = 2) -> Payload:
    return Payload(np.array([[v] * width for v in values]), [], {})


def concurrently(*calls: Coroutine[Any, Any, Payload]) -> list[Any]:
    async def run() -> list[Any]:
        return list(await asyncio.gather(*calls, return_exceptions=True))

    return asyncio.run(run())


def test_an_idle_model_is_called_at_once_for_each_request() -> None:
    model = Doubler()
    component = batched(model)

    async def one_after_another() -> list[Payload]:
        return [await component.predict(rows(i)) for i in range(5)]

    results = asyncio.run(one_after_another())
    assert model.calls == [1, 1, 1, 1, 1]
    assert component.stats.calls == 5 and dict(component.stats.sizes) == {1: 5}
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result.data, [[2 * i, 2 * i]])


def test_an_idle_request_waits_for_one_turn_of_the_loop_and_no_timer() -> None:
    model = Doubler()
    component = batched(model)

    async def turns_until_answered() -> int:
        task = asyncio.create_task(component.predict(rows(1.0)))
        turns = 0
        while not task.done():
            await asyncio.sleep(0)
            turns += 1
        return turns

    assert asyncio.run(turns_until_answered()) == 2  # the task's first step, then the turn it gives others
    assert model.calls == [1]


def test_concurrent_requests_merge_up_to_the_maximum_and_each_gets_its_own_rows() -> None:
    model = Doubler()
    component = batched(model, max_batch_size=4)
    requests = [rows(*range(10 * i, 10 * i + i % 3 + 1)) for i in range(10)]
    results = concurrently(*(component.predict(request) for request in requests))
    assert model.calls == [sum(len(r.data) for r in requests[a:b]) for a, b in ((0, 4), (4, 8), (8, 10))]
    assert dict(component.stats.sizes) == {4: 2, 2: 1} and component.stats.requests == 10
    for request, result in zip(requests, results, strict=True):
        np.testing.assert_array_equal(result.data, request.data * 2)
        assert result.data.shape == request.data.shape
        assert (result.names, result.output_name, result.meta) == (["x", "y"], "out", {"tags": {"by": "doubler"}})


@pytest.mark.parametrize(
    ("answer", "part"),
    [
        (
            lambda X: {"double": X * 2, "first": X[:, 0].tolist()},
            lambda X: {"double": X * 2, "first": X[:, 0].tolist()},
        ),
        (lambda X: pd.DataFrame({"sum": X.sum(axis=1)}), lambda X: pd.DataFrame({"sum": X.sum(axis=1)})),
        (lambda X: [float(row.sum()) for row in X], lambda X: [float(row.sum()) for row in X]),
    ],
    ids=["dict", "dataframe", "list"],
)
def test_dict_dataframe_and_list_results_are_split_by_rows(
    answer: Callable[[Any], Any], part: Callable[[Any], Any]
) -> None:
    model = Doubler(answer)
    component = batched(model)
    requests = [rows(1.0), rows(2.0, 3.0), rows(4.0)]
    results = concurrently(*(component.predict(request) for request in requests))
    assert model.calls == [4]
    for request, result in zip(requests, results, strict=True):
        expected = part(request.data)
        if isinstance(expected, pd.DataFrame):
            pd.testing.assert_frame_equal(result.data, expected)
        elif isinstance(expected, dict):
            assert result.data.keys() == expected.keys()
            np.testing.assert_array_equal(result.data["double"], expected["double"])
            assert result.data["first"] == expected["first"]
        else:
            assert result.data == expected


def test_dataframe_and_dict_requests_merge_by_columns() -> None:
    model = Doubler(lambda data: data)
    component = batched(model)
    frames = [Payload(pd.DataFrame({"a": [i, i + 1], "b": ["x", "y"]}), ["a", "b"], {}, "v2") for i in range(3)]
    dicts = [Payload({"a": np.array([i]), "b": np.array([[i, i]])}, ["a", "b"], {}, "v2") for i in range(2)]
    results = concurrently(*(component.predict(p) for p in [*frames, *dicts]))
    assert model.calls == [6, 2]
    for request, result in zip(frames, results[:3], strict=True):
        pd.testing.assert_frame_equal(result.data, request.data)
    for request, result in zip(dicts, results[3:], strict=True):
        np.testing.assert_array_equal(result.data["b"], request.data["b"])


def test_a_bad_request_fails_alone_and_batching_goes_on() -> None:
    model = Doubler()
    component = batched(model)
    results = concurrently(*(component.predict(rows(value)) for value in (1.0, -1.0, 3.0)))
    assert model.calls == [3, 1, 1, 1]
    assert isinstance(results[1], InvalidInput) and "negative" in results[1].message
    np.testing.assert_array_equal(results[0].data, [[2.0, 2.0]])
    np.testing.assert_array_equal(results[2].data, [[6.0, 6.0]])
    assert component.stats.retried == 1
    concurrently(component.predict(rows(1.0)), component.predict(rows(2.0)))
    assert model.calls[-1] == 2


def test_a_model_that_fails_on_every_batch_is_called_alone_from_then_on(caplog: pytest.LogCaptureFixture) -> None:
    def one_row_only(X: Any) -> Any:
        if len(X) > 1:
            raise ValueError("this graph has a fixed batch size of 1")
        return X * 2

    model = Doubler(one_row_only)
    component = batched(model)
    with caplog.at_level(logging.WARNING, "daneel.batching"):
        answers = [concurrently(component.predict(rows(v)), component.predict(rows(v + 1))) for v in (1.0, 3.0, 5.0)]
        after = concurrently(component.predict(rows(7.0)), component.predict(rows(8.0)))
    assert model.calls == [2, 1, 1] * 3 + [1, 1]
    assert [r.data[0, 0] for pair in (*answers, after) for r in pair] == [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0]
    assert [r.message for r in caplog.records] == [
        "model doubler: batching is off from now on: 3 batches in a row failed while their requests succeeded alone"
    ]


def test_one_failed_batch_leaves_batching_on() -> None:
    flaky = [True]

    def fails_once(X: Any) -> Any:
        if len(X) > 1 and flaky.pop() if flaky else False:
            raise ValueError("a passing hiccup")
        return X * 2

    model = Doubler(fails_once)
    component = batched(model)
    concurrently(component.predict(rows(1.0)), component.predict(rows(2.0)))
    concurrently(component.predict(rows(3.0)), component.predict(rows(4.0)))
    assert model.calls == [2, 1, 1, 2]
    assert component.batcher is not None and component.batcher.enabled


def test_a_model_that_is_not_row_wise_falls_back_to_one_call_per_request(caplog: pytest.LogCaptureFixture) -> None:
    model = Doubler(lambda X: X.sum(axis=0, keepdims=True))  # one row, whatever it is given
    component = batched(model)
    with caplog.at_level(logging.WARNING, "daneel.batching"):
        first = concurrently(component.predict(rows(1.0, 2.0)), component.predict(rows(5.0)))
        second = concurrently(component.predict(rows(1.0)), component.predict(rows(2.0)))
    assert model.calls == [3, 2, 1, 1, 1]
    np.testing.assert_array_equal(first[0].data, [[3.0, 3.0]])
    np.testing.assert_array_equal(first[1].data, [[5.0, 5.0]])
    np.testing.assert_array_equal(second[1].data, [[2.0, 2.0]])
    assert len(caplog.records) == 1 and "does not have one row per input row" in caplog.records[0].message


@pytest.mark.parametrize(
    "payloads",
    [
        [rows(1.0, width=4), rows(2.0, width=3), rows(3.0, width=4), rows(4.0, width=3)],
        [rows(1.0), Payload(np.array([[2, 2]])), rows(3.0), Payload(np.array([[4, 4]]))],
        [
            rows(1.0),
            Payload(np.array([[2.0, 2.0]]), [], {}, "tensor"),
            rows(3.0),
            Payload(np.array([[4.0, 4.0]]), [], {}, "tensor"),
        ],
        [
            rows(1.0),
            Payload(np.array([[2.0, 2.0]]), ["p", "q"]),
            rows(3.0),
            Payload(np.array([[4.0, 4.0]]), ["p", "q"]),
        ],
        [
            rows(1.0),
            Payload(np.array([[2.0, 2.0]]), [], {"tags": {"a": 1}}),
            rows(3.0),
            Payload(np.array([[4.0, 4.0]]), [], {"tags": {"a": 1}}),
        ],
    ],
    ids=["widths", "dtypes", "forms", "names", "meta"],
)
def test_requests_merge_only_with_their_like_and_keep_their_order(payloads: list[Payload]) -> None:
    model = Doubler()
    component = batched(model)
    results = concurrently(*(component.predict(p) for p in payloads))
    assert model.calls == [2, 2]
    for request, result in zip(payloads, results, strict=True):
        np.testing.assert_array_equal(result.data, request.data * 2)


@pytest.mark.parametrize(
    "data",
    [np.array([1.0, 2.0]), np.array(3.0), np.zeros((0, 2)), "text", b"bytes", {"a": 1}, [[1.0, 2.0]]],
    ids=["1-D", "scalar", "no rows", "str", "bytes", "json", "list"],
)
def test_payloads_that_cannot_merge_are_called_as_they_are(data: Any) -> None:
    seen: list[Any] = []

    class Echo(Component):
        async def predict(self, payload: Payload) -> Payload:
            seen.append(payload.data)
            return payload

    component = batched(Echo())
    results = concurrently(component.predict(Payload(data)), component.predict(Payload(data)))
    assert len(seen) == 2 and all(result.data is data for result in results)


def test_puid_stays_each_requests_own() -> None:
    model = Doubler()
    component = batched(model)
    requests = [Payload(np.array([[1.0, 1.0]]), [], {"puid": p}) for p in ("a", "b")] + [rows(3.0)]
    results = concurrently(*(component.predict(request) for request in requests))
    assert model.calls == [2, 1]  # a request without a puid has other meta
    assert [r.meta for r in results] == [
        {"puid": "a", "tags": {"by": "doubler"}},
        {"puid": "b", "tags": {"by": "doubler"}},
        {"tags": {"by": "doubler"}},
    ]


def test_requests_that_queue_while_the_model_is_busy_go_next_as_one_batch() -> None:
    model = Doubler()
    component = batched(model, max_batch_size=8)

    async def scenario() -> list[Payload]:
        model.gate = asyncio.Event()
        first = asyncio.create_task(component.predict(rows(1.0)))
        while not model.calls:
            await asyncio.sleep(0)
        later = [asyncio.create_task(component.predict(rows(v))) for v in (2.0, 3.0, 4.0)]
        await asyncio.sleep(0)
        model.gate.set()
        return [await first, *[await task for task in later]]

    results = asyncio.run(scenario())
    assert model.calls == [1, 3]
    assert [r.data[0, 0] for r in results] == [2.0, 4.0, 6.0, 8.0]


def test_max_latency_waits_for_a_full_batch() -> None:
    model = Doubler()
    component = batched(model, max_batch_size=2, max_latency_ms=60_000)

    async def scenario() -> list[Payload]:
        first = asyncio.create_task(component.predict(rows(1.0)))
        for _ in range(5):
            await asyncio.sleep(0)
        assert model.calls == []  # still waiting for a second request
        second = await component.predict(rows(2.0))
        return [await first, second]

    results = asyncio.run(scenario())
    assert model.calls == [2]
    assert [r.data[0, 0] for r in results] == [2.0, 4.0]


def test_max_latency_sends_what_it_has_when_the_wait_is_over() -> None:
    model = Doubler()
    component = batched(model, max_batch_size=8, max_latency_ms=1)
    result = asyncio.run(component.predict(rows(1.0)))
    assert model.calls == [1] and result.data[0, 0] == 2.0


def test_cancelled_requests_leave_the_others_answered() -> None:
    model = Doubler()
    component = batched(model, max_batch_size=8)

    async def scenario() -> tuple[list[Any], list[int]]:
        model.gate = asyncio.Event()
        tasks = [asyncio.create_task(component.predict(rows(v))) for v in (1.0, 2.0, 3.0)]
        while not model.calls:
            await asyncio.sleep(0)
        tasks[0].cancel()  # the request whose task runs the batch
        queued = asyncio.create_task(component.predict(rows(4.0)))
        await asyncio.sleep(0)
        queued.cancel()
        model.gate.set()
        results = await asyncio.gather(*tasks, queued, return_exceptions=True)
        return results, list(model.calls)

    results, calls = asyncio.run(scenario())
    assert calls == [3, 2]
    assert isinstance(results[0], asyncio.CancelledError) and isinstance(results[3], asyncio.CancelledError)
    assert [r.data[0, 0] for r in results[1:3]] == [4.0, 6.0]


def test_close_fails_the_requests_still_waiting() -> None:
    model = Doubler()
    component = batched(model, max_batch_size=2)

    async def scenario() -> list[Any]:
        model.gate = asyncio.Event()
        tasks = [asyncio.create_task(component.predict(rows(v))) for v in (1.0, 2.0, 3.0, 4.0)]
        while not model.calls:
            await asyncio.sleep(0)
        model.gate.set()  # the first batch is answered; the second waits on a new gate and is cut short
        model.gate = asyncio.Event()
        while len(model.calls) < 2:
            await asyncio.sleep(0)
        await component.close()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(scenario())
    assert [r.data[0, 0] for r in results[:2]] == [2.0, 4.0]
    assert all(isinstance(r, NotReady) for r in results[2:])


def test_the_wrapper_passes_everything_else_through() -> None:
    model = Doubler()
    component = batched(model)
    assert (component.name, component.kind, component.implementation) == ("doubler", Kind.MODEL, "test")
    assert component.metadata().versions == ["3"] and component.parts() == []
    assert component.main_method() == "predict"
    payload = rows(1.0)

    async def calls() -> list[Any]:
        return [
            await component.transform_input(payload),
            await component.transform_output(payload),
            await component.route(payload),
            await component.aggregate([payload, payload]),
            await component.send_feedback(Feedback(None, None, None, 1.0, {})),
            await component.call_raw("predict", {"x": 1}),
            await component.health(),
        ]

    results = asyncio.run(calls())
    assert results[0] is payload and results[1] is payload
    assert results[2:4] == [7, Payload(2)]
    assert results[4].data == "thanks"
    assert results[5:] == [{"raw": "predict", "message": {"x": 1}}, "fine"]
    assert model.calls == []


# Which components are batched


def test_max_batch_size_one_leaves_the_component_as_it_is() -> None:
    model = Doubler()
    assert wrap(model, Batching(max_batch_size=1), row_wise=True) is model
    assert wrap(model, None, row_wise=False) is model
    assert isinstance(wrap(model, None, row_wise=True), Batched)


def test_prepackaged_servers_batch_by_default(iris: Any) -> None:
    component = loader.build(loader.resolve(str(iris.path)))
    assert isinstance(component, Batched) and component.settings == Batching()
    requests = [Payload(iris.X[i : i + 1]) for i in range(len(iris.X))]
    asyncio.run(component.load())
    results = concurrently(*(component.predict(request) for request in requests))
    assert component.stats.requests == len(requests) and component.stats.calls < len(requests)
    for request, result in zip(requests, results, strict=True):
        np.testing.assert_allclose(result.data, iris.model.predict_proba(request.data), rtol=1e-12)
        assert result.output_name == "predict_proba"


def test_daneel_yaml_sets_or_turns_off_batching(iris: Any, tmp_path: Path) -> None:
    folder = tmp_path / "iris"
    folder.mkdir()
    (folder / "model.joblib").write_bytes((iris.path / "model.joblib").read_bytes())
    (folder / "daneel.yaml").write_text("batching: {max_batch_size: 4, max_latency_ms: 2.5}\n")
    component = loader.build(loader.resolve(str(folder)))
    assert isinstance(component, Batched) and component.settings == Batching(max_batch_size=4, max_latency_ms=2.5)
    (folder / "daneel.yaml").write_text("batching: {max_batch_size: 1}\n")
    assert not isinstance(loader.build(loader.resolve(str(folder))), Batched)
    (folder / "daneel.yaml").write_text("batching: {max_batch_size: 0}\n")
    with pytest.raises(LoadError, match=r"batching\.max_batch_size"):
        loader.resolve(str(folder))


BATCHABLE = """
import numpy as np

class Model:
    {declaration}

    def __init__(self):
        self.calls = []

    def predict(self, X, names):
        self.calls.append(len(X))
        return np.asarray(X) + 1
"""


@pytest.mark.parametrize(
    ("declaration", "expected"),
    [
        ("batchable = True\n    max_batch_size = 2", [2, 2, 1]),
        ("batchable = True", [5]),
        ("pass", [1, 1, 1, 1, 1]),
        ("batchable = 'yes'", [1, 1, 1, 1, 1]),
    ],
    ids=["batchable with a size", "batchable", "not declared", "only True counts"],
)
def test_a_python_class_batches_when_it_declares_itself_batchable(
    user_module: Callable[[str], tuple[Path, str]], declaration: str, expected: list[int]
) -> None:
    folder, module = user_module(BATCHABLE.format(declaration=declaration))
    component = loader.build(loader.ComponentSpec("m", f"{module}.Model", folder))
    assert isinstance(component, Batched)

    async def scenario() -> list[Payload]:
        await component.load()
        return await asyncio.gather(*(component.predict(rows(float(v))) for v in range(5)))

    results = asyncio.run(scenario())
    inner = component.inner
    assert isinstance(inner, PythonComponent) and inner.obj.calls == expected
    assert [r.data[0, 0] for r in results] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_a_bad_batch_size_on_a_class_is_a_load_error(user_module: Callable[[str], tuple[Path, str]]) -> None:
    folder, module = user_module(BATCHABLE.format(declaration="batchable = True\n    max_batch_size = 0"))
    component = loader.build(loader.ComponentSpec("m", f"{module}.Model", folder))
    with pytest.raises(LoadError, match="m: class attribute max_batch_size"):
        asyncio.run(component.load())


def test_a_batchable_transformer_batches_transform_input(user_module: Callable[[str], tuple[Path, str]]) -> None:
    folder, module = user_module(
        "class Scale:\n    batchable = True\n    calls = []\n\n"
        "    def transform_input(self, X, names):\n        self.calls.append(len(X))\n        return X * 10\n"
    )
    component = loader.build(loader.ComponentSpec("t", f"{module}.Scale", folder))

    async def scenario() -> list[Payload]:
        await component.load()
        return await asyncio.gather(*(component.transform_input(rows(float(v))) for v in range(3)))

    results = asyncio.run(scenario())
    assert component.kind is Kind.TRANSFORMER and isinstance(component, Batched)
    assert isinstance(component.inner, PythonComponent) and component.inner.obj.calls == [3]
    assert [r.data[0, 0] for r in results] == [0.0, 10.0, 20.0]


def test_under_light_load_leaders_stop_waiting_a_loop_turn_but_probe_for_company() -> None:
    model = Doubler()
    component = batched(model, max_batch_size=64)
    for value in range(batching.ALONE_BEFORE_SKIPPING + 1):
        concurrently(component.predict(rows(float(value))))
    model.calls.clear()
    burst = 2 * batching.PROBE_EVERY  # requests due together, as when load rises
    concurrently(*(component.predict(rows(float(value))) for value in range(burst)))
    lone, merged = model.calls[:-1], model.calls[-1]
    assert set(lone) <= {1} and len(lone) < batching.PROBE_EVERY  # until the probe, each goes alone
    assert merged == burst - len(lone) > 1  # the probe waits its turn and the rest join it
    model.calls.clear()
    concurrently(component.predict(rows(1.0)), component.predict(rows(2.0)))
    assert model.calls == [2]  # having found company, leaders wait their turn again
