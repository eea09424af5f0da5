import base64
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from daneel.errors import InvalidInput
from daneel.protocol import codecs, v2

Wire = Callable[[Any], Any]


def bytes_tensor(data: Any, content_type: str | None = None, shape: list[int] | None = None) -> v2.Tensor:
    parameters = {} if content_type is None else {"content_type": content_type}
    obj = {"name": "x", "shape": shape or [len(data)], "datatype": "BYTES", "data": data, "parameters": parameters}
    return v2.decode_tensor(obj, "inputs[0]")


def test_base64_content_type_decodes_to_bytes() -> None:
    encoded = [base64.b64encode(b"\x00\xff").decode(), base64.b64encode(b"hi").decode()]
    assert bytes_tensor(encoded, "base64").data == [b"\x00\xff", b"hi"]


def test_bad_base64_names_the_element() -> None:
    with pytest.raises(InvalidInput) as caught:
        bytes_tensor(["aGk=", "not base64!"], "base64")
    assert caught.value.field == "inputs[0].data[1]"
    assert "base64" in caught.value.message


def test_str_content_type_decodes_to_a_list_of_str() -> None:
    assert bytes_tensor([["a", "b"], ["c", "d"]], "str", [2, 2]).data == ["a", "b", "c", "d"]


def test_bytes_without_content_type_keep_their_shape() -> None:
    data = bytes_tensor([["a", "b"], ["c", "d"]], shape=[2, 2]).data
    assert data.dtype == object and data.shape == (2, 2)
    assert data[1, 0] == "c"


def test_bytes_must_be_strings() -> None:
    with pytest.raises(InvalidInput, match="expected strings") as caught:
        bytes_tensor(["a", 1])
    assert caught.value.field == "inputs[0].data"


@pytest.mark.parametrize(("content_type", "datatype"), [("json", "BYTES"), ("str", "FP32"), ("base64", "INT8")])
def test_wrong_content_type_is_rejected(content_type: str, datatype: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        codecs.check_content_type(content_type, datatype, "inputs[3]")
    assert caught.value.field == "inputs[3].parameters.content_type"
    assert repr(content_type) in caught.value.message


def test_numeric_content_types_fit_any_datatype() -> None:
    assert codecs.check_content_type("np", "FP32", "inputs[0]") == "np"
    assert codecs.check_content_type("pd", "BYTES", "inputs[0]") == "pd"
    assert codecs.check_content_type(None, "FP32", "inputs[0]") is None


def test_text_outputs_stay_text(wire: Wire) -> None:
    output = wire(codecs.bytes_output("y", [b"caf\xc3\xa9", "tea", 3], [3]))
    assert output == {
        "name": "y",
        "shape": [3],
        "datatype": "BYTES",
        "parameters": {"content_type": "str"},
        "data": ["café", "tea", "3"],
    }


def test_binary_outputs_go_out_as_base64(wire: Wire) -> None:
    output = wire(codecs.bytes_output("y", [b"\xff\xfe", "tea"], [2]))
    assert output["parameters"] == {"content_type": "base64"}
    assert [base64.b64decode(item) for item in output["data"]] == [b"\xff\xfe", b"tea"]


def test_dataframe_columns_from_inputs() -> None:
    inputs = [
        v2.Tensor("a", "FP32", [2, 1], np.array([[1.0], [2.0]], dtype=np.float32)),
        v2.Tensor("b", "BYTES", [2], np.array(["x", "y"], dtype=object)),
    ]
    frame = codecs.to_dataframe(inputs)
    assert list(frame.columns) == ["a", "b"]
    assert frame["a"].tolist() == [1.0, 2.0]
    assert codecs.is_dataframe(frame) and not codecs.is_dataframe(np.zeros(2))


def test_dataframe_columns_must_be_one_dimensional() -> None:
    wide = v2.Tensor("a", "FP32", [2, 2], np.zeros((2, 2)))
    with pytest.raises(InvalidInput) as caught:
        codecs.to_dataframe([v2.Tensor("b", "FP32", [2], np.zeros(2)), wide])
    assert caught.value.field == "inputs[1].shape"


def test_dataframe_columns_must_have_one_length() -> None:
    inputs = [v2.Tensor("a", "FP32", [2], np.zeros(2)), v2.Tensor("b", "FP32", [3], np.zeros(3))]
    with pytest.raises(InvalidInput, match="same length"):
        codecs.to_dataframe(inputs)


def test_dataframe_keeps_the_column_order() -> None:
    inputs = [v2.Tensor(name, "INT64", [1], np.array([i])) for i, name in enumerate("zyx")]
    assert codecs.to_dataframe(inputs).equals(pd.DataFrame({"z": [0], "y": [1], "x": [2]}))
