import asyncio
from typing import Any

import numpy as np
import pytest

from daneel.errors import ErrorCode, InvalidInput, LoadError, ModelError, ModelTimeout, NotImplementedByModel
from daneel.graph.executor import Graph, calls_for
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback
from daneel.runtime.component import Component, Kind

from .helpers import Add, Fixed, Sum, node, request, run


def predict(graph: Graph, payload: Payload | None = None) -> Payload:
    return run(graph.predict(payload or request()))


def test_transformer_then_model_then_output_transformer() -> None:
    steps = [Add("scale", 10, Kind.TRANSFORMER), Add("model", 1), Add("format", 100, Kind.OUTPUT_TRANSFORMER)]
    # Seldon chains single children: the output transformer is the parent, run last on the way out.
    graph = Graph("p", node(steps[2], node(steps[0], node(steps[1]))))
    result = predict(graph)
    np.testing.assert_array_equal(result.data, [[112.0, 113.0]])
    assert [s.calls for s in steps] == [["transform_input"], ["predict"], ["transform_output"]]
    assert list(result.meta["requestPath"]) == ["format", "scale", "model"]
    assert result.meta["requestPath"]["model"] == "Add(1)"


def test_router_sends_to_the_child_it_picks() -> None:
    a, b = Add("a", 1), Add("b", 2)
    graph = Graph("p", node(Fixed("router", 1), node(a), node(b)))
    result = predict(graph)
    np.testing.assert_array_equal(result.data, [[3.0, 4.0]])
    assert a.calls == [] and b.calls == ["predict"]
    assert result.meta["routing"] == {"router": 1}
    assert result.meta["requestPath"] == {"router": "Add(0)", "b": "Add(2)"}


def test_router_minus_one_sends_to_all_children_and_the_first_answer_passes() -> None:
    a, b = Add("a", 1), Add("b", 2)
    result = predict(Graph("p", node(Fixed("router", -1), node(a), node(b))))
    np.testing.assert_array_equal(result.data, [[2.0, 3.0]])
    assert a.calls == b.calls == ["predict"]
    assert result.meta["routing"] == {"router": -1}


def test_router_minus_two_skips_the_children() -> None:
    a = Add("a", 1)
    result = predict(Graph("p", node(Fixed("router", -2), node(a))))
    np.testing.assert_array_equal(result.data, [[1.0, 2.0]])
    assert a.calls == []
    assert result.meta["routing"] == {"router": -2}
    assert "a" not in result.meta["requestPath"]


@pytest.mark.parametrize("choice", [2, -3])
def test_a_route_out_of_range_is_the_routers_error(choice: int) -> None:
    graph = Graph("p", node(Fixed("router", choice), node(Add("a")), node(Add("b"))))
    with pytest.raises(ModelError, match=rf"^router: route returned {choice}; expected a child index from 0 to 1"):
        predict(graph)


def test_combiner_aggregates_children_that_run_concurrently() -> None:
    class Meet(Add):
        """Finishes only once its partner has started: run one after the other, the two would wait forever."""

        def __init__(self, name: str, mine: asyncio.Event, theirs: asyncio.Event) -> None:
            super().__init__(name, 1)
            self.mine, self.theirs = mine, theirs

        async def predict(self, payload: Payload) -> Payload:
            self.mine.set()
            await self.theirs.wait()
            return await super().predict(payload)

    async def walk() -> Payload:
        first, second = asyncio.Event(), asyncio.Event()
        graph = Graph("p", node(Sum("sum"), node(Meet("a", first, second)), node(Meet("b", second, first))))
        return await asyncio.wait_for(graph.predict(request()), 30)

    result = run(walk())
    np.testing.assert_array_equal(result.data, [[4.0, 6.0]])
    assert list(result.meta["requestPath"]) == ["sum", "a", "b"]


def test_tags_of_every_node_are_merged_and_later_nodes_win() -> None:
    first = Add("first", tags={"who": "first", "first": 1})
    second = Add("second", tags={"who": "second"})
    result = predict(Graph("p", node(first, node(second))), request(meta={"puid": "p1", "tags": {"client": "x"}}))
    assert result.meta["tags"] == {"client": "x", "who": "second", "first": 1}
    assert result.meta["puid"] == "p1"


def test_tags_of_concurrent_children_merge_in_child_order() -> None:
    graph = Graph("p", node(Sum("sum"), node(Add("a", tags={"t": "a"})), node(Add("b", tags={"t": "b"}))))
    assert predict(graph).meta["tags"] == {"t": "b"}


def test_metrics_of_every_node_are_reported_once() -> None:
    class Counted(Add):
        def _add(self, method: str, payload: Payload) -> Payload:
            result = super()._add(method, payload)
            result.meta["metrics"] = [{"type": "COUNTER", "key": self.name, "value": 1}]
            return result

    result = predict(Graph("p", node(Counted("a"), node(Counted("b")))))
    assert [m["key"] for m in result.meta["metrics"]] == ["a", "b"]


def test_the_request_form_is_kept() -> None:
    result = predict(Graph("p", node(Add("a"))), Payload(np.array([1.0]), [], {}, "tensor"))
    assert result.form == "tensor"


def test_a_node_slower_than_its_timeout_is_a_model_timeout_naming_it() -> None:
    class Stuck(Add):
        async def predict(self, payload: Payload) -> Payload:
            await asyncio.Event().wait()
            raise AssertionError("never set")

    graph = Graph("p", node(Add("first"), node(Stuck("stuck"), timeout_s=0.01)))
    with pytest.raises(ModelTimeout, match=r"^stuck: predict took longer than 0.01 s"):
        predict(graph)


@pytest.mark.parametrize("timeout_s", [None, 5.0])
def test_a_timeout_error_a_node_raises_itself_is_its_model_error(timeout_s: float | None) -> None:
    class Impatient(Add):
        async def predict(self, payload: Payload) -> Payload:
            raise TimeoutError("the database did not answer")

    graph = Graph("p", node(Impatient("impatient"), timeout_s=timeout_s))
    with pytest.raises(ModelError, match=r"^impatient: .*the database did not answer") as caught:
        predict(graph)
    assert not isinstance(caught.value, ModelTimeout)


def test_a_node_within_its_timeout_answers() -> None:
    graph = Graph("p", node(Add("first", 1.0), node(Add("second", 2.0), timeout_s=5.0)))
    np.testing.assert_array_equal(predict(graph).data, [[4.0, 5.0]])


def test_a_failing_node_is_named_in_the_error() -> None:
    class Broken(Add):
        async def predict(self, payload: Payload) -> Payload:
            raise ValueError("bad weights")

    with pytest.raises(ModelError, match=r"^broken: ValueError: bad weights$"):
        predict(Graph("p", node(Add("first"), node(Broken("broken")))))


def test_a_nodes_bad_input_stays_bad_input_with_the_node_named() -> None:
    class Picky(Add):
        async def predict(self, payload: Payload) -> Payload:
            raise InvalidInput("data.ndarray", "expected 4 columns")

    with pytest.raises(InvalidInput) as caught:
        predict(Graph("p", node(Add("first"), node(Picky("picky")))))
    assert caught.value.code is ErrorCode.INVALID_INPUT
    assert caught.value.message == "picky: data.ndarray: expected 4 columns"
    assert caught.value.field == "data.ndarray"


def test_an_error_that_names_its_node_is_not_named_twice() -> None:
    class Named(Add):
        async def predict(self, payload: Payload) -> Payload:
            raise ModelError("named.predict raised KeyError: 'x'")

    with pytest.raises(ModelError, match=r"^named\.predict raised KeyError"):
        predict(Graph("p", node(Named("named"))))


def test_a_failing_child_fails_the_fan_out() -> None:
    class Broken(Add):
        async def predict(self, payload: Payload) -> Payload:
            raise RuntimeError("down")

    graph = Graph("p", node(Sum("sum"), node(Add("a")), node(Broken("b"))))
    with pytest.raises(ModelError, match=r"^b: RuntimeError: down$"):
        predict(graph)


def test_methods_replace_what_the_type_implies() -> None:
    both = Add("both", 1, Kind.TRANSFORMER)
    graph = Graph("p", node(both, methods=["TRANSFORM_INPUT", "TRANSFORM_OUTPUT"]))
    np.testing.assert_array_equal(predict(graph).data, [[3.0, 4.0]])
    assert both.calls == ["transform_input", "transform_output"]


def test_calls_for_types_and_methods() -> None:
    assert calls_for(Kind.ROUTER) == {"route", "send_feedback"}
    assert calls_for(Kind.MODEL, ["TRANSFORM_OUTPUT"]) == {"predict", "transform_output"}
    assert calls_for(Kind.COMBINER, ["SEND_FEEDBACK"]) == {"send_feedback"}
    assert calls_for(None) == frozenset()


def test_a_model_without_predict_is_not_implemented_naming_it() -> None:
    class Bare(Component):
        name = "bare"

    with pytest.raises(NotImplementedByModel, match=r"^bare: component 'bare' does not implement predict$"):
        predict(Graph("p", node(Bare())))


def test_node_names_must_be_unique() -> None:
    with pytest.raises(LoadError, match="two nodes are named 'a'"):
        Graph("p", node(Add("a"), node(Add("a"))))


def test_load_loads_every_node_concurrently() -> None:
    class Meet(Add):
        def __init__(self, name: str, mine: asyncio.Event, theirs: asyncio.Event) -> None:
            super().__init__(name)
            self.mine, self.theirs = mine, theirs

        async def load(self) -> None:
            self.mine.set()
            await self.theirs.wait()

    async def load() -> list[str]:
        first, second = asyncio.Event(), asyncio.Event()
        graph = Graph("p", node(Meet("a", first, second), node(Meet("b", second, first))))
        await asyncio.wait_for(graph.load(), 30)
        return [part.name for part in graph.parts()]

    assert run(load()) == ["a", "b"]


def test_a_node_that_fails_to_load_is_named() -> None:
    class Unloadable(Add):
        async def load(self) -> None:
            raise OSError("no such file")

    with pytest.raises(LoadError, match=r"^b: OSError: no such file$"):
        run(Graph("p", node(Add("a"), node(Unloadable("b")))).load())


def test_health_reports_each_node_and_names_an_unhealthy_one() -> None:
    class Status(Add):
        async def health(self) -> Any:
            if self.name == "sick":
                raise RuntimeError("no GPU")
            return {"ok": self.name}

    assert run(Graph("p", node(Status("a"), node(Add("quiet")))).health()) == {"a": {"ok": "a"}}
    with pytest.raises(ModelError, match=r"^sick: RuntimeError: no GPU$"):
        run(Graph("p", node(Status("a"), node(Status("sick")))).health())


def test_close_closes_every_part() -> None:
    closed: list[str] = []

    class Closing(Add):
        async def close(self) -> None:
            closed.append(self.name)

    run(Graph("p", node(Closing("a"), node(Closing("b")))).close())
    assert closed == ["a", "b"]


# Feedback


def feedback(routing: dict[str, Any], reward: float = 1.0) -> Feedback:
    return Feedback(request(), request(meta={"routing": routing}), None, reward, routing)


def test_feedback_follows_the_routing_to_the_router_and_the_model_it_chose() -> None:
    router, a, b = Fixed("router", 0), Add("a"), Add("b")
    graph = Graph("p", node(router, node(a), node(b)))
    answer = run(graph.send_feedback(feedback({"router": 1}, 0.5)))
    assert answer.meta["requestPath"] == {"router": "Add(0)", "b": "Add(0)"}
    assert router.calls == ["send_feedback"] and router.feedback[0].reward == 0.5
    assert a.calls == [] and b.calls == ["send_feedback"]


def test_feedback_through_nested_routers() -> None:
    inner, leaf, other = Fixed("inner", 0), Add("leaf"), Add("other")
    outer = Fixed("outer", 0)
    graph = Graph("p", node(outer, node(inner, node(other), node(leaf)), node(Add("x"))))
    result = predict(graph)
    assert result.meta["routing"] == {"outer": 0, "inner": 0}
    run(graph.send_feedback(feedback({"outer": 0, "inner": 1})))
    assert outer.calls[-1] == inner.calls[-1] == leaf.calls[-1] == "send_feedback"
    assert other.calls == ["predict"]


def test_feedback_skips_transformers_and_a_router_that_did_not_choose() -> None:
    transformer, router, a, b = Add("t", kind=Kind.TRANSFORMER), Fixed("router", 0), Add("a"), Add("b")
    graph = Graph("p", node(transformer, node(router, node(a), node(b))))
    run(graph.send_feedback(feedback({})))
    assert transformer.calls == [] and router.calls == []
    assert a.calls == b.calls == ["send_feedback"]


def test_feedback_with_a_routing_out_of_range_is_bad_input() -> None:
    graph = Graph("p", node(Fixed("router", 0), node(Add("a")), node(Add("b"))))
    with pytest.raises(InvalidInput, match=r"^response\.meta\.routing\.router: expected a child index"):
        run(graph.send_feedback(feedback({"router": 5})))


# Users' *_raw methods


def test_raw_methods_get_the_seldon_message(python_node: Any) -> None:
    graph = Graph(
        "p",
        python_node(
            """
            class Model:
                def predict_raw(self, message):
                    values = message["data"]["ndarray"]
                    return {"data": {"ndarray": [[v * 2 for v in row] for row in values]}, "meta": {"tags": {"raw": 1}}}
            """
        ),
    )
    run(graph.load())
    result = predict(graph)
    np.testing.assert_array_equal(result.data, [[2.0, 4.0]])
    assert result.meta["tags"] == {"raw": 1}


def test_raw_route_picks_the_child(python_node: Any) -> None:
    router = python_node(
        """
        class Router:
            def route_raw(self, message):
                return {"data": {"ndarray": [[1]]}}
        """,
        node(Add("a", 1)),
        node(Add("b", 2)),
        cls="Router",
        kind=Kind.ROUTER,
    )
    graph = Graph("p", router)
    run(graph.load())
    assert predict(graph).meta["routing"] == {"m": 1}


def test_metadata_lists_every_node() -> None:
    meta = Graph("p", node(Add("a"), node(Add("b")))).metadata().v1()
    assert meta["name"] == "p"
    assert set(meta["models"]) == {"a", "b"}
