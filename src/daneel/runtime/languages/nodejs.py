"""The Node.js child: `node worker.js SOCKET ENTRY PARAMETERS`, with the worker shipped in this package."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daneel.errors import LoadError
from daneel.runtime.languages.child import Command, Prepare
from daneel.spec.languages import node_entry

WORKER = Path(__file__).with_name("worker.js")


def entry(folder: Path) -> Path:
    """The file that exports the component: package.json's main, the s2i MODEL_NAME's, or MyModel.js."""
    found = node_entry(folder)
    if found is None or not found.is_file():
        named = f" ({found.name} is missing)" if found is not None else ""
        raise LoadError(f"{folder}: no Node.js component{named}; expected package.json's main, or MyModel.js")
    return found


def preparer(folder: Path, parameters: dict[str, Any]) -> Prepare:
    def prepare() -> Command:
        node = shutil.which("node")
        if node is None:
            raise LoadError(f"{folder}: a Node.js component needs node on the PATH; install Node.js 18 or later")
        script, parameters_json = str(entry(folder)), json.dumps(parameters)

        def command(socket: str) -> Sequence[str]:
            return [node, str(WORKER), socket, script, parameters_json]

        return command

    return prepare
