"""Open Inference Protocol datatypes and their numpy equivalents."""

from __future__ import annotations

import numpy as np

from daneel.errors import InvalidInput

_TO_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_FROM_NUMPY: dict[np.dtype, str] = {v: k for k, v in _TO_NUMPY.items()}

DATATYPES = tuple(_TO_NUMPY)


def to_numpy(datatype: str, field: str) -> np.dtype:
    """The numpy dtype for a V2 datatype, or InvalidInput naming `field`."""
    try:
        return _TO_NUMPY[datatype]
    except (KeyError, TypeError):
        expected = f"unknown datatype {datatype!r}; expected one of {', '.join(DATATYPES)}"
        raise InvalidInput(field, expected) from None


def from_numpy(dtype: np.dtype) -> str:
    """The V2 datatype for a numpy dtype of either byte order; strings, bytes and objects are BYTES."""
    found = _FROM_NUMPY.get(dtype.newbyteorder("="))
    if found is not None:
        return found
    if dtype.kind in "USO":
        return "BYTES"
    raise InvalidInput("outputs", f"numpy dtype {dtype} has no Open Inference Protocol datatype")
