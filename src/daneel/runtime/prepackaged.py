"""Prepackaged servers: saved model files served without user code.

Each server is one :class:`Server` entry: Seldon's name, the files that
recognise a model folder, and where its component class lives. Modules are
imported only when a model needs them, so serving an sklearn model never
imports xgboost or onnxruntime.
"""

from __future__ import annotations

import importlib
import sys
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daneel.errors import InvalidInput, LoadError
from daneel.runtime.component import Component
from daneel.runtime.imports import LOADING
from daneel.runtime.invoke import Invoker


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    files: tuple[str, ...]
    target: str  # "module:Class" of a SavedModel subclass
    extra: str  # the pip extra that installs its framework
    #: The modules it loads a model with; a supervisor imports them before forking workers.
    frameworks: tuple[str, ...] = ()
    row_wise: bool = True  # one output row per input row, so requests can be batched by default
    #: Files that must all be there beside one of `files` for a folder to be recognised as this server's.
    requires: tuple[str, ...] = ()


SERVERS = {
    server.name: server
    for server in (
        # First: an MLflow folder also holds its flavour's own file (model.pkl, model.onnx, ...).
        Server("MLFLOW_SERVER", ("MLmodel",), "daneel.runtime.mlflow:MLflowComponent", "mlflow", ("mlflow.pyfunc",)),
        Server(
            "SKLEARN_SERVER",
            ("model.joblib", "model.pkl"),
            "daneel.runtime.sklearn:SKLearnComponent",
            "sklearn",
            ("joblib", "sklearn"),
        ),
        Server(
            "XGBOOST_SERVER",
            ("model.json", "model.ubj", "model.bst"),
            "daneel.runtime.xgboost:XGBoostComponent",
            "xgboost",
            ("xgboost",),
        ),
        Server(
            "LIGHTGBM_SERVER", ("model.txt",), "daneel.runtime.lightgbm:LightGBMComponent", "lightgbm", ("lightgbm",)
        ),
        Server("ONNX_SERVER", ("model.onnx",), "daneel.runtime.onnx:ONNXComponent", "onnx", ("onnxruntime",)),
        Server(
            "HUGGINGFACE_SERVER",
            ("model.safetensors", "model.safetensors.index.json"),
            "daneel.runtime.huggingface:HuggingFaceComponent",
            "huggingface",
            ("torch", "transformers"),
            row_wise=False,  # a pipeline answers per row already; text generation batches on its own
            requires=("config.json", "tokenizer_config.json"),
        ),
        Server(
            "PYTORCH_SERVER",
            ("model.pt", "model.pt2"),
            "daneel.runtime.pytorch:PyTorchComponent",
            "pytorch",
            ("torch",),
        ),
        # No frameworks to import before forking workers: each worker imports TensorFlow itself, whose
        # runtime is not documented to survive a fork.
        Server("TENSORFLOW_SERVER", ("saved_model.pb",), "daneel.runtime.tensorflow:TensorFlowComponent", "tensorflow"),
        Server(
            "CATBOOST_SERVER", ("model.cbm",), "daneel.runtime.catboost:CatBoostComponent", "catboost", ("catboost",)
        ),
    )
}


class SavedModel(Component):
    """Base of the prepackaged servers: a model folder plus typed parameters.

    Subclasses list the parameters they accept in `PARAMETERS`; any other
    parameter is a load error naming the ones expected.
    """

    PARAMETERS: tuple[str, ...] = ()

    def __init__(
        self,
        name: str,
        path: Path,
        parameters: dict[str, Any] | None = None,
        policy: str = "auto",
        executor: Executor | None = None,
    ) -> None:
        parameters = dict(parameters or {})
        unknown = [key for key in parameters if key not in self.PARAMETERS]
        if unknown:
            expected = ", ".join(self.PARAMETERS) or "none"
            raise LoadError(
                f"{name}: unknown parameter(s) {', '.join(unknown)} for {self.implementation}; expected {expected}"
            )
        self.name = name
        self.path = path
        self.parameters = parameters
        self._policy = policy
        self._executor = executor
        self._call: Invoker | None = None
        self.configure()

    def configure(self) -> None:
        """Read `self.parameters` into attributes; a bad value is a LoadError naming the parameter."""

    async def call(self, X: Any, bad_input: tuple[type[Exception], ...] = (ValueError,)) -> Any:
        """Call the loaded model; the errors a framework raises for bad data are the request's (400)."""
        assert self._call is not None, "predict called before load"
        try:
            return await self._call(X)
        except bad_input as exc:
            raise InvalidInput("input", str(exc).strip()) from exc

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None) -> str | None:
        """Parameter `key`, which must be one of `allowed` when given."""
        value = self.parameters.get(key, default)
        if value is not None and value not in allowed:
            raise LoadError(f"parameter {key}: {value!r} is not one of {', '.join(allowed)}")
        return value if value is None else str(value)

    def model_file(self) -> Path:
        """The first of this server's model files present in the folder."""
        files = SERVERS[self.implementation].files
        for name in files:
            if (self.path / name).is_file():
                return self.path / name
        raise LoadError(f"{self.path}: no {' or '.join(files)}")


def recognise(folder: Path) -> str | None:
    """The prepackaged server a folder's model file asks for, if any."""
    for server in SERVERS.values():
        found = any((folder / name).is_file() for name in server.files)
        if found and all((folder / name).is_file() for name in server.requires):
            return server.name
    return None


def row_wise(implementation: str) -> bool:
    """Whether a prepackaged server answers row by row, so that its requests are batched by default."""
    server = SERVERS.get(implementation)
    return server is not None and server.row_wise


def model_files() -> list[str]:
    return [name for server in SERVERS.values() for name in server.files]


def build(
    implementation: str,
    name: str,
    path: Path | None,
    parameters: dict[str, Any],
    policy: str,
    executor: Executor | None,
) -> Component:
    server = SERVERS[implementation]
    if path is None:
        raise LoadError(f"{name}: {implementation} needs a model folder or modelUri")
    module_name, _, class_name = server.target.partition(":")
    cls: type[SavedModel] = getattr(importlib.import_module(module_name), class_name)
    return cls(name, path, parameters, policy, executor)


def needs(module: str, extra: str) -> Any:
    """Import a framework, or fail with the pip command that installs it."""
    found = sys.modules.get(module)
    if found is not None:
        return found
    try:
        with LOADING:  # not beside another thread's import or model read (runtime/imports.py)
            return importlib.import_module(module)
    except ImportError as exc:
        raise LoadError(f"this model needs {module} ({exc}): pip install 'daneel[{extra}]'") from None
