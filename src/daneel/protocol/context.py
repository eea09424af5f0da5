"""What travels with one request besides its payload: headers in, headers out.

The transport edge opens a :class:`RequestContext` around each call into the
data plane; code below it (the traffic layer picking a predictor by a sticky
header, say) reads the request's headers and adds response headers without
every component signature carrying them.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class RequestContext:
    """Headers as the transport gave them (lower-case names, as in ASGI), decoded only when asked for."""

    raw_headers: Sequence[tuple[bytes, bytes]] = ()
    response_headers: dict[str, str] = field(default_factory=dict)
    predictor: str | None = None  # the predictor the traffic layer chose, for metrics and logs
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
    return RequestContext(raw_headers)


def current() -> RequestContext:
    """The request being served; an empty context outside any request (tests, shadows)."""
    return _current.get() or RequestContext()
