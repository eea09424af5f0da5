"""The schema names what the lower layers implement, so validation and serving agree."""

from daneel.graph.builtins import BUILTINS
from daneel.runtime.prepackaged import SERVERS
from daneel.spec import BUILTIN_TYPES, PREPACKAGED_SERVERS, NodeType


def test_every_prepackaged_server_is_known_to_the_schema_as_a_model() -> None:
    assert set(SERVERS) <= set(PREPACKAGED_SERVERS)
    assert {BUILTIN_TYPES[name] for name in SERVERS} == {NodeType.MODEL}


def test_every_built_in_router_and_combiner_is_known_to_the_schema() -> None:
    assert {name: BUILTIN_TYPES[name] for name in BUILTINS} == {
        "RANDOM_ABTEST": NodeType.ROUTER,
        "EPSILON_GREEDY": NodeType.ROUTER,
        "THOMPSON_SAMPLING": NodeType.ROUTER,
        "AVERAGE_COMBINER": NodeType.COMBINER,
    }
