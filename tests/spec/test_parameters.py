from typing import Any

import pytest

from daneel.spec.parameters import CONVERTERS, convert


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("INT", "3", 3),
        ("FLOAT", "0.5", 0.5),
        ("DOUBLE", 2, 2.0),
        ("STRING", 5, "5"),
        ("BOOL", "Yes", True),
        ("BOOL", False, False),
        ("JSON", '{"a": [1]}', {"a": [1]}),
        ("JSON", [1, 2], [1, 2]),
    ],
)
def test_values_convert_to_their_type(kind: str, value: Any, expected: Any) -> None:
    converted = convert(kind, value)
    assert converted == expected
    assert type(converted) is type(expected)


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("INT", "2.5", "'2.5' is not a valid INT"),
        ("INT", None, "None is not a valid INT"),
        ("FLOAT", "x", "'x' is not a valid FLOAT"),
        ("BOOL", "maybe", "'maybe' is not a valid BOOL"),
        ("JSON", "{", "'{' is not a valid JSON"),
        ("LONG", "1", "unknown type 'LONG'; expected one of INT, FLOAT, DOUBLE, STRING, BOOL, JSON"),
    ],
)
def test_a_value_that_is_not_its_type_says_so(kind: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        convert(kind, value)
    assert str(caught.value) == message


def test_the_types_are_seldons_and_json() -> None:
    assert list(CONVERTERS) == ["INT", "FLOAT", "DOUBLE", "STRING", "BOOL", "JSON"]
