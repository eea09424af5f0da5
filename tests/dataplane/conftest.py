import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daneel.dataplane.dataplane import DataPlane
from daneel.dataplane.repository import Repository
from daneel.runtime.component import Component
from daneel.runtime.python import PythonComponent
from daneel.runtime.sklearn import SKLearnComponent


@pytest.fixture
def python_model(user_module: Callable[[str], tuple[Path, str]]) -> Callable[..., PythonComponent]:
    """An unloaded component for class `Model` in `source`, written as a module of its own."""

    def make(source: str, name: str = "py", **parameters: Any) -> PythonComponent:
        folder, module = user_module(source)
        return PythonComponent(name, f"{module}.Model", folder, parameters)

    return make


@pytest.fixture
def iris_model(iris: Any) -> SKLearnComponent:
    """An unloaded SKLEARN_SERVER component named "iris" over the suite's iris classifier."""
    return SKLearnComponent("iris", iris.path)


@pytest.fixture
def serving() -> Callable[..., DataPlane]:
    """A DataPlane over `components`, loaded as a server loads them."""

    def make(*components: Component) -> DataPlane:
        repository = Repository(list(components))
        asyncio.run(repository.load_all())
        return DataPlane(repository)

    return make
