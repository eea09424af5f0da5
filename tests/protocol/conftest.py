from collections.abc import Callable
from typing import Any

import orjson
import pytest


def _wire(value: Any) -> Any:
    """What a client receives: the value as the server serialises it, parsed back."""
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY))


@pytest.fixture
def wire() -> Callable[[Any], Any]:
    return _wire
