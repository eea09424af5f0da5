"""Recognise what a model folder holds.

In order: an explicit `daneel.yaml`; Seldon's `.s2i/environment` (MODEL_NAME,
SERVICE_TYPE, PARAMETERS); a saved model file; a `.py` file with a class.
"""

from __future__ import annotations

import ast
import json
import shlex
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daneel.errors import LoadError
from daneel.runtime import prepackaged
from daneel.runtime.component import Kind
from daneel.spec.model import Batching

CONFIG_FILE = "daneel.yaml"
S2I_FILE = ".s2i/environment"
_METHODS = ("predict", "transform_input", "transform_output", "route", "aggregate", "send_feedback")
CONTRACT = (*_METHODS, *(f"{m}_raw" for m in _METHODS), "generate")  # generate: text generation (generation.md)


class FolderConfig(BaseModel):
    """The optional `daneel.yaml` of a model folder."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Name the model is served under; the folder's name by default.")
    implementation: str | None = Field(
        None, description="SKLEARN_SERVER, a class in the folder (MyModel or module.Class), or pkg.module:Class."
    )
    type: Kind | None = Field(None, description="MODEL, TRANSFORMER, OUTPUT_TRANSFORMER, ROUTER or COMBINER.")
    parameters: list[dict[str, Any]] | dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments for the component, typed list or plain object."
    )
    requirements: str | None = Field(None, description="A requirements file, installed when the image is built.")
    batching: Batching | None = Field(
        None, description="Dynamic batching: max_batch_size (1 turns it off) and max_latency_ms."
    )


def read_config(folder: Path) -> FolderConfig:
    path = folder / CONFIG_FILE
    if path.is_file():
        return _parse_yaml(path)
    s2i = folder / S2I_FILE
    if s2i.is_file():
        return _parse_s2i(s2i)
    return FolderConfig()


def _parse_yaml(path: Path) -> FolderConfig:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        return FolderConfig.model_validate(raw)
    except yaml.YAMLError as exc:
        raise LoadError(f"{path}: not valid YAML ({exc})") from None
    except ValidationError as exc:
        raise LoadError(f"{path}: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """A pydantic error as 'field.path: message' lines."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _parse_s2i(path: Path) -> FolderConfig:
    env = _s2i_env(path)
    kind = env.get("SERVICE_TYPE")
    try:
        service_type = Kind(kind) if kind else None
    except ValueError:
        raise LoadError(f"{path}: SERVICE_TYPE {kind!r} is not one of {', '.join(k.value for k in Kind)}") from None
    try:
        parameters = _s2i_parameters(env.get("PARAMETERS"))
        return FolderConfig(implementation=env.get("MODEL_NAME") or None, type=service_type, parameters=parameters)
    except json.JSONDecodeError as exc:
        raise LoadError(f"{path}: PARAMETERS is not JSON ({exc.msg})") from None
    except ValidationError as exc:
        raise LoadError(f"{path}: {describe(exc)}") from None


def _s2i_env(path: Path) -> dict[str, str]:
    """The variables of a shell-style environment file, unquoted as the shell would."""
    env: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            try:
                env[key.strip()] = " ".join(shlex.split(value))
            except ValueError as exc:
                raise LoadError(f"{path}, line {number}: {key.strip()}: {exc}") from None
    return env


def _s2i_parameters(text: str | None) -> list[dict[str, Any]] | dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, (list, dict)) else {}


def find_class(folder: Path) -> str:
    """The `module.Class` of the one component class in the folder's .py files."""
    candidates = []
    for path in sorted(folder.glob("*.py")):
        for cls in _component_classes(path):
            if cls == path.stem:
                return cls
            candidates.append(f"{path.stem}.{cls}")
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise LoadError(
            f"{folder}: no model found; expected {', '.join(prepackaged.model_files())}, a .py file with a class"
            f" that has one of {', '.join(_METHODS)} (or their _raw forms) or generate, or a {CONFIG_FILE}"
        )
    raise LoadError(f"{folder}: several classes ({', '.join(candidates)}); name one as implementation in {CONFIG_FILE}")


def _component_classes(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(), str(path))
    except SyntaxError as exc:
        raise LoadError(f"{path}: {exc}") from None
    classes = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            methods = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            if methods & set(CONTRACT):
                classes.append(node.name)
    return classes
