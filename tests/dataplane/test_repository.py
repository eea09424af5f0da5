import asyncio

import pytest

from daneel.dataplane.repository import Repository, State
from daneel.errors import LoadError, NotFound, NotReady
from daneel.runtime.component import Component


class Stub(Component):
    """A component whose load waits for `release` (when given), then raises `error` (when given)."""

    def __init__(self, name: str, error: Exception | None = None, release: asyncio.Event | None = None) -> None:
        self.name = name
        self.error = error
        self.release = release
        self.started = asyncio.Event()

    async def load(self) -> None:
        self.started.set()
        if self.release is not None:
            await self.release.wait()
        if self.error is not None:
            raise self.error


class Clock:
    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0)


def load(repository: Repository) -> list[str]:
    return [entry.component.name for entry in asyncio.run(repository.load_all())]


def test_models_start_loading_and_become_ready() -> None:
    repository = Repository([Stub("a")], clock=Clock(10.0, 12.5))
    entry = repository.entry("a")
    assert (entry.state, entry.reason) == (State.LOADING, "loading")
    assert load(repository) == []
    assert (entry.state, entry.reason, entry.load_seconds) == (State.READY, "", 2.5)
    assert repository.not_ready() == []


def test_models_are_not_ready_while_loading() -> None:
    async def observe() -> tuple[State, list[str], str]:
        stub = Stub("a", release=asyncio.Event())
        repository = Repository([stub])
        loading = asyncio.create_task(repository.load_all())
        await stub.started.wait()
        with pytest.raises(NotReady) as caught:
            repository.get("a")
        seen = repository.entry("a").state, repository.not_ready(), caught.value.message
        stub.release.set()
        await loading
        return seen

    state, reasons, message = asyncio.run(observe())
    assert state is State.LOADING
    assert reasons == ["model 'a': loading"]
    assert message == "model 'a' is not ready: loading"


@pytest.mark.parametrize(
    ("error", "reason"),
    [(LoadError("no weights"), "no weights"), (OSError("disk gone"), "OSError: disk gone")],
)
def test_a_model_that_fails_to_load_says_why(error: Exception, reason: str) -> None:
    repository = Repository([Stub("bad", error), Stub("good")])
    assert load(repository) == ["bad"]
    assert repository.entry("bad").state is State.FAILED
    assert repository.entry("bad").reason == reason
    assert repository.not_ready() == [f"model 'bad': {reason}"]
    with pytest.raises(NotReady, match=reason):
        repository.get("bad")
    assert repository.get("good").name == "good"


def test_models_still_loading_make_the_server_not_ready() -> None:
    repository = Repository([Stub("a")])
    assert repository.not_ready() == ["model 'a': loading"]


def test_models_load_concurrently() -> None:
    async def load_both() -> list[State]:
        first = Stub("first", release=asyncio.Event())
        second = Stub("second")
        repository = Repository([first, second])
        loading = asyncio.create_task(repository.load_all())
        await asyncio.wait_for(second.started.wait(), 10)  # never set if loads ran one after another
        first.release.set()
        await loading
        return [entry.state for entry in repository.entries.values()]

    assert asyncio.run(load_both()) == [State.READY, State.READY]


def test_unknown_models_are_not_found_naming_the_served_ones() -> None:
    repository = Repository([Stub("a"), Stub("b")])
    with pytest.raises(NotFound, match="model 'c' not found; served models: a, b"):
        repository.get("c")


def test_the_default_model_is_the_only_one() -> None:
    single = Repository([Stub("a")])
    load(single)
    assert single.default().name == "a"
    with pytest.raises(NotFound, match=r"2 are served \(a, b\)"):
        Repository([Stub("a"), Stub("b")]).default()


def test_the_default_model_must_be_ready() -> None:
    with pytest.raises(NotReady):
        Repository([Stub("a")]).default()
