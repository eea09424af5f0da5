"""From what the user names (a folder, a model URI, `module:Class`) to components.

:func:`catalog` reads a serve target, fetching a URI first; its :meth:`Catalog.specs` gives a
:class:`ComponentSpec` per model, and reads the target again each time it is called, so that
model folders added to a folder of folders since are found. :func:`build` turns a spec into a
:class:`Component` without loading it yet.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daneel.errors import DaneelError, LoadError
from daneel.observe.custom import UserMetrics
from daneel.observe.telemetry import OFF, Telemetry
from daneel.runtime import batching, folder, languages, parameters, prepackaged, storage
from daneel.runtime.component import Component, Kind
from daneel.runtime.python import PythonComponent
from daneel.spec.languages import Language, language_of
from daneel.spec.model import Batching

_SKIPPED = ("__pycache__", "node_modules")


@dataclass(slots=True)
class ComponentSpec:
    name: str
    implementation: str
    path: Path | None = None
    kind: Kind | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    batching: Batching | None = None  # None: the default for its implementation
    language: Language = "python"  # nodejs and java run in a child process


@dataclass(frozen=True, slots=True)
class Catalog:
    """The models a serve target holds: a local folder (fetched, for a URI) or an import path.

    `name` is the caller's name for a single model; `default_name` the one a URI gives it.
    """

    root: Path | None
    implementation: str = ""
    name: str | None = None
    default_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def specs(self) -> list[ComponentSpec]:
        """A spec per model, read afresh: one for a model folder, one per model subfolder of a folder of folders."""
        if self.root is None:
            name = self.name or self.implementation.rsplit(":", 1)[1]
            return [ComponentSpec(name, self.implementation, None, None, dict(self.extra))]
        if is_model_folder(self.root):
            return [_from_folder(self.root, self.name, self.default_name, self.extra)]
        folders = model_subfolders(self.root)
        if not folders:  # says what a model folder should hold
            return [_from_folder(self.root, self.name, self.default_name, self.extra)]
        if self.name is not None:
            names = ", ".join(path.name for path in folders)
            raise LoadError(f"{self.root} holds {len(folders)} model folders ({names}); a name is for one model only")
        return _unique([_from_folder(path, None, None, self.extra) for path in folders])


def catalog(
    target: str,
    name: str | None = None,
    extra: dict[str, Any] | None = None,
    cache_dir: Path | None = None,
    progress: storage.Progress | None = None,
) -> Catalog:
    """What `target` names: a folder, a model URI, a local archive or model file (fetched now), or pkg.module:Class."""
    extra = dict(extra or {})
    path = Path(target)
    if path.name == "MLmodel" and path.is_file():
        path = path.parent  # an MLflow model is the folder its MLmodel file describes
    if storage.is_uri(target) or _single_file(path):
        uri = target if storage.is_uri(target) else str(path.resolve())  # named after its folder, as file:// is
        root = storage.fetch(uri, cache_dir, progress)
        return Catalog(root, name=name, default_name=storage.model_name(uri, root), extra=extra)
    if path.is_dir():
        return Catalog(path.resolve(), name=name, extra=extra)
    if ":" in target and not path.exists():
        return Catalog(None, target, name, extra=extra)
    if path.is_file():
        raise LoadError(f"{target}: not a model file ({', '.join(prepackaged.model_files())}) or an archive")
    raise LoadError(f"{target}: not a folder or an import path of the form pkg.module:Class")


def _single_file(path: Path) -> bool:
    """A local archive, or one model file: served as its file:// URI is, from a folder of its own."""
    return path.is_file() and (storage.is_archive(path.name) or path.name in prepackaged.model_files())


def resolve_all(
    target: str,
    name: str | None = None,
    extra: dict[str, Any] | None = None,
    cache_dir: Path | None = None,
    progress: storage.Progress | None = None,
) -> list[ComponentSpec]:
    """A spec per model that `target` holds; `extra` parameters win over each folder's own."""
    return catalog(target, name, extra, cache_dir, progress).specs()


def resolve(
    target: str,
    name: str | None = None,
    extra: dict[str, Any] | None = None,
    cache_dir: Path | None = None,
    progress: storage.Progress | None = None,
) -> ComponentSpec:
    """The spec of the one model `target` holds; a folder of several is a LoadError."""
    specs = resolve_all(target, name, extra, cache_dir, progress)
    if len(specs) != 1:
        names = ", ".join(spec.name for spec in specs)
        raise LoadError(f"{target}: holds {len(specs)} models ({names}) where one is expected")
    return specs[0]


def is_model_folder(path: Path) -> bool:
    """Whether a folder holds a model of its own: configuration, a model file or Python files."""
    return (
        (path / folder.CONFIG_FILE).is_file()
        or (path / folder.S2I_FILE).is_file()
        or prepackaged.recognise(path) is not None
        or any(path.glob("*.py"))
        or language_of(path) != "python"
    )


def model_subfolders(path: Path) -> list[Path]:
    """The subfolders of a folder of folders that hold models; hidden ones are passed over."""
    subfolders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    return [p for p in subfolders if p.name not in _SKIPPED and is_model_folder(p)]


def _from_folder(path: Path, name: str | None, default_name: str | None, extra: dict[str, Any]) -> ComponentSpec:
    config = folder.read_config(path)
    language = language_of(path) if config.implementation not in prepackaged.SERVERS else "python"
    if language != "python":
        implementation = languages.implementation_of(path, language, config.implementation)
    else:
        implementation = config.implementation or prepackaged.recognise(path) or folder.find_class(path)
    try:
        params = {**parameters.parse(config.parameters, f"{path / folder.CONFIG_FILE}: parameters"), **extra}
    except DaneelError as exc:
        raise LoadError(exc.message) from None
    name = name or config.name or default_name or path.name
    return ComponentSpec(name, implementation, path, config.type, params, config.batching, language)


def _unique(specs: list[ComponentSpec]) -> list[ComponentSpec]:
    seen: dict[str, ComponentSpec] = {}
    for spec in specs:
        if spec.name in seen:
            raise LoadError(
                f"{seen[spec.name].path} and {spec.path} are both named {spec.name!r}; give one another name"
                f" in its {folder.CONFIG_FILE}"
            )
        seen[spec.name] = spec
    return specs


def build(
    spec: ComponentSpec, policy: str = "auto", executor: Executor | None = None, telemetry: Telemetry = OFF
) -> Component:
    """The spec's component, batched as its `batching` says or as its implementation does by default."""
    if spec.language != "python" and spec.path is not None:
        component: Component = languages.build(
            spec.name, spec.language, spec.path, spec.parameters, spec.kind, spec.implementation
        )
    elif spec.implementation in prepackaged.SERVERS:
        component = prepackaged.build(spec.implementation, spec.name, spec.path, spec.parameters, policy, executor)
    else:
        metrics = UserMetrics(telemetry.metrics.registry) if telemetry.metrics else None
        component = PythonComponent(
            spec.name, spec.implementation, spec.path, spec.parameters, spec.kind, policy, executor, metrics
        )
    sizes = telemetry.metrics.batch_size.histogram(spec.name) if telemetry.metrics else None
    return batching.wrap(component, spec.batching, prepackaged.row_wise(spec.implementation), sizes)
