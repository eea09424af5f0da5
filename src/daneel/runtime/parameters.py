"""Typed component parameters, as Seldon passes them to a class's `__init__`.

Two forms are accepted: Seldon's list `[{"name", "value", "type"}]` (as in
`PREDICTIVE_UNIT_PARAMETERS` and deployment files) and a plain JSON object.
"""

from __future__ import annotations

import json
from typing import Any

from daneel.errors import InvalidInput
from daneel.spec.parameters import CONVERTERS as _TYPES


def parse(value: Any, source: str = "parameters") -> dict[str, Any]:
    """Parameters as keyword arguments; `value` is a JSON string, a list or a dict."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidInput(source, f"expected JSON ({exc.msg})") from None
    if isinstance(value, dict):
        return dict(value)
    if not isinstance(value, list):
        raise InvalidInput(source, "expected a list of {name, value, type} or an object")
    return dict(_typed(item, f"{source}[{i}]") for i, item in enumerate(value))


def _typed(item: Any, path: str) -> tuple[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise InvalidInput(f"{path}.name", "expected a string")
    kind = str(item.get("type", "STRING")).upper()
    convert = _TYPES.get(kind)
    if convert is None:
        raise InvalidInput(f"{path}.type", f"unknown type {kind!r}; expected one of {', '.join(_TYPES)}")
    try:
        return item["name"], convert(item.get("value"))
    except (ValueError, TypeError, json.JSONDecodeError):
        raise InvalidInput(f"{path}.value", f"{item.get('value')!r} is not a valid {kind}") from None
