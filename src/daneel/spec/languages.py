"""Which language a component folder is written in: Python unless it holds a Node.js or Java component.

A folder is Node.js when it has a `package.json` or a `.js` file named by Seldon's `MODEL_NAME`
(in `.s2i/environment`), or `MyModel.js`; it is Java when it has a `pom.xml`, a `.jar` or `.java`
sources. Both `daneel serve` (to start the right child process) and `daneel build`/`daneel manifest`
(to pick the right image) ask here, so the two never disagree. Reading only file names and two small
files, it is cheap enough to call on every folder a serve target holds.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Literal

Language = Literal["python", "nodejs", "java"]
LANGUAGES: tuple[Language, ...] = ("python", "nodejs", "java")
DEFAULT_NODE_ENTRY = "MyModel.js"
#: What makes a folder each language's, as error messages name it.
MARKERS: dict[Language, tuple[str, ...]] = {
    "python": ("a .py file with a class", "a saved model"),
    "nodejs": ("package.json", "MyModel.js", "the .js file .s2i/environment's MODEL_NAME names"),
    "java": ("pom.xml", "a .jar", ".java sources"),
}
_S2I_FILE = ".s2i/environment"
_JAVA_SKIPPED = ("target", "node_modules", ".git")


def language_of(folder: Path) -> Language:
    """The language of the component in `folder`; "python" for anything that is not Node.js or Java."""
    if not folder.is_dir():
        return "python"
    if node_entry(folder) is not None:
        return "nodejs"
    if (folder / "pom.xml").is_file() or any(folder.glob("*.jar")) or _has_java_sources(folder):
        return "java"
    return "python"


def node_entry(folder: Path) -> Path | None:
    """The Node.js file to load: `package.json`'s `main`, the s2i `MODEL_NAME`'s `.js` file, or `MyModel.js`.

    A `package.json` whose `main` (or `index.js`) is missing gives way to the s2i file or `MyModel.js`
    where one is there, as in Seldon's s2i projects, whose `package.json` only lists dependencies.
    """
    package = folder / "package.json"
    if package.is_file():
        main = folder / (_package_main(package) or "index.js")
        return main if main.is_file() else _named_entry(folder) or main
    return _named_entry(folder)


def _named_entry(folder: Path) -> Path | None:
    named = s2i_model_name(folder)
    if named and (folder / f"{named}.js").is_file():
        return folder / f"{named}.js"
    default = folder / DEFAULT_NODE_ENTRY
    return default if default.is_file() else None


def s2i_model_name(folder: Path) -> str | None:
    """`MODEL_NAME` from Seldon's `.s2i/environment`, when the folder has one."""
    path = folder / _S2I_FILE
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() == "MODEL_NAME":
            try:
                return " ".join(shlex.split(value)) or None
            except ValueError:
                return None
    return None


def _package_main(package: Path) -> str | None:
    try:
        data = json.loads(package.read_text())
    except (OSError, ValueError):
        return None
    main = data.get("main") if isinstance(data, dict) else None
    return main if isinstance(main, str) and main else None


def _has_java_sources(folder: Path) -> bool:
    if any(folder.glob("*.java")):
        return True
    src = folder / "src"
    return src.is_dir() and any(p for p in src.rglob("*.java") if not set(p.parts) & set(_JAVA_SKIPPED))
