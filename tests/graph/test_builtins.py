import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from daneel.errors import InvalidInput, LoadError, ModelError
from daneel.graph import builtins
from daneel.graph.executor import Graph
from daneel.graph.state import Branch, SqliteStore
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback

from .helpers import Add, node, request, run

ROUTER_KEY = "deployment/predictor/router"


def router(implementation: str, store: SqliteStore | None = None, seed: int = 7, **parameters: Any) -> Graph:
    """A graph of a built-in router named "router" over two models, "a" (adds 1) and "b" (adds 2)."""
    settings = builtins.Settings("router", parameters, 2, store, ROUTER_KEY, random.Random(seed))
    component = builtins.build(implementation, settings)
    return Graph("p", node(component, node(Add("a", 1)), node(Add("b", 2))))


def choices(graph: Graph, count: int, reward: Callable[[int], float] | None = None) -> list[int]:
    """Route `count` requests; with `reward`, send feedback for each one as a client would."""

    async def walk() -> list[int]:
        picked = []
        for _ in range(count):
            response = await graph.predict(request())
            branch = response.meta["routing"]["router"]
            picked.append(branch)
            if reward is not None:
                routing = response.meta["routing"]
                await graph.send_feedback(Feedback(request(), response, None, reward(branch), routing))
        return picked

    return run(walk())


def first_pays(branch: int) -> float:
    return 1.0 if branch == 0 else 0.0


# RANDOM_ABTEST


def test_random_abtest_splits_by_ratio_a() -> None:
    picked = choices(router("RANDOM_ABTEST", ratioA=0.3), 2000)
    assert set(picked) == {0, 1}
    assert 0.25 < picked.count(0) / len(picked) < 0.35


def test_random_abtest_with_one_seed_repeats_its_choices() -> None:
    assert choices(router("RANDOM_ABTEST", seed=3, ratioA=0.5), 50) == choices(
        router("RANDOM_ABTEST", seed=3, ratioA=0.5), 50
    )


def test_random_abtest_ratio_one_always_picks_a() -> None:
    assert set(choices(router("RANDOM_ABTEST", ratioA=1.0), 100)) == {0}


@pytest.mark.parametrize(
    ("parameters", "children", "message"),
    [
        ({}, 2, "router: parameter ratioA is missing; expected a number from 0 to 1"),
        ({"ratioA": 1.5}, 2, "router: parameter ratioA: expected a number from 0 to 1, got 1.5"),
        ({"ratioA": "half"}, 2, "router: parameter ratioA: expected a number, got 'half'"),
        ({"ratioA": 0.5}, 3, "router: RANDOM_ABTEST needs exactly 2 children, it has 3"),
        ({"ratioA": 0.5, "ratioB": 0.5}, 2, "router: unknown parameter(s) ratioB for RANDOM_ABTEST; expected ratioA"),
    ],
)
def test_random_abtest_checks_its_settings(parameters: dict[str, Any], children: int, message: str) -> None:
    with pytest.raises(LoadError) as caught:
        builtins.build("RANDOM_ABTEST", builtins.Settings("router", parameters, children))
    assert caught.value.message == message


# AVERAGE_COMBINER


def average(*outputs: Any) -> Payload:
    combiner = builtins.build("AVERAGE_COMBINER", builtins.Settings("avg"))
    return run(combiner.aggregate([Payload(np.asarray(o), ["x", "y"], {}) for o in outputs]))


def test_average_combiner_takes_the_element_wise_mean() -> None:
    result = average([[1, 2], [0, 0]], [[3, 4], [1, 1]], [[5, 9], [2, 5]])
    np.testing.assert_array_equal(result.data, [[3.0, 5.0], [1.0, 2.0]])
    assert result.names == ["x", "y"]


def test_average_combiner_in_a_graph_averages_its_children() -> None:
    combiner = builtins.build("AVERAGE_COMBINER", builtins.Settings("avg"))
    graph = Graph("p", node(combiner, node(Add("a", 1)), node(Add("b", 3))))
    result = run(graph.predict(request()))
    np.testing.assert_array_equal(result.data, [[3.0, 4.0]])
    assert result.meta["requestPath"] == {"avg": "AVERAGE_COMBINER", "a": "Add(1)", "b": "Add(3)"}


def test_average_combiner_names_itself_and_the_shapes_that_differ() -> None:
    with pytest.raises(ModelError, match=r"^avg: cannot average outputs of different shapes \(1, 2\), \(1, 3\)$"):
        average([[1, 2]], [[1, 2, 3]])


def test_average_combiner_needs_numbers() -> None:
    with pytest.raises(ModelError, match=r"^avg: child output 1 is not numeric \(an array of <U1\)$"):
        average([[1, 2]], [["a", "b"]])


# Bandits


@pytest.mark.parametrize(
    ("implementation", "parameters"),
    [("EPSILON_GREEDY", {"epsilon": 0.1, "best_branch": 1}), ("THOMPSON_SAMPLING", {})],
)
def test_bandit_learns_the_branch_that_pays(
    sqlite_stores: Callable[[], SqliteStore], implementation: str, parameters: dict[str, Any]
) -> None:
    # Two routers on one state file stand for two worker processes of one deployment.
    workers = [router(implementation, sqlite_stores(), seed, n_branches=2, **parameters) for seed in (1, 2)]
    for _ in range(40):
        for worker in workers:
            choices(worker, 5, reward=first_pays)
    later = [branch for worker in workers for branch in choices(worker, 100)]
    assert later.count(0) / len(later) >= 0.85


def test_epsilon_greedy_state_survives_a_restart(sqlite_stores: Callable[[], SqliteStore]) -> None:
    before = router("EPSILON_GREEDY", sqlite_stores(), epsilon=0.0, best_branch=1)
    assert set(choices(before, 5)) == {1}
    run(sqlite_stores().add(ROUTER_KEY, 0, 10, 9))
    # Exploiting only: the store's numbers, not the process's memory, decide.
    assert set(choices(before, 5)) == {0}
    assert set(choices(router("EPSILON_GREEDY", sqlite_stores(), epsilon=0.0, best_branch=1), 5)) == {0}


def test_epsilon_greedy_explores_with_probability_epsilon(sqlite_stores: Callable[[], SqliteStore]) -> None:
    picked = choices(router("EPSILON_GREEDY", sqlite_stores(), epsilon=0.2), 1000)
    assert 0.15 < picked.count(1) / len(picked) < 0.25


def test_feedback_counts_every_row_of_the_request(sqlite_stores: Callable[[], SqliteStore]) -> None:
    store = sqlite_stores()
    graph = router("THOMPSON_SAMPLING", store)
    rows = request(np.ones((4, 2)))
    run(graph.send_feedback(Feedback(rows, None, None, 0.25, {"router": 1})))
    assert run(store.stats(ROUTER_KEY, 2)) == [Branch(), Branch(4, 1)]


def test_feedback_for_a_request_the_router_did_not_route_is_ignored(sqlite_stores: Callable[[], SqliteStore]) -> None:
    store = sqlite_stores()
    run(router("EPSILON_GREEDY", store).send_feedback(Feedback(request(), None, None, 1.0, {})))
    assert run(store.stats(ROUTER_KEY, 2)) == [Branch(), Branch()]


@pytest.mark.parametrize("reward", [-0.5, 1.5])
def test_a_bandit_reward_must_be_between_zero_and_one(sqlite_stores: Callable[[], SqliteStore], reward: float) -> None:
    graph = router("EPSILON_GREEDY", sqlite_stores())
    with pytest.raises(InvalidInput, match=r"^router: reward: expected a number from 0 to 1 for EPSILON_GREEDY"):
        run(graph.send_feedback(Feedback(request(), None, None, reward, {"router": 0})))


def test_a_bandit_needs_a_state_store() -> None:
    with pytest.raises(LoadError, match=r"^router: THOMPSON_SAMPLING learns from feedback and needs a state store$"):
        builtins.build("THOMPSON_SAMPLING", builtins.Settings("router", {}, 2))


def test_n_branches_must_match_the_children(sqlite_stores: Callable[[], SqliteStore]) -> None:
    settings = builtins.Settings("router", {"n_branches": 3}, 2, sqlite_stores())
    with pytest.raises(
        LoadError, match=r"^router: n_branches is 3 but the router has 2 children; expected them equal$"
    ):
        builtins.build("EPSILON_GREEDY", settings)


def test_best_branch_must_be_a_branch(sqlite_stores: Callable[[], SqliteStore]) -> None:
    settings = builtins.Settings("router", {"best_branch": 2}, 2, sqlite_stores())
    with pytest.raises(LoadError, match=r"^router: parameter best_branch: expected a number from 0 to 1, got 2$"):
        builtins.build("EPSILON_GREEDY", settings)


def test_builtins_are_routers_and_combiners() -> None:
    assert {name: cls.kind.value for name, cls in builtins.BUILTINS.items()} == {
        "RANDOM_ABTEST": "ROUTER",
        "AVERAGE_COMBINER": "COMBINER",
        "EPSILON_GREEDY": "ROUTER",
        "THOMPSON_SAMPLING": "ROUTER",
    }
