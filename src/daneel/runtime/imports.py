"""Import a user's class from a model folder or the Python path.

A folder's class (`Class` in Class.py, or `module.Class`) is imported as a module of a package
of its own, named after the folder's path, so that two folders that each hold a `model.py` give
two modules rather than one shadowing the other, and `from . import helpers` works. Each import
reads the files again, so loading a folder anew picks up edited code.

The folder is also put on `sys.path`, for `import helpers` and for pickles that name the
folder's modules. While a folder's module is imported, the top-level modules of other model
folders are hidden, so its `import helpers` finds its own `helpers.py`; afterwards such a name
stays with the folder that imported it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import re
import sys
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from daneel.errors import LoadError

T = TypeVar("T")

PACKAGE_PREFIX = "daneel_folder_"
#: Held while a model's code or files are read on a thread, and while a framework is first imported.
#: Models load concurrently, and two threads importing the same framework at once (directly, by
#: unpickling, or through a library that imports its flavour) can hand one of them a partially
#: initialised module ("cannot import name 'clone' from partially initialized module
#: 'sklearn.base'"); sys.modules and sys.path are process-wide as well. So reading is one model at a
#: time in a process, which costs little: it is mostly imports and unpickling, which hold the GIL.
LOADING = threading.RLock()
_importing = LOADING  # sys.modules is only ever read through a copy: other threads import too


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on a thread, holding LOADING: how a runtime reads its model's files and code."""
    return await asyncio.to_thread(_holding, fn, *args)


def _holding(fn: Callable[..., T], *args: Any) -> T:
    with LOADING:
        return fn(*args)


def import_class(implementation: str, path: Path | None) -> type:
    """Import `pkg.module:Class`, or from a folder `Class` (in Class.py) or `module.Class`."""
    module_name, separator, class_name = _split(implementation)
    try:
        if path is None or separator == ":":
            module = _import_global(module_name, path)
        else:
            module = _import_from_folder(module_name, path.resolve())
    except Exception as exc:
        raise LoadError(f"cannot import {module_name!r} for {implementation}: {type(exc).__name__}: {exc}") from exc
    found = getattr(module, class_name, None)
    if not isinstance(found, type):
        raise LoadError(f"{implementation}: module {module_name!r} has no class {class_name!r}")
    return found


def _import_global(module_name: str, path: Path | None) -> types.ModuleType:
    with _importing:
        _on_path(path if path is not None else Path.cwd())
        return importlib.import_module(module_name)


def _import_from_folder(module_name: str, folder: Path) -> types.ModuleType:
    with _importing:
        package = _fresh_package(folder)
        _on_path(folder)
        with _apart_from_other_folders(folder):
            return importlib.import_module(f"{package}.{module_name}")


def package_name(folder: Path) -> str:
    """The package a folder's modules are imported into: stable per path, also across processes."""
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:10]
    return f"{PACKAGE_PREFIX}{re.sub(r'[^0-9A-Za-z_]', '_', folder.name)}_{digest}"


def _fresh_package(folder: Path) -> str:
    name = package_name(folder)
    for key in [k for k in sys.modules.copy() if k == name or k.startswith(name + ".")]:
        del sys.modules[key]
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    return name


def _on_path(folder: Path) -> None:
    entry = str(folder)
    if entry not in sys.path:
        sys.path.insert(0, entry)


@contextlib.contextmanager
def _apart_from_other_folders(folder: Path) -> Iterator[None]:
    """Hide the top-level modules of every model folder while `folder`'s module is imported.

    This folder's own are hidden too, so that they are read again; another folder's get their
    names back afterwards.
    """
    folders = _model_folders()
    hidden = {name: module for name, module in sys.modules.copy().items() if _folder_of(module, folders) is not None}
    for name in hidden:
        del sys.modules[name]
    try:
        yield
    finally:
        for name, module in hidden.items():
            if name not in sys.modules or _folder_of(module, folders) != folder:
                sys.modules[name] = module


def _model_folders() -> list[Path]:
    packages = [m for k, m in sys.modules.copy().items() if k.startswith(PACKAGE_PREFIX) and "." not in k]
    return [Path(p) for package in packages for p in getattr(package, "__path__", [])]


def _folder_of(module: types.ModuleType | None, folders: list[Path]) -> Path | None:
    """The model folder a top-level (not packaged) module was read from, if any."""
    if module is None or module.__name__.startswith(PACKAGE_PREFIX):
        return None
    file = getattr(module, "__file__", None)
    if not file:
        return None
    return next((folder for folder in folders if Path(file).is_relative_to(folder)), None)


def _split(implementation: str) -> tuple[str, str, str]:
    if ":" in implementation:
        return implementation.partition(":")
    if "." in implementation:
        module, _, cls = implementation.rpartition(".")
        return module, ".", cls
    return implementation, "", implementation
