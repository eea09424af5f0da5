"""daneel's one error tree.

Every error daneel raises on the serving path is a :class:`DaneelError`. Each
subclass carries a transport-neutral :class:`ErrorCode`; the REST and gRPC edges
each own one table that maps codes to their status values, so nothing below the
edge knows about HTTP.

    DaneelError
    ├── InvalidInput          bad request payload (names the field)
    │   ├── PayloadTooLarge   body over the configured limit
    │   └── Rejected          well-formed, but refused: an outlier detector says it is unlike the training data
    ├── NotFound              unknown model, version or path
    ├── NotReady              model still loading, or failed to load
    ├── NotImplementedByModel the component lacks the method asked for
    ├── ModelError            user code raised
    ├── ModelTimeout          user code exceeded its time budget
    ├── Overloaded            too much work queued (carries retry_after)
    ├── LoadError             a model could not be loaded
    └── Unauthenticated       no token, or not the server's, where `daneel serve --auth-token-file` asks for one
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable
from typing import Any, TypeVar


class ErrorCode(enum.Enum):
    INVALID_INPUT = "invalid_input"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    REJECTED = "rejected"
    NOT_FOUND = "not_found"
    NOT_READY = "not_ready"
    NOT_IMPLEMENTED = "not_implemented"
    MODEL_ERROR = "model_error"
    TIMEOUT = "timeout"
    OVERLOADED = "overloaded"
    LOAD_ERROR = "load_error"
    UNAUTHENTICATED = "unauthenticated"


class DaneelError(Exception):
    """Base of every daneel error; `reason` is a short machine-readable tag."""

    code: ErrorCode = ErrorCode.MODEL_ERROR
    reason: str = "MICROSERVICE_INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its attributes rather than its constructor's arguments, which differ by subclass:
        errors cross to and from helper processes (large bodies are decoded in one)."""
        return _restore, (type(self), self.message, self.__dict__)


def _restore(cls: type[DaneelError], message: str, state: dict[str, Any]) -> DaneelError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class InvalidInput(DaneelError):
    code = ErrorCode.INVALID_INPUT
    reason = "MICROSERVICE_BAD_DATA"

    def __init__(self, field: str, expected: str) -> None:
        super().__init__(f"{field}: {expected}" if field else expected)
        self.field = field


class PayloadTooLarge(InvalidInput):
    code = ErrorCode.PAYLOAD_TOO_LARGE
    reason = "PAYLOAD_TOO_LARGE"

    def __init__(self, limit: int) -> None:
        super().__init__("body", f"request body is larger than the limit of {limit} bytes")


class Rejected(InvalidInput):
    code = ErrorCode.REJECTED
    reason = "REJECTED"


class NotFound(DaneelError):
    code = ErrorCode.NOT_FOUND
    reason = "NOT_FOUND"


class NotReady(DaneelError):
    code = ErrorCode.NOT_READY
    reason = "NOT_READY"


class NotImplementedByModel(DaneelError):
    code = ErrorCode.NOT_IMPLEMENTED
    reason = "NOT_IMPLEMENTED"


class ModelError(DaneelError):
    code = ErrorCode.MODEL_ERROR
    reason = "MICROSERVICE_INTERNAL_ERROR"


class ModelTimeout(DaneelError):
    code = ErrorCode.TIMEOUT
    reason = "TIMEOUT"


class Overloaded(DaneelError):
    code = ErrorCode.OVERLOADED
    reason = "OVERLOADED"

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LoadError(DaneelError):
    code = ErrorCode.LOAD_ERROR
    reason = "LOAD_ERROR"


class Unauthenticated(DaneelError):
    code = ErrorCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


T = TypeVar("T")


async def within(seconds: float, call: Awaitable[T], message: str) -> T:
    """`call`, or ModelTimeout(`message`) once it has taken `seconds`; a TimeoutError of its own passes as is."""
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            return await call
    except TimeoutError:
        if scope.expired():
            raise ModelTimeout(message) from None
        raise


def describe(exc: BaseException) -> str:
    """An error for people: a DaneelError's own message, any other as 'Type: message'."""
    return exc.message if isinstance(exc, DaneelError) else f"{type(exc).__name__}: {exc}"


def internal_error(request_id: str) -> DaneelError:
    """What a client is told of an error in daneel itself: nothing of its detail, which goes to the log."""
    return DaneelError(f"internal error; the server log has the detail under request id {request_id}")
