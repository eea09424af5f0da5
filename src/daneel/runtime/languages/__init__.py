"""Components written in Node.js or Java, served from a child process daneel supervises.

:func:`build` makes the component for a folder whose language is not Python; :mod:`.child` runs
and supervises the process, :mod:`.wire` is the protocol spoken to it over a Unix socket, and the
workers that load the user's class on the other side ship in this package (`worker.js`, `java/`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daneel.errors import LoadError
from daneel.runtime.component import Kind
from daneel.runtime.languages import java, nodejs
from daneel.runtime.languages.component import ForeignComponent
from daneel.spec.languages import Language


def build(
    name: str, language: Language, folder: Path, parameters: dict[str, Any], kind: Kind | None, implementation: str
) -> ForeignComponent:
    """The component for `folder`, not started yet: its child starts as the component loads."""
    if language == "nodejs":
        return ForeignComponent(name, language, implementation, folder, nodejs.preparer(folder, parameters), kind)
    if language == "java":
        prepare = java.preparer(folder, parameters, implementation)
        return ForeignComponent(name, language, implementation, folder, prepare, kind)
    raise LoadError(f"{folder}: no runtime for language {language!r}")


def implementation_of(folder: Path, language: Language, configured: str | None) -> str:
    """What the component is called in its folder: the Node.js entry file, or the Java class when named."""
    if language == "nodejs":
        return nodejs.entry(folder).name
    return configured or ""
