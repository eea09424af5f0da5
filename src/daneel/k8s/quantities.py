"""Kubernetes resource quantities (`100m`, `1.5`, `128Mi`, `1e3`), added up.

A predictor's pod runs several graph nodes in one process, so it asks for the
sum of what their containers in `componentSpecs` ask for.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from daneel.errors import InvalidInput

_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([A-Za-z]*)")
_BINARY = ("Gi", "Mi", "Ki")


def parse(value: Any, field: str) -> Decimal:
    """The quantity `value` (a string or a number) as a number; `field` names it in the error."""
    match = _QUANTITY.fullmatch(str(value).strip())
    if match is None or match.group(2) not in _SUFFIXES:
        raise InvalidInput(field, f"expected a Kubernetes quantity such as 100m, 0.5 or 128Mi; got {value!r}")
    try:
        return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]
    except InvalidOperation as exc:
        raise InvalidInput(field, f"expected a Kubernetes quantity; got {value!r}") from exc


def total(values: list[Any], field: str, resource: str) -> str | int | float:
    """The sum of `values`, written as a person would: one value is kept as it was given."""
    if len(values) == 1:
        only: str | int | float = values[0]
        return only
    amount = sum((parse(value, field) for value in values), Decimal(0))
    if resource == "cpu":
        return _cpu(amount)
    return _bytes(amount)


def _cpu(amount: Decimal) -> str:
    if amount == amount.to_integral_value():
        return str(int(amount))
    return f"{int((amount * 1000).to_integral_value())}m"


def _bytes(amount: Decimal) -> str:
    for suffix in _BINARY:
        unit = _SUFFIXES[suffix]
        if amount >= unit and amount % unit == 0:
            return f"{int(amount / unit)}{suffix}"
    return str(int(amount.to_integral_value()))


def summed(resources: list[dict[str, Any]], field: str) -> dict[str, Any]:
    """Containers' `resources` added up: requests with requests, limits with limits."""
    out: dict[str, Any] = {}
    for part in ("requests", "limits"):
        given: dict[str, list[Any]] = {}
        for resource in resources:
            for name, value in (resource.get(part) or {}).items():
                given.setdefault(name, []).append(value)
        if given:
            out[part] = {name: total(values, f"{field}.{part}.{name}", name) for name, values in given.items()}
    return out
