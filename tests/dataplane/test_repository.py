import asyncio
from collections.abc import Awaitable, Callable

import pytest

from daneel.dataplane.repository import Repository, State, without_paths
from daneel.errors import LoadError, NotFound, NotImplementedByModel, NotReady
from daneel.runtime.component import Component
from daneel.runtime.loader import ComponentSpec


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


# Loading and unloading at runtime


class Factory:
    """Builds Stubs from specs, for models that load (or fail to, or wait) as the test says."""

    def __init__(self) -> None:
        self.errors: dict[str, Exception] = {}
        self.releases: dict[str, asyncio.Event] = {}
        self.built: list[Stub] = []
        self.specs = [ComponentSpec("a", "stub"), ComponentSpec("b", "stub")]

    def __call__(self, spec: ComponentSpec) -> Component:
        stub = Stub(spec.name, self.errors.get(spec.name), self.releases.get(spec.name))
        self.built.append(stub)
        return stub

    def scan(self) -> list[ComponentSpec]:
        return list(self.specs)

    def repository(self) -> Repository:
        return Repository.from_specs(list(self.specs), self, self.scan)


def run(repository: Repository, *calls: Callable[[], Awaitable[None]]) -> None:
    async def go() -> None:
        await repository.load_all()
        for call in calls:
            await call()

    asyncio.run(go())


def test_the_index_lists_every_model_with_its_state() -> None:
    factory = Factory()
    factory.errors["b"] = LoadError("no weights")
    repository = factory.repository()
    run(repository)
    assert repository.index() == [
        {"name": "a", "state": "READY", "reason": ""},
        {"name": "b", "state": "UNAVAILABLE", "reason": "no weights"},
    ]
    assert repository.index(ready_only=True) == [{"name": "a", "state": "READY", "reason": ""}]


def test_an_unloaded_model_is_unavailable_and_leaves_the_server_ready() -> None:
    repository = Factory().repository()
    run(repository, lambda: repository.unload("b"))
    assert repository.index()[1] == {"name": "b", "state": "UNAVAILABLE", "reason": "unloaded"}
    with pytest.raises(NotReady, match="model 'b' is not ready: unloaded"):
        repository.get("b")
    assert repository.not_ready() == []
    assert repository.get("a").name == "a"


def test_an_unloaded_model_loads_again_as_a_new_component() -> None:
    factory = Factory()
    repository = factory.repository()
    first = factory.built[1]
    run(repository, lambda: repository.unload("b"), lambda: repository.load("b"))
    assert repository.get("b") is factory.built[-1] is not first
    assert repository.entry("b").state is State.READY


def test_a_reload_swaps_the_new_component_in_once_it_has_loaded() -> None:
    factory = Factory()
    repository = factory.repository()

    async def reload() -> None:
        old = repository.get("a")
        factory.releases["a"] = asyncio.Event()
        reloading = asyncio.create_task(repository.load("a"))
        await asyncio.sleep(0)
        while len(factory.built) < 3 or not factory.built[-1].started.is_set():
            await asyncio.sleep(0.01)
        assert repository.get("a") is old  # still serving while the new one loads
        assert repository.index()[0]["state"] == "READY"
        factory.releases["a"].set()
        await reloading
        assert repository.get("a") is factory.built[-1] is not old

    run(repository, reload)


def test_a_failed_reload_keeps_the_old_component_serving() -> None:
    factory = Factory()
    repository = factory.repository()

    async def reload() -> None:
        old = repository.get("a")
        factory.errors["a"] = OSError("disk gone")
        with pytest.raises(LoadError, match="model 'a' failed to load: OSError: disk gone"):
            await repository.load("a")
        assert repository.get("a") is old

    run(repository, reload)


def test_a_failed_load_of_an_unloaded_model_says_why_in_the_index() -> None:
    factory = Factory()
    repository = factory.repository()

    async def load_broken() -> None:
        factory.errors["b"] = LoadError("no weights")
        with pytest.raises(LoadError, match="model 'b' failed to load: no weights"):
            await repository.load("b")

    run(repository, lambda: repository.unload("b"), load_broken)
    assert repository.index()[1] == {"name": "b", "state": "UNAVAILABLE", "reason": "no weights"}
    assert repository.not_ready() == []


def test_models_the_scan_finds_later_are_listed_and_load() -> None:
    factory = Factory()
    repository = factory.repository()
    factory.specs.append(ComponentSpec("c", "stub"))
    run(repository)
    assert repository.index()[2] == {"name": "c", "state": "UNAVAILABLE", "reason": "not loaded"}
    run(repository, lambda: repository.load("c"))
    assert repository.get("c").name == "c"
    with pytest.raises(NotFound, match=r"3 are served \(a, b, c\)"):
        repository.default()


def test_loading_an_unknown_model_is_not_found_naming_the_known_ones() -> None:
    repository = Factory().repository()
    with pytest.raises(NotFound, match="model 'z' not found; known models: a, b"):
        run(repository, lambda: repository.load("z"))
    with pytest.raises(NotFound, match="model 'z' not found; served models: a, b"):
        run(repository, lambda: repository.unload("z"))


def test_a_model_being_loaded_at_runtime_does_not_make_the_server_unready() -> None:
    factory = Factory()
    repository = factory.repository()
    factory.specs.append(ComponentSpec("c", "stub"))

    async def load_slowly() -> None:
        factory.releases["c"] = asyncio.Event()
        loading = asyncio.create_task(repository.load("c"))
        while "c" not in repository.entries or repository.entries["c"].state is not State.LOADING:
            await asyncio.sleep(0.01)
        assert repository.not_ready() == []
        assert repository.index()[2] == {"name": "c", "state": "LOADING", "reason": "loading"}
        factory.releases["c"].set()
        await loading

    run(repository, load_slowly)


def test_a_frozen_repository_refuses_changes_saying_why() -> None:
    repository = Factory().repository()
    repository.frozen = "needs --workers 1"
    with pytest.raises(NotImplementedByModel, match="needs --workers 1"):
        run(repository, lambda: repository.unload("a"))
    fixed = Repository([Stub("a")])
    with pytest.raises(NotImplementedByModel, match="cannot load or unload models while it runs"):
        run(fixed, lambda: fixed.load("a"))


def test_a_server_with_no_model_left_ready_is_not_ready() -> None:
    repository = Factory().repository()
    seen: list[list[str]] = []

    async def unload(name: str) -> None:
        await repository.unload(name)
        seen.append(repository.not_ready())

    run(repository, lambda: unload("a"), lambda: unload("b"), lambda: repository.load("b"))
    assert seen == [[], ["no model is ready to serve"]]
    assert repository.not_ready() == []


def test_load_reasons_cut_absolute_paths_to_their_last_part() -> None:
    reason = "FileNotFoundError: [Errno 2] No such file or directory: '/srv/models/iris/model.joblib'"
    assert without_paths(reason) == "FileNotFoundError: [Errno 2] No such file or directory: '.../model.joblib'"
    assert without_paths("cannot read s3://bucket/iris/model.joblib") == "cannot read s3://bucket/iris/model.joblib"
