import base64
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from daneel.errors import InvalidInput
from daneel.protocol import v1
from daneel.protocol.payload import Payload

Wire = Callable[[Any], Any]


def rejected(decode: Callable[[Any], Any], body: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        decode(body)
    return caught.value


def test_ndarray_decodes_with_names_and_meta() -> None:
    payload = v1.decode_message({"data": {"names": ["a", "b"], "ndarray": [[1, 2]]}, "meta": {"puid": "p"}})
    np.testing.assert_array_equal(payload.data, [[1, 2]])
    assert (payload.names, payload.meta, payload.form) == (["a", "b"], {"puid": "p"}, "ndarray")


def test_tensor_decodes_to_its_shape() -> None:
    payload = v1.decode_message({"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]}}})
    assert payload.form == "tensor"
    assert payload.data.dtype == np.float64
    np.testing.assert_array_equal(payload.data, [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    ("body", "data", "form"),
    [
        ({"strData": "hello"}, "hello", "strData"),
        ({"jsonData": {"a": [1, 2]}}, {"a": [1, 2]}, "jsonData"),
        ({"binData": base64.b64encode(b"\x00\x01").decode()}, b"\x00\x01", "binData"),
    ],
)
def test_other_kinds_decode_as_they_are(body: dict[str, Any], data: Any, form: str) -> None:
    payload = v1.decode_message(body)
    assert (payload.data, payload.form, payload.names) == (data, form, [])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([1, 2], "body"),
        ({}, "body"),
        ({"strData": "a", "meta": [1]}, "meta"),
        ({"data": [1]}, "data"),
        ({"data": {"names": ["a"]}}, "data"),
        ({"data": {"names": [1], "ndarray": [1]}}, "data.names"),
        ({"data": {"ndarray": 1}}, "data.ndarray"),
        ({"data": {"ndarray": [[1, 2], [3]]}}, "data.ndarray"),
        ({"data": {"tensor": [1]}}, "data.tensor"),
        ({"data": {"tensor": {"shape": [-1], "values": [1]}}}, "data.tensor.shape"),
        ({"data": {"tensor": {"shape": [2], "values": ["a", "b"]}}}, "data.tensor.values"),
        ({"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3]}}}, "data.tensor.values"),
        ({"strData": 3}, "strData"),
        ({"binData": "%%%"}, "binData"),
        ({"binData": 3}, "binData"),
    ],
)
def test_malformed_messages_name_the_field(body: Any, field: str) -> None:
    assert rejected(v1.decode_message, body).field == field


@pytest.mark.parametrize("form", ["ndarray", "tensor"])
def test_numeric_results_keep_the_request_form(form: str, wire: Wire) -> None:
    result = Payload(np.array([[0.25, 0.75]]), ["a", "b"], {"puid": "p"})
    body = wire(v1.encode_message(result, form))
    assert form in body["data"] and body["meta"] == {"puid": "p"}
    again = v1.decode_message(body)
    np.testing.assert_array_equal(again.data, [[0.25, 0.75]])
    assert (again.names, again.form) == (["a", "b"], form)


@pytest.mark.parametrize("form", ["ndarray", "tensor"])
def test_text_results_in_tensor_or_ndarray_form_go_out_as_ndarray(form: str, wire: Wire) -> None:
    body = wire(v1.encode_message(Payload(np.array([["setosa"], ["virginica"]])), form))
    assert body["data"]["ndarray"] == [["setosa"], ["virginica"]]


@pytest.mark.parametrize(
    ("result", "form", "expected"),
    [
        ("hello", "ndarray", {"strData": "hello"}),
        (b"\x00\xff", "ndarray", {"binData": "AP8="}),
        ({"a": 1}, "ndarray", {"jsonData": {"a": 1}}),
        ([1, 2], "jsonData", {"jsonData": [1, 2]}),
        ([[1, 2]], "ndarray", {"data": {"names": ["t:0", "t:1"], "ndarray": [[1, 2]]}}),
        (
            np.array([[1.5, 2]], dtype=np.float16),
            "ndarray",
            {"data": {"names": ["t:0", "t:1"], "ndarray": [[1.5, 2.0]]}},
        ),
        (np.array([[1, 2], [3, 4]])[:, 1], "ndarray", {"data": {"names": [], "ndarray": [2, 4]}}),
        (np.array([True, False]), "tensor", {"data": {"names": [], "tensor": {"shape": [2], "values": [1.0, 0.0]}}}),
    ],
)
def test_results_encode_by_their_kind(result: Any, form: str, expected: dict[str, Any], wire: Wire) -> None:
    assert wire(v1.encode_message(Payload(result), form)) == {**expected, "meta": {}}


def test_dataframe_results_are_named_by_their_columns(wire: Wire) -> None:
    frame = pd.DataFrame({"p0": [0.1], "p1": [0.9]})
    body = wire(v1.encode_message(Payload(frame), "ndarray"))
    assert body["data"] == {"names": ["p0", "p1"], "ndarray": [[0.1, 0.9]]}


def test_feedback_decodes_every_part_and_the_routing() -> None:
    feedback = v1.decode_feedback(
        {
            "request": {"data": {"ndarray": [[1, 2]]}},
            "response": {"data": {"ndarray": [[0.9]]}, "meta": {"routing": {"router": 1}}},
            "truth": {"data": {"ndarray": [[1]]}},
            "reward": 1,
        }
    )
    assert feedback.request is not None and feedback.truth is not None
    np.testing.assert_array_equal(feedback.request.data, [[1, 2]])
    np.testing.assert_array_equal(feedback.truth.data, [[1]])
    assert (feedback.reward, feedback.routing) == (1.0, {"router": 1})


def test_feedback_parts_are_optional() -> None:
    feedback = v1.decode_feedback({})
    assert (feedback.request, feedback.response, feedback.truth) == (None, None, None)
    assert (feedback.reward, feedback.routing) == (0.0, {})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("x", "body"),
        ({"reward": "high"}, "reward"),
        ({"reward": True}, "reward"),
        ({"request": {"data": {"ndarray": 3}}}, "request.data.ndarray"),
        ({"truth": {"strData": 1}}, "truth.strData"),
        ({"response": {"strData": "a", "meta": {"routing": [1]}}}, "response.meta.routing"),
    ],
)
def test_malformed_feedback_names_the_field(body: Any, field: str) -> None:
    assert rejected(v1.decode_feedback, body).field == field


def test_message_list_decodes_each_message() -> None:
    payloads = v1.decode_message_list({"seldonMessages": [{"data": {"ndarray": [1]}}, {"strData": "b"}]})
    assert [p.form for p in payloads] == ["ndarray", "strData"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "seldonMessages"),
        ({"seldonMessages": []}, "seldonMessages"),
        ({"seldonMessages": [{"strData": "a"}, {"data": {"ndarray": 1}}]}, "seldonMessages[1].data.ndarray"),
    ],
)
def test_malformed_message_lists_name_the_field(body: Any, field: str) -> None:
    assert rejected(v1.decode_message_list, body).field == field


def test_error_body_is_seldons_status_object() -> None:
    assert v1.error_body(400, "bad", "MICROSERVICE_BAD_DATA") == {
        "status": {"code": 400, "info": "bad", "reason": "MICROSERVICE_BAD_DATA", "status": "FAILURE"}
    }
