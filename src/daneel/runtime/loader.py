"""From what the user names (a folder, `module:Class`) to a component.

:func:`resolve` reads a serve target into :class:`ComponentSpec`; :func:`build`
turns a spec into a :class:`Component` without loading it yet.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daneel.errors import DaneelError, LoadError
from daneel.runtime import folder, parameters, prepackaged
from daneel.runtime.component import Component, Kind
from daneel.runtime.python import PythonComponent


@dataclass(slots=True)
class ComponentSpec:
    name: str
    implementation: str
    path: Path | None = None
    kind: Kind | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def resolve(target: str, name: str | None = None, extra: dict[str, Any] | None = None) -> ComponentSpec:
    """A spec for a folder or an import path `pkg.module:Class`; `extra` parameters win."""
    path = Path(target)
    if path.is_dir():
        return _from_folder(path.resolve(), name, extra or {})
    if ":" in target and not path.exists():
        return ComponentSpec(name or target.rsplit(":", 1)[1], target, None, None, dict(extra or {}))
    raise LoadError(f"{target}: not a folder or an import path of the form pkg.module:Class")


def _from_folder(path: Path, name: str | None, extra: dict[str, Any]) -> ComponentSpec:
    config = folder.read_config(path)
    implementation = config.implementation or prepackaged.recognise(path) or folder.find_class(path)
    try:
        params = {**parameters.parse(config.parameters, f"{path / folder.CONFIG_FILE}: parameters"), **extra}
    except DaneelError as exc:
        raise LoadError(exc.message) from None
    return ComponentSpec(name or config.name or path.name, implementation, path, config.type, params)


def build(spec: ComponentSpec, policy: str = "auto", executor: Executor | None = None) -> Component:
    if spec.implementation in prepackaged.SERVERS:
        return prepackaged.build(spec.implementation, spec.name, spec.path, spec.parameters, policy, executor)
    return PythonComponent(
        spec.name, spec.implementation, spec.path, spec.parameters, spec.kind, policy=policy, executor=executor
    )
