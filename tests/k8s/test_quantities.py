"""Resource quantities added up for a pod that runs several graph nodes."""

from decimal import Decimal

import pytest

from daneel.errors import InvalidInput
from daneel.k8s.quantities import parse, summed


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("1.5", Decimal("1.5")),
        (2, Decimal(2)),
        ("128Mi", Decimal(128 * 2**20)),
        ("1e3", Decimal(1000)),
        ("1G", Decimal(10**9)),
    ],
)
def test_quantities_parse(text: object, value: Decimal) -> None:
    assert parse(text, "cpu") == value


def test_a_bad_quantity_names_its_field() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse("lots", "componentSpecs.resources.requests.cpu")
    assert raised.value.field == "componentSpecs.resources.requests.cpu"


def test_containers_resources_add_up_and_a_single_value_is_kept_as_given() -> None:
    resources = [
        {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
        {"requests": {"cpu": "0.25", "memory": "384Mi", "nvidia.com/gpu": 1}},
    ]
    assert summed(resources, "x") == {
        "requests": {"cpu": "350m", "memory": "512Mi", "nvidia.com/gpu": 1},
        "limits": {"memory": "1Gi"},
    }
    assert summed([{"requests": {"cpu": "1"}}, {"requests": {"cpu": "1"}}], "x") == {"requests": {"cpu": "2"}}
