"""Property-based tests of the decoders: whatever comes in, a decoded request or a daneel 4xx, nothing else.

Each decoder gets values from two strategies: any JSON at all, and requests shaped nearly right
(the right keys holding wrong, odd or extreme values), which reach deeper into the checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daneel.errors import DaneelError, ErrorCode
from daneel.protocol import binary, v1, v2, v2grpc
from daneel.protocol.datatypes import DATATYPES
from daneel.protocol.proto import grpc_predict_v2_pb2 as pb

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: The codes of errors that are the client's: what becomes a 4xx on every transport.
CLIENTS = {ErrorCode.INVALID_INPUT, ErrorCode.PAYLOAD_TOO_LARGE, ErrorCode.REJECTED, ErrorCode.NOT_FOUND}

INTS = st.one_of(st.integers(-3, 5), st.integers(-(2**70), 2**70), st.sampled_from([2**63 - 1, 2**63, 2**64]))
FLOATS = st.floats(allow_nan=False, allow_infinity=False)  # JSON has neither
SCALARS = st.one_of(st.none(), st.booleans(), INTS, FLOATS, st.text(max_size=8))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=6), inner, max_size=5)),
    max_leaves=30,
)
EXTREME_SHAPES = st.sampled_from([[2**32, 2**32], [2**62, 4], [2**63 - 1, 2], [0, 2**64], [True, 1], [1, False]])
SHAPES = st.one_of(st.lists(INTS, max_size=6), st.lists(st.just(1), min_size=30, max_size=40), EXTREME_SHAPES, JSON)
DATATYPE = st.one_of(st.sampled_from(DATATYPES), st.text(max_size=5), st.none(), st.integers())
DATA = st.one_of(
    st.lists(SCALARS, max_size=8),
    st.lists(st.lists(st.one_of(INTS, FLOATS), max_size=4), max_size=4),
    JSON,
)
PARAMETERS = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={"content_type": st.sampled_from(["np", "pd", "str", "base64", "x"])}),
    JSON,
)
TENSOR = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.sampled_from(["a", "b"]), JSON),
        "shape": SHAPES,
        "datatype": DATATYPE,
        "data": DATA,
        "parameters": PARAMETERS,
    },
)
V2_BODY = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"inputs": st.one_of(st.lists(TENSOR, max_size=3), JSON)},
        optional={"id": JSON, "parameters": PARAMETERS, "outputs": JSON},
    ),
)


def decodes_or_refuses(decode: Callable[[], Any]) -> Any:
    """The decoded value, or None when the decoder refused the input with a client's error."""
    try:
        return decode()
    except DaneelError as exc:
        assert exc.code in CLIENTS, exc.message
        assert exc.message
        return None


def roundtrip(value: Any) -> Any:
    """The value as a JSON body brings it to daneel: orjson reads integers past 64 bits as floats."""
    return orjson.loads(json.dumps(value))


@FUZZ
@given(V2_BODY)
def test_v2_json_decodes_or_is_refused(body: Any) -> None:
    request = decodes_or_refuses(lambda: v2.decode_request(roundtrip(body)))
    if request is not None:
        assert all(isinstance(tensor.shape, list) for tensor in request.inputs)
        decodes_or_refuses(lambda: v2.to_payload(request))


@FUZZ
@given(V2_BODY, st.binary(max_size=64), st.lists(st.integers(-2, 80), max_size=3))
def test_binary_tensors_decode_or_are_refused(body: Any, blob: bytes, sizes: list[int]) -> None:
    header = roundtrip(body)
    inputs = header.get("inputs") if isinstance(header, dict) else None
    for tensor, size in zip(inputs if isinstance(inputs, list) else [], sizes, strict=False):
        if isinstance(tensor, dict):
            tensor.pop("data", None)
            tensor["parameters"] = {"binary_data_size": size}
    decodes_or_refuses(lambda: binary.decode_request(header, blob))


@FUZZ
@given(st.binary(max_size=64), st.one_of(st.none(), st.text(max_size=4), st.integers(-5, 80).map(str)))
def test_a_body_splits_at_its_header_length_or_is_refused(body: bytes, length: str | None) -> None:
    decodes_or_refuses(lambda: binary.split(body, length))


SELDON_DATA = st.fixed_dictionaries(
    {},
    optional={
        "names": JSON,
        "ndarray": DATA,
        "tensor": st.fixed_dictionaries({}, optional={"shape": SHAPES, "values": DATA}),
    },
)
SELDON = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {},
        optional={
            "data": st.one_of(SELDON_DATA, JSON),
            "strData": JSON,
            "jsonData": JSON,
            "binData": st.one_of(st.text(max_size=8), JSON),
            "meta": st.one_of(st.fixed_dictionaries({}, optional={"tags": JSON, "puid": JSON}), JSON),
        },
    ),
)


@FUZZ
@given(SELDON)
def test_seldon_messages_decode_or_are_refused(body: Any) -> None:
    payload = decodes_or_refuses(lambda: v1.decode_message(roundtrip(body)))
    if payload is not None and isinstance(payload.data, np.ndarray):
        assert payload.data.dtype.kind in "biufU"  # numbers, strings or booleans: never objects for a model to trip on


@FUZZ
@given(st.lists(SELDON, max_size=3), st.fixed_dictionaries({}, optional={"reward": JSON, "request": SELDON}))
def test_seldon_lists_and_feedback_decode_or_are_refused(messages: list[Any], feedback: dict[str, Any]) -> None:
    decodes_or_refuses(lambda: v1.decode_message_list(roundtrip({"seldonMessages": messages})))
    response = messages[0] if messages else None
    decodes_or_refuses(lambda: v1.decode_feedback(roundtrip({**feedback, "response": response})))


INT64 = st.integers(-(2**63), 2**63 - 1)


@st.composite
def grpc_requests(draw: st.DrawFn) -> pb.ModelInferRequest:
    """ModelInferRequests with any shapes and datatypes, typed contents of any field, or raw contents."""
    message = pb.ModelInferRequest(model_name="m", id=draw(st.text(max_size=4)))
    for i in range(draw(st.integers(0, 3))):
        shape = draw(st.one_of(st.lists(st.integers(-2, 5), max_size=5), st.lists(INT64, max_size=40)))
        datatype = draw(st.one_of(st.sampled_from(DATATYPES), st.text(max_size=4)))
        tensor = message.inputs.add(name=draw(st.sampled_from(["a", "b", ""])), datatype=datatype, shape=shape)
        field = draw(st.sampled_from([*sorted(set(v2grpc.CONTENTS.values())), "raw"]))
        if field == "raw":
            message.raw_input_contents.append(draw(st.binary(max_size=48)))
        elif field == "bytes_contents":
            tensor.contents.bytes_contents.extend(draw(st.lists(st.binary(max_size=6), max_size=6)))
        elif field == "bool_contents":
            tensor.contents.bool_contents.extend(draw(st.lists(st.booleans(), max_size=6)))
        elif field.startswith("fp"):
            values = draw(st.lists(st.floats(width=32 if field == "fp32_contents" else 64), max_size=6))
            getattr(tensor.contents, field).extend(values)
        else:
            bits = 32 if field in ("int_contents", "uint_contents") else 64
            low = 0 if field.startswith("uint") else -(2 ** (bits - 1))
            high = 2**bits - 1 if field.startswith("uint") else 2 ** (bits - 1) - 1
            getattr(tensor.contents, field).extend(draw(st.lists(st.integers(low, high), max_size=6)))
        if draw(st.booleans()):
            tensor.parameters["content_type"].string_param = draw(st.sampled_from(["np", "str", "base64", "pd", "?"]))
        if i == 0 and draw(st.booleans()):
            message.outputs.add(name=draw(st.sampled_from(["a", "out"])))
    return message


@FUZZ
@given(grpc_requests())
def test_grpc_requests_decode_or_are_refused(message: pb.ModelInferRequest) -> None:
    request = decodes_or_refuses(lambda: v2grpc.decode_request(message))
    if request is not None:
        for tensor in request.inputs:
            if isinstance(tensor.data, np.ndarray):
                assert list(tensor.data.shape) == tensor.shape
