import asyncio
import itertools
import pickle
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest

from daneel.runtime.component import Kind
from daneel.runtime.python import PythonComponent

_modules = itertools.count()


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[Callable[[str], tuple[Path, str]]]:
    """Write `source` as a module of its own in tmp_path; return the folder and module name.

    Each module gets a fresh name, as Python caches imported modules by name.
    """
    written: list[str] = []

    def write(source: str) -> tuple[Path, str]:
        name = f"user_model_{next(_modules)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)
        return tmp_path, name

    yield write
    for name in written:
        sys.modules.pop(name, None)
    for entry in {str(tmp_path), str(tmp_path.resolve())}:
        while entry in sys.path:
            sys.path.remove(entry)


@pytest.fixture
def python_component(user_module: Callable[[str], tuple[Path, str]]) -> Callable[..., PythonComponent]:
    """A PythonComponent named "m" serving class `cls` of `source`, loaded unless `load` is false."""

    def make(
        source: str, cls: str = "Model", kind: Kind | None = None, load: bool = True, **parameters: Any
    ) -> PythonComponent:
        folder, module = user_module(source)
        component = PythonComponent("m", f"{module}.{cls}", folder, parameters, kind)
        if load:
            asyncio.run(component.load())
        return component

    return make


@pytest.fixture
def model_folder(tmp_path: Path) -> Callable[..., Path]:
    """Save a fitted estimator as tmp_path/<name>/<file>, with joblib or (for .pkl) pickle."""

    def save(estimator: Any, file: str = "model.joblib", name: str = "model") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        if file.endswith(".pkl"):
            (folder / file).write_bytes(pickle.dumps(estimator))
        else:
            joblib.dump(estimator, folder / file)
        return folder

    return save
