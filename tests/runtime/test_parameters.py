from typing import Any

import pytest

from daneel.errors import InvalidInput
from daneel.runtime import parameters


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("INT", "3", 3),
        ("INT", 4, 4),
        ("FLOAT", "0.5", 0.5),
        ("DOUBLE", "1e-3", 0.001),
        ("STRING", 5, "5"),
        ("BOOL", "true", True),
        ("BOOL", "0", False),
        ("BOOL", "No", False),
        ("BOOL", True, True),
        ("JSON", '{"a": [1, 2]}', {"a": [1, 2]}),
        ("JSON", {"a": 1}, {"a": 1}),
        ("int", "7", 7),
    ],
)
def test_typed_values_are_converted(kind: str, value: Any, expected: Any) -> None:
    parsed = parameters.parse([{"name": "p", "value": value, "type": kind}])
    assert parsed == {"p": expected}
    assert type(parsed["p"]) is type(expected)


def test_type_defaults_to_string() -> None:
    assert parameters.parse([{"name": "p", "value": 1}]) == {"p": "1"}


def test_the_list_may_come_as_json_text() -> None:
    text = '[{"name": "a", "value": "2", "type": "INT"}, {"name": "b", "value": "x"}]'
    assert parameters.parse(text) == {"a": 2, "b": "x"}


def test_a_plain_object_is_taken_as_it_is() -> None:
    assert parameters.parse('{"a": 2, "b": [1]}') == {"a": 2, "b": [1]}
    assert parameters.parse({"a": "2"}) == {"a": "2"}


@pytest.mark.parametrize("value", [None, "", []])
def test_nothing_means_no_parameters(value: Any) -> None:
    assert parameters.parse(value) == {}


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ([{"name": "a", "value": "1"}, {"name": "n", "value": "x", "type": "INT"}], "parameters[1].value", "'x'"),
        ([{"name": "f", "value": "fast", "type": "FLOAT"}], "parameters[0].value", "FLOAT"),
        ([{"name": "b", "value": "maybe", "type": "BOOL"}], "parameters[0].value", "BOOL"),
        ([{"name": "j", "value": "{", "type": "JSON"}], "parameters[0].value", "JSON"),
        ([{"name": "n", "value": None, "type": "INT"}], "parameters[0].value", "INT"),
        ([{"name": "a", "value": "1", "type": "LONG"}], "parameters[0].type", "'LONG'"),
        ([{"value": "1"}], "parameters[0].name", "string"),
        (["a"], "parameters[0].name", "string"),
        ("[{", "parameters", "JSON"),
        ("3", "parameters", "list"),
    ],
)
def test_errors_name_the_parameter(value: Any, field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parameters.parse(value)
    assert caught.value.field == field
    assert words in caught.value.message


def test_errors_name_where_the_parameters_came_from() -> None:
    with pytest.raises(InvalidInput) as caught:
        parameters.parse('[{"name": "n", "value": "x", "type": "INT"}]', "PREDICTIVE_UNIT_PARAMETERS")
    assert caught.value.field == "PREDICTIVE_UNIT_PARAMETERS[0].value"
