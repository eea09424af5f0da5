import asyncio
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import pytest

from daneel.runtime.component import Kind
from daneel.runtime.python import PythonComponent


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
