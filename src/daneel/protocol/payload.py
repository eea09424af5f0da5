"""The transport-neutral value passed between the data plane and components."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The wire forms a request can arrive in; a response is encoded in the same form.
FORMS = ("ndarray", "tensor", "strData", "jsonData", "binData", "v2")


@dataclass(slots=True)
class Payload:
    """Decoded request or response data.

    `data` is a numpy array, a pandas DataFrame, a dict of named arrays, a str,
    bytes, or any JSON value. `names` are column (feature or class) names.
    `form` records the wire form the request used so the response can keep it.
    `output_name` names a single-array result as a V2 output tensor.
    """

    data: Any
    names: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    form: str = "ndarray"
    output_name: str | None = None


def as_array(value: Any) -> np.ndarray:
    """Turn a list or scalar result into an array; arrays pass through untouched."""
    if isinstance(value, np.ndarray):
        return value
    return np.asarray(value)
