import pytest

from daneel.errors import (
    DaneelError,
    ErrorCode,
    InvalidInput,
    LoadError,
    ModelError,
    ModelTimeout,
    NotFound,
    NotImplementedByModel,
    NotReady,
    Overloaded,
    PayloadTooLarge,
    Rejected,
    Unauthenticated,
    describe,
)

CODES = [
    (InvalidInput, ErrorCode.INVALID_INPUT),
    (PayloadTooLarge, ErrorCode.PAYLOAD_TOO_LARGE),
    (Rejected, ErrorCode.REJECTED),
    (NotFound, ErrorCode.NOT_FOUND),
    (NotReady, ErrorCode.NOT_READY),
    (NotImplementedByModel, ErrorCode.NOT_IMPLEMENTED),
    (ModelError, ErrorCode.MODEL_ERROR),
    (ModelTimeout, ErrorCode.TIMEOUT),
    (Overloaded, ErrorCode.OVERLOADED),
    (LoadError, ErrorCode.LOAD_ERROR),
    (Unauthenticated, ErrorCode.UNAUTHENTICATED),
]


@pytest.mark.parametrize(("cls", "code"), CODES)
def test_each_error_is_a_daneel_error_with_its_own_code(cls: type[DaneelError], code: ErrorCode) -> None:
    assert issubclass(cls, DaneelError)
    assert cls.code is code


def test_every_code_belongs_to_an_error() -> None:
    assert {code for _, code in CODES} == set(ErrorCode)


def test_reasons_tell_the_errors_apart() -> None:
    reasons = [cls.reason for cls, _ in CODES]
    assert len(set(reasons)) == len(reasons)
    assert InvalidInput.reason == "MICROSERVICE_BAD_DATA"
    assert ModelError.reason == "MICROSERVICE_INTERNAL_ERROR"


def test_invalid_input_names_the_field() -> None:
    error = InvalidInput("inputs[0].data", "expected a list")
    assert error.field == "inputs[0].data"
    assert error.message == str(error) == "inputs[0].data: expected a list"


def test_invalid_input_without_a_field_is_just_the_expectation() -> None:
    assert InvalidInput("", "expected a JSON object").message == "expected a JSON object"


def test_payload_too_large_is_bad_input_about_the_body() -> None:
    error = PayloadTooLarge(1024)
    assert isinstance(error, InvalidInput)
    assert error.field == "body"
    assert "1024 bytes" in error.message


def test_overloaded_says_when_to_retry() -> None:
    assert Overloaded("busy").retry_after == 1.0
    assert Overloaded("busy", retry_after=5).retry_after == 5


def test_describe_gives_a_daneel_errors_message_and_the_type_of_any_other() -> None:
    assert describe(InvalidInput("inputs[0].data", "is missing")) == "inputs[0].data: is missing"
    assert describe(KeyError("weights")) == "KeyError: 'weights'"
