import asyncio
import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daneel.dataplane.dataplane import DataPlane
from daneel.dataplane.repository import Repository
from daneel.runtime.component import Component
from daneel.runtime.python import PythonComponent
from daneel.runtime.sklearn import SKLearnComponent

_modules = itertools.count()


@pytest.fixture
def python_model(tmp_path: Path) -> Iterator[Callable[..., PythonComponent]]:
    """An unloaded component for class `Model` in `source`, written as a module of its own."""
    written: list[str] = []

    def make(source: str, name: str = "py", **parameters: Any) -> PythonComponent:
        module = f"dataplane_model_{next(_modules)}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        written.append(module)
        return PythonComponent(name, f"{module}.Model", tmp_path, parameters)

    yield make
    for module in written:
        sys.modules.pop(module, None)
    for entry in {str(tmp_path), str(tmp_path.resolve())}:
        while entry in sys.path:
            sys.path.remove(entry)


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
