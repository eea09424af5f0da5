"""Seldon messages for the nodes that take JSON: remote nodes and users' `*_raw` methods.

Everything else in a graph passes :class:`Payload` objects; these helpers are
the one place where a payload becomes a SeldonMessage and a reply becomes a
payload again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from daneel.errors import InvalidInput, ModelError
from daneel.protocol import jsonwire, v1
from daneel.protocol.payload import Payload

#: Meta keys a node's reply may not overwrite: the executor owns the request's identity and path.
_OWNED = ("puid", "routing", "requestPath")


def plain(value: Any) -> Any:
    """`value` as decoded JSON (lists, not arrays), which is what a `*_raw` method is given."""
    return orjson.loads(jsonwire.dumps(value))


def message(payload: Payload) -> dict[str, Any]:
    return v1.encode_message(payload, payload.form)


def message_list(payloads: list[Payload]) -> dict[str, Any]:
    return {"seldonMessages": [message(p) for p in payloads]}


def feedback(value: v1.Feedback) -> dict[str, Any]:
    body: dict[str, Any] = {"reward": value.reward}
    for key in ("request", "response", "truth"):
        part = getattr(value, key)
        if part is not None:
            body[key] = message(part)
    if value.routing:
        body.setdefault("response", {"jsonData": None, "meta": {}})
        body["response"]["meta"] = {**body["response"]["meta"], "routing": value.routing}
    return body


def reply(body: Any, request: Payload, where: str) -> Payload:
    """A node's SeldonMessage reply as a payload in the request's form, keeping the request's meta."""
    try:
        result = v1.decode_message(body, "reply")
    except InvalidInput as exc:
        raise ModelError(f"{where}: the reply is not a SeldonMessage ({exc.message})") from None
    own = {key: value for key, value in result.meta.items() if key not in _OWNED}
    return Payload(result.data, result.names, {**request.meta, **own}, request.form)


def route_index(data: Any, where: str) -> int:
    """The child index in a router's answer: a number, or an array holding one number."""
    array = np.asarray(data)
    if array.size != 1 or array.dtype.kind not in "biuf" or float(array.reshape(-1)[0]) % 1:
        raise ModelError(f"{where}: route returned {array.tolist()!r}; expected one integer child index")
    return int(array.reshape(-1)[0])
