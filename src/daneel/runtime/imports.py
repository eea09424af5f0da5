"""Import a user's class from a folder or the Python path."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from daneel.errors import LoadError


def import_class(implementation: str, path: Path | None) -> type:
    """Import `pkg.module:Class`, or from a folder `Class` (in Class.py) or `module.Class`."""
    module_name, _, class_name = _split(implementation)
    search = str(path) if path is not None else str(Path.cwd())
    if search not in sys.path:
        sys.path.insert(0, search)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise LoadError(f"cannot import {module_name!r} for {implementation}: {type(exc).__name__}: {exc}") from exc
    found = getattr(module, class_name, None)
    if not isinstance(found, type):
        raise LoadError(f"{implementation}: module {module_name!r} has no class {class_name!r}")
    return found


def _split(implementation: str) -> tuple[str, str, str]:
    if ":" in implementation:
        return implementation.partition(":")
    if "." in implementation:
        module, _, cls = implementation.rpartition(".")
        return module, ".", cls
    return implementation, "", implementation
