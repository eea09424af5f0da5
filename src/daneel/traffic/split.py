"""Weighted choice between predictors, random or sticky.

A sticky key (a user id from a header or a field of the request) is hashed to a
point in [0, total weight), so the same key always lands on the same predictor
while the weights stay the same, and keys spread over predictors in proportion
to their weights.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
from collections.abc import Mapping
from typing import Any

from daneel.errors import InvalidInput
from daneel.protocol.context import RequestContext
from daneel.spec.model import Sticky

_HASH_SPACE = float(2**64)


class Split:
    def __init__(self, weights: list[int], rng: random.Random | None = None) -> None:
        if not weights or sum(weights) <= 0:
            raise ValueError("a split needs at least one positive weight")
        self._cumulative = list(itertools.accumulate(weights))
        self._total = float(self._cumulative[-1])
        self._rng = rng or random.Random()

    def choose(self, key: str | None = None) -> int:
        """The index of the chosen predictor; a key always gives the same one."""
        if key is None:
            point = self._rng.random() * self._total
        else:
            digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
            point = int.from_bytes(digest, "big") / _HASH_SPACE * self._total
        return bisect.bisect_right(self._cumulative, point)


def sticky_key(sticky: Sticky | None, request: RequestContext, meta: Mapping[str, Any]) -> str | None:
    """The request's sticky key, if the deployment asks for one and the request carries it.

    A field path starts with `meta.` (Seldon's message meta, e.g. `meta.tags.user`)
    or `parameters.` (a V2 request's parameters, e.g. `parameters.user`).
    """
    if sticky is None:
        return None
    if sticky.header:
        value = request.header(sticky.header)
        if value:
            return value
    if sticky.field:
        return _field(sticky.field, meta)
    return None


def _field(path: str, meta: Mapping[str, Any]) -> str | None:
    head, _, rest = path.partition(".")
    value: Any = meta if head == "meta" else meta.get("parameters", {}) if head == "parameters" else None
    for part in rest.split(".") if rest else []:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise InvalidInput(path, f"expected a text or number to route on, got {type(value).__name__}")
    return str(value)
