from daneel.protocol import context


def test_a_request_context_is_current_while_entered_and_then_no_longer() -> None:
    with context.request_context([(b"x-user", b"ada")]) as request:
        assert context.current() is request
        assert request.header("X-User") == "ada"
        assert request.header("x-missing") is None
    outside = context.current()
    assert outside is not request
    assert (outside.raw_headers, outside.response_headers) == ((), {})


def test_contexts_nest_and_restore_the_outer_one() -> None:
    with context.request_context() as outer:
        with context.request_context() as inner:
            inner.response_headers["x-daneel-predictor"] = "a"
            assert context.current() is inner
        assert context.current() is outer
        assert outer.response_headers == {}
    assert inner.response_headers == {"x-daneel-predictor": "a"}


def test_the_context_is_left_even_when_the_request_fails() -> None:
    try:
        with context.request_context() as request:
            raise ValueError("boom")
    except ValueError:
        pass
    assert context.current() is not request
