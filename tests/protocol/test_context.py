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


def test_a_request_keeps_the_clients_id_or_gets_a_new_one() -> None:
    assert context.request_context([(b"x-request-id", b"abc")]).request_id == "abc"
    made = {context.request_context([(b"x-request-id", b"")]).request_id, context.request_context().request_id}
    assert len(made) == 2
    assert all(len(made_id) == 32 and int(made_id, 16) >= 0 for made_id in made)
    assert context.current().request_id == ""  # outside any request, no id
