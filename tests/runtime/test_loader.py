import asyncio
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from daneel.errors import LoadError
from daneel.protocol.payload import Payload
from daneel.runtime import imports, loader
from daneel.runtime.batching import Batched
from daneel.runtime.component import Kind
from daneel.runtime.python import PythonComponent
from daneel.runtime.sklearn import SKLearnComponent

Save = Callable[..., Path]


@pytest.fixture
def regressor_folder(model_folder: Save) -> Path:
    return model_folder(LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0]), name="doubler")


def test_a_model_file_folder_is_served_under_the_folder_name(regressor_folder: Path) -> None:
    spec = loader.resolve(str(regressor_folder))
    assert (spec.name, spec.implementation, spec.path) == ("doubler", "SKLEARN_SERVER", regressor_folder)


def test_daneel_yaml_names_types_and_parameterises(regressor_folder: Path) -> None:
    parameters = "[{name: method, value: predict}, {name: n, value: '2', type: INT}]"
    (regressor_folder / "daneel.yaml").write_text(f"name: twice\ntype: MODEL\nparameters: {parameters}\n")
    spec = loader.resolve(str(regressor_folder))
    assert (spec.name, spec.kind, spec.parameters) == ("twice", Kind.MODEL, {"method": "predict", "n": 2})


def test_the_callers_name_and_parameters_win(regressor_folder: Path) -> None:
    (regressor_folder / "daneel.yaml").write_text("name: twice\nparameters: {method: predict, n: 1}\n")
    spec = loader.resolve(str(regressor_folder), "mine", {"n": 3})
    assert (spec.name, spec.parameters) == ("mine", {"method": "predict", "n": 3})


def test_bad_parameters_in_the_folder_are_a_load_error(regressor_folder: Path) -> None:
    (regressor_folder / "daneel.yaml").write_text("parameters: [{name: n, value: x, type: INT}]\n")
    with pytest.raises(LoadError, match=r"daneel\.yaml: parameters\[0\]\.value: 'x' is not a valid INT"):
        loader.resolve(str(regressor_folder))


def test_s2i_environment_names_the_class(tmp_path: Path) -> None:
    (tmp_path / ".s2i").mkdir()
    (tmp_path / ".s2i" / "environment").write_text("MODEL_NAME=Scorer\nSERVICE_TYPE=TRANSFORMER\n")
    spec = loader.resolve(str(tmp_path))
    assert (spec.implementation, spec.kind) == ("Scorer", Kind.TRANSFORMER)


def test_a_class_in_the_folder_is_found(tmp_path: Path) -> None:
    (tmp_path / "MyModel.py").write_text("class MyModel:\n    def predict(self, X):\n        return X\n")
    assert loader.resolve(str(tmp_path)).implementation == "MyModel"


def test_an_empty_folder_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no model found"):
        loader.resolve(str(tmp_path))


def test_an_import_path_is_served_under_the_class_name() -> None:
    spec = loader.resolve("pkg.models:Scorer", extra={"a": 1})
    assert (spec.name, spec.implementation, spec.path, spec.parameters) == (
        "Scorer",
        "pkg.models:Scorer",
        None,
        {"a": 1},
    )


@pytest.mark.parametrize("target", ["no/such/folder", "Scorer"])
def test_anything_else_is_a_load_error(target: str) -> None:
    with pytest.raises(LoadError, match="not a folder or an import path"):
        loader.resolve(target)


def test_sklearn_specs_build_an_sklearn_component(regressor_folder: Path) -> None:
    spec = loader.resolve(str(regressor_folder), extra={"method": "predict"})
    component = loader.build(spec)
    assert isinstance(component, Batched) and isinstance(component.inner, SKLearnComponent)  # batched by default
    assert component.inner.method == "predict"
    asyncio.run(component.load())
    np.testing.assert_allclose(asyncio.run(component.predict(Payload(np.array([[3.0]])))).data, [6.0])


def test_sklearn_rejects_unknown_parameters(regressor_folder: Path) -> None:
    spec = loader.resolve(str(regressor_folder), extra={"alpha": 1})
    with pytest.raises(LoadError, match=r"unknown parameter\(s\) alpha for SKLEARN_SERVER"):
        loader.build(spec)


def test_sklearn_needs_a_folder() -> None:
    with pytest.raises(LoadError, match="needs a model folder"):
        loader.build(loader.ComponentSpec("m", "SKLEARN_SERVER"))


def test_a_class_spec_builds_a_python_component_that_serves(user_module: Callable[[str], Any]) -> None:
    folder, module = user_module(
        "class Scaler:\n    def __init__(self, factor):\n        self.factor = factor\n\n"
        "    def transform_input(self, X, names):\n        return X * self.factor\n"
    )
    (folder / "daneel.yaml").write_text(f"implementation: {module}.Scaler\nparameters: {{factor: 4}}\n")
    component = loader.build(loader.resolve(str(folder), "scaler"))
    assert isinstance(component, Batched) and isinstance(component.inner, PythonComponent)
    asyncio.run(component.load())
    assert component.kind is Kind.TRANSFORMER
    result = asyncio.run(component.transform_input(Payload(np.array([1.0]))))
    np.testing.assert_array_equal(result.data, [4.0])


# A folder of model folders


@pytest.fixture
def clean_imports(tmp_path: Path) -> Iterator[None]:
    """Forget the modules and sys.path entries that importing this test's folders added."""
    modules, path = set(sys.modules), list(sys.path)
    yield
    for name in set(sys.modules) - modules:
        file = getattr(sys.modules[name], "__file__", None) or ""
        if name.startswith(imports.PACKAGE_PREFIX) or file.startswith(str(tmp_path)):
            del sys.modules[name]
    sys.path[:] = path


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text))
    return folder


@pytest.fixture
def models(tmp_path: Path, model_folder: Save) -> Path:
    """tmp_path/models holding doubler (sklearn), scorer (a class), and folders that are not models."""
    (tmp_path / "models").mkdir()
    model_folder(LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0]), name="models/doubler")
    write(tmp_path / "models", {"scorer/Scorer.py": SCORER, "data/rows.csv": "1,2\n", "notes.md": "# models\n"})
    write(tmp_path / "models", {".hidden/Scorer.py": SCORER, "_drafts/Scorer.py": SCORER, "__pycache__/x.py": ""})
    return tmp_path / "models"


SCORER = """
    class Scorer:
        def predict(self, X, names):
            return X
"""


def test_each_model_subfolder_is_a_model(models: Path) -> None:
    specs = loader.resolve_all(str(models))
    assert [(s.name, s.implementation, s.path) for s in specs] == [
        ("doubler", "SKLEARN_SERVER", models / "doubler"),
        ("scorer", "Scorer", models / "scorer"),
    ]


def test_a_subfolder_is_named_by_its_daneel_yaml(models: Path) -> None:
    (models / "scorer" / "daneel.yaml").write_text("name: ranker\nparameters: {a: 1}\n")
    specs = loader.resolve_all(str(models), extra={"b": 2})
    assert [(s.name, s.parameters) for s in specs] == [("doubler", {"b": 2}), ("ranker", {"a": 1, "b": 2})]


def test_two_models_of_one_name_are_a_load_error_naming_both_folders(models: Path) -> None:
    (models / "scorer" / "daneel.yaml").write_text("name: doubler\n")
    with pytest.raises(LoadError, match=r"/models/doubler and .*/models/scorer are both named 'doubler'"):
        loader.resolve_all(str(models))


def test_a_name_is_for_one_model_only(models: Path) -> None:
    with pytest.raises(LoadError, match=r"holds 2 model folders \(doubler, scorer\); a name is for one model only"):
        loader.resolve_all(str(models), "mine")
    with pytest.raises(LoadError, match=r"holds 2 models \(doubler, scorer\) where one is expected"):
        loader.resolve(str(models))


def test_a_folder_with_a_model_of_its_own_is_one_model(models: Path) -> None:
    write(models, {"Root.py": SCORER.replace("Scorer", "Root")})
    assert [(s.name, s.implementation) for s in loader.resolve_all(str(models))] == [("models", "Root")]


def test_a_broken_model_subfolder_is_a_load_error_naming_it(models: Path) -> None:
    write(models, {"broken/helpers.py": "X = 1\n"})
    with pytest.raises(LoadError, match=r"/models/broken: no model found"):
        loader.resolve_all(str(models))


def test_the_catalog_finds_folders_added_later(models: Path) -> None:
    found = loader.catalog(str(models))
    write(models, {"ranker/Ranker.py": SCORER.replace("Scorer", "Ranker")})
    assert [spec.name for spec in found.specs()] == ["doubler", "ranker", "scorer"]


# Model URIs


def test_a_uri_is_fetched_and_named_after_its_last_segment(regressor_folder: Path, tmp_path: Path) -> None:
    archive = shutil.make_archive(str(tmp_path / "doubler-v2"), "zip", regressor_folder)
    spec = loader.resolve(Path(archive).as_uri(), cache_dir=tmp_path / "cache")
    assert (spec.name, spec.implementation) == ("doubler-v2", "SKLEARN_SERVER")
    assert spec.path is not None and spec.path.parent == tmp_path / "cache"
    assert loader.resolve(archive, "mine", cache_dir=tmp_path / "cache").name == "mine"


def test_the_folders_own_name_wins_over_the_uris(regressor_folder: Path, tmp_path: Path) -> None:
    (regressor_folder / "daneel.yaml").write_text("name: twice\n")
    archive = shutil.make_archive(str(tmp_path / "doubler-v2"), "gztar", regressor_folder)
    assert loader.resolve(Path(archive).as_uri(), cache_dir=tmp_path / "cache").name == "twice"


def test_a_model_file_is_served_on_its_own_as_its_file_uri_is(regressor_folder: Path, tmp_path: Path) -> None:
    (regressor_folder / "daneel.yaml").write_text("implementation: NotThisOne\n")  # the folder's, not the file's
    model_file = regressor_folder / "model.joblib"
    by_path = loader.resolve(str(model_file), cache_dir=tmp_path / "cache")
    by_uri = loader.resolve(model_file.as_uri(), cache_dir=tmp_path / "cache")
    assert (by_path.name, by_path.implementation, by_path.path) == ("doubler", "SKLEARN_SERVER", by_uri.path)
    assert by_uri.name == "doubler"


def test_an_mlmodel_file_stands_for_its_folder(tmp_path: Path) -> None:
    (tmp_path / "flow").mkdir()
    (tmp_path / "flow" / "MLmodel").write_text("flavors: {}\n")
    spec = loader.resolve(str(tmp_path / "flow" / "MLmodel"))
    assert (spec.name, spec.implementation, spec.path) == ("flow", "MLFLOW_SERVER", tmp_path / "flow")


def test_a_file_that_is_no_model_is_a_load_error_naming_the_model_files(tmp_path: Path) -> None:
    (tmp_path / "iris.joblib").write_bytes(b"")
    with pytest.raises(LoadError, match=r"iris.joblib: not a model file \(MLmodel, model.joblib, .*\) or an archive"):
        loader.resolve(str(tmp_path / "iris.joblib"))


# Python modules of the same name in several folders


def serve_folder(folder: Path) -> Any:
    component = loader.build(loader.resolve(str(folder)))
    asyncio.run(component.load())
    return component


def predict(component: Any, value: float) -> float:
    return float(asyncio.run(component.predict(Payload(np.array([[value]])))).data[0][0])


MODEL = "class Model:\n    def predict(self, X, names):\n        return {}\n"
MODEL_USING_HELPERS = """
    import helpers

    class Model:
        def predict(self, X, names):
            return helpers.apply(X)
"""


@pytest.mark.usefixtures("clean_imports")
def test_each_folder_has_its_own_model_and_helpers_modules(tmp_path: Path) -> None:
    times = write(
        tmp_path / "times", {"model.py": MODEL_USING_HELPERS, "helpers.py": "def apply(X):\n    return X * 2\n"}
    )
    plus = write(
        tmp_path / "plus", {"model.py": MODEL_USING_HELPERS, "helpers.py": "def apply(X):\n    return X + 100\n"}
    )
    first, second = serve_folder(times), serve_folder(plus)
    assert (predict(first, 3.0), predict(second, 3.0)) == (6.0, 103.0)


@pytest.mark.usefixtures("clean_imports")
def test_a_folders_module_may_import_its_neighbours_relatively(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "relative",
        {
            "model.py": "from .scale import FACTOR\n\n" + MODEL.format("X * FACTOR"),
            "scale.py": "FACTOR = 5\n",
        },
    )
    assert predict(serve_folder(folder), 2.0) == 10.0


@pytest.mark.usefixtures("clean_imports")
def test_loading_a_folder_again_reads_its_code_again(tmp_path: Path) -> None:
    folder = write(tmp_path / "edited", {"model.py": MODEL.format("X * 2")})
    old = serve_folder(folder)
    (folder / "model.py").write_text(MODEL.format("X * 3"))
    new = serve_folder(folder)
    assert (predict(old, 1.0), predict(new, 1.0)) == (2.0, 3.0)
