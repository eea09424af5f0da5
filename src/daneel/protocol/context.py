"""What travels with one request besides its payload: headers in, headers out.

The transport edge opens a :class:`RequestContext` around each call into the
data plane; code below it (the traffic layer picking a predictor by a sticky
header, say) reads the request's headers and adds response headers without
every component signature carrying them. Each request has an id: the client's
`x-request-id`, or one made for it, which the edges send back and the logs name.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

#: The header (gRPC: metadata key) that carries a request's id, both ways.
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = REQUEST_ID_HEADER.encode("latin-1")


@dataclass(slots=True)
class RequestContext:
    """Headers as the transport gave them (lower-case names, as in ASGI), decoded only when asked for."""

    raw_headers: Sequence[tuple[bytes, bytes]] = ()
    response_headers: dict[str, str] = field(default_factory=dict)
    predictor: str | None = None  # the predictor the traffic layer chose, for metrics and logs
    request_id: str = ""  # set by request_context(); empty outside any request
    _token: contextvars.Token[RequestContext | None] | None = field(default=None, init=False, repr=False, compare=False)

    # A class rather than contextlib.contextmanager: entered once per request, it should cost a call, not a generator.
    def __enter__(self) -> RequestContext:
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode("latin-1")
        for key, value in self.raw_headers:
            if key == wanted:
                return value.decode("latin-1")
        return None


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("daneel_request", default=None)


def request_context(raw_headers: Sequence[tuple[bytes, bytes]] = ()) -> RequestContext:
    """A new request's context; `with` it to make it the :func:`current` one."""
    return RequestContext(raw_headers, request_id=_request_id(raw_headers))


def _request_id(raw_headers: Sequence[tuple[bytes, bytes]]) -> str:
    """The client's `x-request-id` as sent; without one (or an empty one), 32 random hex digits."""
    for key, value in raw_headers:
        if key == _REQUEST_ID and value:
            return value.decode("latin-1")
    return os.urandom(16).hex()  # as random as a uuid4, at a quarter of its cost


def current() -> RequestContext:
    """The request being served; an empty context outside any request (tests, shadows)."""
    return _current.get() or RequestContext()
