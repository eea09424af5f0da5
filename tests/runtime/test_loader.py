import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from daneel.errors import LoadError
from daneel.protocol.payload import Payload
from daneel.runtime import loader
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
    assert isinstance(component, SKLearnComponent)
    assert component.method == "predict"
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
    assert isinstance(component, PythonComponent)
    asyncio.run(component.load())
    assert component.kind is Kind.TRANSFORMER
    result = asyncio.run(component.transform_input(Payload(np.array([1.0]))))
    np.testing.assert_array_equal(result.data, [4.0])
