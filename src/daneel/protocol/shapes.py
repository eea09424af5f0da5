"""Tensor shapes as clients send them, checked before anything is built from them.

A shape is checked first and cheaply: how many dimensions it has, then each dimension, then the
element count, so that a hostile shape (a list of 100,000 dimensions, a dimension of 2**64) costs
no more than reading it. Only then is data compared with it, and only then allocated.
"""

from __future__ import annotations

from typing import Any

from daneel.errors import InvalidInput

#: The most dimensions a tensor may have: numpy's own limit in 1.x, and more than any model needs.
MAX_DIMS = 32
#: The largest dimension, and the largest element count: what an int64 holds.
MAX_COUNT = 2**63 - 1

_EXPECTED = "expected a list of non-negative integers"


def element_count(shape: Any, path: str) -> int:
    """The number of elements of `shape`, once it is checked; InvalidInput naming `path` otherwise.

    A dimension must be an integer (a JSON `true` is not one) from 0 to 2**63 - 1, and so must the count.
    """
    if not isinstance(shape, list):
        raise InvalidInput(path, _EXPECTED)
    if len(shape) > MAX_DIMS:
        raise InvalidInput(path, f"has {len(shape)} dimensions; at most {MAX_DIMS} are allowed")
    count = 1
    for i, dim in enumerate(shape):
        if type(dim) is not int or not 0 <= dim <= MAX_COUNT:
            raise InvalidInput(path, f"dimension {i} must be a non-negative integer below 2**63, not {_shown(dim)}")
        count *= dim
    if count > MAX_COUNT:
        raise InvalidInput(path, f"holds {count} elements, more than 2**63 - 1")
    return count


def checked(shape: Any, path: str) -> list[int]:
    """`shape` itself, once :func:`element_count` has found nothing wrong with it."""
    element_count(shape, path)
    return list(shape)


def _shown(value: Any) -> str:
    """A bad dimension for an error message, cut short: it may be a huge number or a long string."""
    text = "true" if value is True else "false" if value is False else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def flat_length(data: Any) -> int | None:
    """The element count nested lists would have if rectangular (following first items); None for a non-list.

    Cheap (one walk down the first items), so that data can be compared with a shape before numpy
    builds an array from it; numpy still rejects lists that are ragged further along.
    """
    if not isinstance(data, list):
        return None
    count = 1
    level: Any = data
    depth = 0
    while isinstance(level, list):
        depth += 1
        if depth > MAX_DIMS:
            return None  # numpy says what is wrong with it
        count *= len(level)
        if not level:
            return count
        level = level[0]
    return count
