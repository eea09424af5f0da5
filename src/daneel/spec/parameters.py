"""Typed parameter values: Seldon's INT, FLOAT, DOUBLE, STRING and BOOL, plus daneel's JSON.

Pure conversions, shared by deployment validation (here) and by the runtime,
which builds a component's keyword arguments with them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "INT": int,
    "FLOAT": float,
    "DOUBLE": float,
    "STRING": str,
    "BOOL": _bool,
    "JSON": _json,
}


def convert(kind: str, value: Any) -> Any:
    """`value` as a `kind`; ValueError naming both when it is not one (or `kind` is unknown)."""
    converter = CONVERTERS.get(kind)
    if converter is None:
        raise ValueError(f"unknown type {kind!r}; expected one of {', '.join(CONVERTERS)}")
    try:
        return converter(value)
    except (ValueError, TypeError):  # json.JSONDecodeError is a ValueError
        raise ValueError(f"{value!r} is not a valid {kind}") from None
