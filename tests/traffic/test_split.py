import random
from collections import Counter

import pytest

from daneel.errors import InvalidInput
from daneel.protocol.context import RequestContext
from daneel.spec.model import Sticky
from daneel.traffic.split import Split, sticky_key


def test_a_random_split_follows_the_weights() -> None:
    split = Split([75, 25], random.Random(7))
    counts = Counter(split.choose() for _ in range(4000))
    assert 0.72 < counts[0] / 4000 < 0.78


def test_a_predictor_with_no_weight_is_never_chosen() -> None:
    split = Split([0, 100, 0], random.Random(1))
    assert {split.choose() for _ in range(500)} == {1}
    assert {split.choose(f"user-{i}") for i in range(500)} == {1}


def test_a_sticky_key_always_lands_on_the_same_predictor() -> None:
    split = Split([50, 50], random.Random(3))
    for user in ("ada", "grace", "linus", "12345"):
        assert len({split.choose(user) for _ in range(20)}) == 1


def test_sticky_keys_spread_by_weight() -> None:
    split = Split([75, 25])
    counts = Counter(split.choose(f"user-{i}") for i in range(4000))
    assert 0.72 < counts[0] / 4000 < 0.78


def test_a_split_needs_a_positive_weight() -> None:
    with pytest.raises(ValueError):
        Split([0, 0])


def test_the_sticky_key_comes_from_a_header_in_any_case() -> None:
    sticky = Sticky(header="X-User-Id")
    assert sticky_key(sticky, RequestContext([(b"x-user-id", b"ada")]), {}) == "ada"
    assert sticky_key(sticky, RequestContext(), {}) is None


@pytest.mark.parametrize(
    ("path", "meta", "key"),
    [
        ("meta.tags.user", {"tags": {"user": "ada"}}, "ada"),
        ("parameters.user", {"parameters": {"user": 42}}, "42"),
        ("meta.tags.user", {"tags": {}}, None),
        ("meta.tags.user", {"tags": "oops"}, None),
    ],
)
def test_the_sticky_key_comes_from_a_request_field(path: str, meta: dict[str, object], key: str | None) -> None:
    assert sticky_key(Sticky(field=path), RequestContext(), meta) == key


def test_a_header_wins_over_a_field() -> None:
    sticky = Sticky(header="x-user", field="meta.tags.user")
    assert (
        sticky_key(sticky, RequestContext([(b"x-user", b"from-header")]), {"tags": {"user": "from-body"}})
        == "from-header"
    )
    assert sticky_key(sticky, RequestContext(), {"tags": {"user": "from-body"}}) == "from-body"


def test_a_field_that_is_not_a_value_is_named_in_the_error() -> None:
    with pytest.raises(InvalidInput, match=r"meta\.tags\.user"):
        sticky_key(Sticky(field="meta.tags.user"), RequestContext(), {"tags": {"user": {"id": 1}}})


def test_without_sticky_routing_there_is_no_key() -> None:
    assert sticky_key(None, RequestContext([(b"x-user", b"ada")]), {}) is None
