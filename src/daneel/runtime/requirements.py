"""Whether the running environment meets the requirements a model was saved with.

Nothing is installed at serve time. Instead each requirement (MLflow writes them
to `requirements.txt` and `conda.yaml`) is compared with the installed
distributions, so that a version skew is named when the model loads rather than
found later as a failing or, worse, a silently different prediction.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from daneel.errors import LoadError

#: Distributions that provide the same import under another name (MLflow pins `mlflow`, skinny installs suffice).
ALIASES = {"mlflow": ("mlflow", "mlflow-skinny"), "mlflow-skinny": ("mlflow-skinny", "mlflow")}


def read(folder: Path) -> list[str]:
    """The requirement lines of `requirements.txt`, else the pip list of `conda.yaml`."""
    path = folder / "requirements.txt"
    if path.is_file():
        return path.read_text().splitlines()
    conda = folder / "conda.yaml"
    if not conda.is_file():
        return []
    try:
        env = yaml.safe_load(conda.read_text()) or {}
    except yaml.YAMLError as exc:
        raise LoadError(f"{conda}: not valid YAML ({exc})") from None
    return _pip_list(env.get("dependencies") if isinstance(env, dict) else None)


def _pip_list(dependencies: Any) -> list[str]:
    for item in dependencies or []:
        if isinstance(item, dict) and isinstance(item.get("pip"), list):
            return [str(line) for line in item["pip"]]
    return []


def unmet(lines: Iterable[str]) -> list[str]:
    """One entry per requirement this environment does not meet, e.g. 'numpy<2 (installed 2.1.0)'.

    Options (`-r`, `--index-url`), paths and URLs cannot be checked and are skipped.
    """
    problems = []
    for line in lines:
        requirement = _parse(line)
        if requirement is None or (requirement.marker and not requirement.marker.evaluate()):
            continue
        installed = _installed(requirement.name)
        if installed is None:
            problems.append(f"{requirement} (not installed)")
        elif not requirement.specifier.contains(installed, prereleases=True):
            problems.append(f"{requirement} (installed {installed})")
    return problems


def _parse(line: str) -> Requirement | None:
    text = line.split(" #", 1)[0].strip()
    if not text or text.startswith(("#", "-")):
        return None
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _installed(name: str) -> str | None:
    canonical = canonicalize_name(name)
    for candidate in ALIASES.get(canonical, (canonical,)):
        try:
            return importlib.metadata.version(candidate)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None
