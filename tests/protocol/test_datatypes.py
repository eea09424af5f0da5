import numpy as np
import pytest

from daneel.errors import InvalidInput
from daneel.protocol.datatypes import DATATYPES, from_numpy, to_numpy

NUMPY = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}


def test_every_open_inference_protocol_datatype_is_known() -> None:
    assert set(DATATYPES) == set(NUMPY)


@pytest.mark.parametrize(("datatype", "scalar"), NUMPY.items())
def test_datatype_maps_to_numpy_and_back(datatype: str, scalar: type) -> None:
    dtype = to_numpy(datatype, "inputs[0].datatype")
    assert dtype == np.dtype(scalar)
    assert from_numpy(dtype) == datatype


@pytest.mark.parametrize("datatype", ["FLOAT32", "fp32", "", None])
def test_unknown_datatype_names_the_field_and_the_choices(datatype: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        to_numpy(datatype, "inputs[2].datatype")
    assert caught.value.field == "inputs[2].datatype"
    assert "FP32" in caught.value.message and "BYTES" in caught.value.message


@pytest.mark.parametrize("dtype", ["<U5", "S3", "O"])
def test_text_bytes_and_objects_are_bytes(dtype: str) -> None:
    assert from_numpy(np.dtype(dtype)) == "BYTES"


@pytest.mark.parametrize(("dtype", "datatype"), [(">f8", "FP64"), (">i4", "INT32"), (">u2", "UINT16")])
def test_byte_order_does_not_change_the_datatype(dtype: str, datatype: str) -> None:
    assert from_numpy(np.dtype(dtype)) == datatype


def test_dtypes_without_a_datatype_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="complex128"):
        from_numpy(np.dtype(np.complex128))
