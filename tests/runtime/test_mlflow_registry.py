"""models:/ and runs:/ URIs, resolved and fetched through a real MLflow tracking server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from conftest import free_port
from daneel.errors import LoadError
from daneel.runtime import loader, mlflow_registry, storage
from daneel.runtime.mlflow_registry import Reference
from mlflow_tracking import Tracking, tracking_server


@dataclass
class Registered:
    """`wine`, registered twice: version 1 predicts like `first`, version 2 like `second`; alias champion → 1."""

    tracking: Tracking
    first: Any
    second: Any
    X: np.ndarray
    run_id: str


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:
    from sklearn.datasets import load_wine
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = load_wine(return_X_y=True)
    first = LogisticRegression(max_iter=5000).fit(X, y)
    second = DummyClassifier(strategy="constant", constant=2).fit(X, y)
    with tracking_server(tmp_path_factory.mktemp("mlflow")) as tracking:
        assert tracking.register("wine", first, X) == "1"
        assert tracking.register("wine", second, X) == "2"
        client = tracking.client()
        client.set_registered_model_alias("wine", "champion", "1")
        run_id = client.get_model_version("wine", "1").run_id
        yield Registered(tracking, first, second, X[::20], run_id)


@pytest.fixture
def tracking_env(registered: Registered, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """MLFLOW_TRACKING_URI set for this test; the cache folder to fetch into."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered.tracking.uri)
    return tmp_path / "cache"


@pytest.mark.parametrize(
    ("uri", "parts"),
    [
        ("models:/wine/3", ("models", "wine", "3")),
        ("models:/wine@champion", ("models", "wine", "@champion")),
        ("models:/wine/latest", ("models", "wine", "latest")),
        ("models:/wine/Production/", ("models", "wine", "Production")),
        ("runs:/0a1b/model", ("runs", "0a1b", "model")),
        ("runs:/0a1b/nested/model.pkl", ("runs", "0a1b", "nested/model.pkl")),
    ],
)
def test_uris_are_taken_apart(uri: str, parts: tuple[str, str, str]) -> None:
    reference = mlflow_registry.parse(uri)
    assert (reference.scheme, reference.name, reference.ref) == parts


@pytest.mark.parametrize("uri", ["models:/wine", "models:/wine@", "models:/wine/3/model", "models:/", "runs:/0a1b"])
def test_other_forms_are_refused_naming_those_accepted(uri: str) -> None:
    with pytest.raises(LoadError) as caught:
        mlflow_registry.parse(uri)
    assert caught.value.message == (
        f"{uri}: expected models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest or runs:/RUN_ID/PATH"
    )


def test_a_version_is_pinned_without_asking_any_server() -> None:
    assert mlflow_registry.resolve("models:/wine/3", environ={}) == Reference("models:/wine/3", "models", "wine", "3")


def test_an_alias_needs_a_tracking_server() -> None:
    with pytest.raises(LoadError) as caught:
        mlflow_registry.resolve("models:/wine@champion", environ={})
    assert "set MLFLOW_TRACKING_URI" in caught.value.message


def test_a_server_that_does_not_answer_fails_at_once() -> None:
    environ = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(LoadError) as caught:
        mlflow_registry.resolve("models:/wine@champion", environ=environ)
    assert caught.value.message.startswith("models:/wine@champion: cannot connect to the MLflow tracking server at")


@pytest.mark.parametrize(
    ("uri", "version"), [("models:/wine@champion", "1"), ("models:/wine/latest", "2"), ("models:/wine/None", "2")]
)
def test_aliases_latest_and_stages_resolve_to_a_version(registered: Registered, uri: str, version: str) -> None:
    environ = registered.tracking.env
    assert mlflow_registry.resolve(uri, environ).uri == f"models:/wine/{version}"


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("models:/wine@nobody", "Registered model alias nobody not found"),
        ("models:/nothing/latest", "no versions"),
        ("models:/wine/Production", "registered model 'wine' has no versions in stage 'Production'"),
    ],
)
def test_what_the_registry_lacks_is_a_load_error(registered: Registered, uri: str, reason: str) -> None:
    with pytest.raises(LoadError) as caught:
        mlflow_registry.resolve(uri, registered.tracking.env)
    assert caught.value.message.startswith(f"{uri}: ")
    assert reason in caught.value.message


def test_an_alias_is_fetched_as_the_version_it_names_and_cached_by_version(
    registered: Registered, tracking_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = storage.fetch("models:/wine@champion", tracking_env)
    assert folder.parent == tracking_env
    assert folder.name.endswith("-wine-1")
    assert (folder / "MLmodel").is_file()
    assert mlflow_registry.registered_version(folder) == "1"
    assert storage.model_name("models:/wine@champion", folder) == "wine"
    registered.tracking.client().set_registered_model_alias("wine", "champion", "2")
    try:
        moved = storage.fetch("models:/wine@champion", tracking_env)
    finally:
        registered.tracking.client().set_registered_model_alias("wine", "champion", "1")
    assert moved != folder
    assert mlflow_registry.registered_version(moved) == "2"
    assert storage.fetch("models:/wine/1", tracking_env) == folder


def test_a_cached_version_is_reused(registered: Registered, tracking_env: Path) -> None:
    folder = storage.fetch("models:/wine/2", tracking_env)
    (folder / "marker").write_text("this copy")
    server = registered.tracking.uri
    assert storage.fetch("models:/wine/2", tracking_env) == folder
    assert storage.cache_key("models:/wine/2") == folder.name
    # Another tracking server's version 2 is another model, and asks that server.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", server.replace("127.0.0.1", "localhost"))
        assert storage.cache_key("models:/wine/2") != folder.name


def test_the_version_is_read_from_daneels_record_not_from_files_mlflow_may_write(
    registered: Registered, tracking_env: Path
) -> None:
    folder = storage.fetch("models:/wine/2", tracking_env)
    assert yaml.safe_load((folder / mlflow_registry.RECORD_FILE).read_text()) == {
        "uri": "models:/wine/2",
        "name": "wine",
        "version": "2",
    }
    (folder / "registered_model_meta").unlink(missing_ok=True)  # what older MLflow releases wrote, undocumented
    assert mlflow_registry.registered_version(folder) == "2"


def test_a_cached_version_without_daneels_record_is_fetched_again(registered: Registered, tracking_env: Path) -> None:
    folder = storage.fetch("models:/wine/1", tracking_env)
    (folder / mlflow_registry.RECORD_FILE).unlink()  # as an earlier daneel cached it
    assert storage.fetch("models:/wine/1", tracking_env) == folder
    assert mlflow_registry.registered_version(folder) == "1"


def test_a_runs_uri_fetches_the_runs_artifact(registered: Registered, tracking_env: Path) -> None:
    folder = storage.fetch(f"runs:/{registered.run_id}/model", tracking_env)
    assert (folder / "MLmodel").is_file()
    assert mlflow_registry.registered_version(folder) is None


def test_the_served_model_predicts_and_reports_its_version(registered: Registered, tracking_env: Path) -> None:
    spec = loader.resolve("models:/wine/2", cache_dir=tracking_env)
    assert (spec.name, spec.implementation) == ("wine", "MLFLOW_SERVER")
    component = loader.build(spec)
    asyncio.run(component.load())
    assert component.metadata().v2()["versions"] == ["2"]
    from daneel.protocol.payload import Payload

    answer = asyncio.run(component.predict(Payload(registered.X, [])))
    assert np.asarray(answer.data).tolist() == registered.second.predict(registered.X).tolist()


def test_daneel_fetch_resolves_the_alias_into_a_folder(
    registered: Registered, tracking_env: Path, tmp_path: Path
) -> None:
    target = storage.download("models:/wine@champion", tmp_path / "models")
    assert (target / "MLmodel").is_file()
    assert mlflow_registry.registered_version(target) == "1"


@pytest.mark.parametrize(
    ("uri", "versions"), [("models:/wine/2", ["2"]), ("models:/wine@champion", ["1"]), ("runs:/{run_id}/model", [])]
)
def test_a_deployment_node_takes_a_registry_uri_as_its_model_uri(
    registered: Registered, tracking_env: Path, uri: str, versions: list[str]
) -> None:
    from daneel.graph.build import BuildContext, build_graph
    from daneel.spec.model import Predictor

    node = {"name": "wine", "implementation": "MLFLOW_SERVER", "modelUri": uri.format(run_id=registered.run_id)}
    predictor = Predictor.model_validate({"name": "p", "graph": node})
    graph = build_graph(predictor, BuildContext(fetch=lambda target: storage.fetch(target, tracking_env)))
    asyncio.run(graph.load())
    [model] = graph.parts()
    assert model.metadata().v2()["versions"] == versions
