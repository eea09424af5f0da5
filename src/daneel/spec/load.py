"""Reading a deployment file: YAML, the one deployment among its documents, its apiVersion, then validation.

Every problem found is reported at once in an :class:`InvalidDeployment`, each
with the line of the file it points at.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from daneel.errors import LoadError
from daneel.spec.model import API_VERSION, KIND, SELDON_API_VERSIONS, SELDON_KIND, Deployment
from daneel.spec.problems import InvalidDeployment, Loc, Problem, from_validation
from daneel.spec.validate import check

#: apiVersion → the kind it goes with.
ACCEPTED = {API_VERSION: KIND, **dict.fromkeys(SELDON_API_VERSIONS, SELDON_KIND)}

Document = tuple[Any, yaml.Node]


#: An annotation naming the components folder, relative to the file, where no `--components DIR` is given.
COMPONENTS_ANNOTATION = "daneel.dev/components"


def load(path: str | Path, components: Path | None = None) -> Deployment:
    """The deployment in the YAML file at `path`; `components` is `--components DIR`, if given.

    Without it, the file's `daneel.dev/components` annotation (a folder relative to the file) serves.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LoadError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise LoadError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    components = components or _annotated_components(text, path.resolve().parent)
    deployment = parse(text, str(path), components)
    deployment.base_dir = path.resolve().parent
    deployment.components_dir = components
    return deployment


def _annotated_components(text: str, base: Path) -> Path | None:
    try:
        data = yaml.safe_load(text)
        folder = data["metadata"]["annotations"][COMPONENTS_ANNOTATION]
    except (yaml.YAMLError, TypeError, KeyError):
        return None  # the full parse says what is wrong, if anything
    return base / str(folder)


def parse(text: str, source: str = "<deployment>", components: Path | None = None) -> Deployment:
    """The deployment in YAML `text`; `source` names it in messages."""
    data, root = document(text, source)
    if not isinstance(data, dict):
        message = f"expected a mapping with apiVersion, kind, metadata and spec; got {_kind_of(data)}"
        raise InvalidDeployment(source, _with_lines([Problem((), message)], root))
    api = _api(data)
    deployment, found = (None, api) if api else _validate(data, components)
    problems = _duplicate_keys(root, (), set()) + found
    if deployment is None or problems:
        raise InvalidDeployment(source, _with_lines(problems, root))
    return deployment


def _validate(data: dict[str, Any], components: Path | None) -> tuple[Deployment | None, list[Problem]]:
    try:
        deployment = Deployment.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        return None, from_validation(exc, Deployment) + _rules_without_unknown_fields(data, exc, components)
    return deployment, check(deployment, components)


def _rules_without_unknown_fields(data: dict[str, Any], exc: ValidationError, components: Path | None) -> list[Problem]:
    """The rules' problems too when only unknown fields spoil the schema, so that one run reports all."""
    errors = exc.errors()
    if any(error["type"] != "extra_forbidden" for error in errors):
        return []
    pruned = copy.deepcopy(data)
    spoilt = [tuple(error["loc"][:-1]) for error in errors]
    for *parents, key in (error["loc"] for error in errors):
        parent: Any = pruned
        for part in parents:
            parent = parent[part]
        parent.pop(key, None)
    try:
        problems = check(Deployment.model_validate(pruned, by_alias=True, by_name=False), components)
    except ValidationError:
        return []
    # an object that lost a misspelt field may break a rule only for want of it (a node without its modelUri)
    return [p for p in problems if not any(p.loc[: len(loc)] == loc for loc in spoilt)]


def document(text: str, source: str) -> Document:
    """The file's one deployment document (data and YAML node): the only document, or the only deployment."""
    documents = _documents(text, source)
    if len(documents) == 1:
        return documents[0]
    deployments = [d for d in documents if isinstance(d[0], dict) and d[0].get("kind") in (KIND, SELDON_KIND)]
    if len(deployments) == 1:
        return deployments[0]
    if not documents:
        raise InvalidDeployment(source, [Problem((), f"empty file; expected a {KIND} or {SELDON_KIND}")])
    if not deployments:
        kinds = ", ".join(sorted({str(d.get("kind")) for d, _ in documents if isinstance(d, dict)})) or "none"
        message = f"none of its {len(documents)} documents is a {KIND} or {SELDON_KIND} (kinds: {kinds})"
        raise InvalidDeployment(source, [Problem((), message)])
    lines = ", ".join(str(node.start_mark.line + 1) for _, node in deployments)
    message = f"{len(deployments)} deployments in one file (at lines {lines}); expected one per file"
    raise InvalidDeployment(source, [Problem((), message)])


def _documents(text: str, source: str) -> list[Document]:
    try:
        nodes = [node for node in yaml.compose_all(text, Loader=yaml.SafeLoader) if node is not None]
        constructor = yaml.SafeLoader("")
        documents = [(constructor.construct_document(node), node) for node in nodes]
    except yaml.MarkedYAMLError as exc:
        raise InvalidDeployment(source, [_yaml_problem(exc)]) from None
    except yaml.YAMLError as exc:
        raise InvalidDeployment(source, [Problem((), f"invalid YAML: {exc}")]) from None
    return [(data, node) for data, node in documents if data is not None]


def _yaml_problem(exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    context = f" ({exc.context})" if exc.context else ""
    column = f", column {mark.column + 1}" if mark else ""
    line = mark.line + 1 if mark else None
    return Problem((), f"invalid YAML{column}: {exc.problem}{context}", line)


def _api(data: dict[str, Any]) -> list[Problem]:
    api, kind = data.get("apiVersion"), data.get("kind")
    expected_kind = ACCEPTED.get(api) if isinstance(api, str) else None
    if expected_kind is None:
        got = "it is missing" if api is None else f"got {api!r}"
        return [Problem(("apiVersion",), f"expected {_accepted()}; {got}")]
    if kind != expected_kind:
        got = "it is missing" if kind is None else f"got {kind!r}"
        return [Problem(("kind",), f"expected {expected_kind} with apiVersion {api}; {got}")]
    return []


def _accepted() -> str:
    seldon = ", ".join(SELDON_API_VERSIONS)
    return f"{API_VERSION} (kind {KIND}) or one of {seldon} (kind {SELDON_KIND})"


def _kind_of(data: Any) -> str:
    return "a list" if isinstance(data, list) else f"{type(data).__name__} {data!r}"


def _duplicate_keys(node: yaml.Node, loc: Loc, seen: set[int]) -> list[Problem]:
    """YAML lets a later key silently replace an earlier one; in a deployment that is always a mistake."""
    if id(node) in seen:  # an alias seen before; also ends cycles
        return []
    seen.add(id(node))
    problems = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            if name in first:
                problems.append(Problem((*loc, name), f"duplicate key; the first is on line {first[name]}", line))
            first.setdefault(name, line)
            problems += _duplicate_keys(value, (*loc, name), seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += _duplicate_keys(item, (*loc, i), seen)
    return problems


def _with_lines(problems: list[Problem], root: yaml.Node) -> list[Problem]:
    """Problems with their lines, in the file's order."""
    located = [p if p.line else dataclasses.replace(p, line=line(root, p.loc)) for p in problems]
    return sorted(located, key=lambda p: p.line or 0)


def line(root: yaml.Node, loc: Loc) -> int:
    """The line of the field at `loc`, or of the nearest field above it that the file has."""
    node, found = root, root.start_mark.line + 1
    for part in loc:
        step = _child(node, part)
        if step is None:
            break
        found, node = step
    return found


def _child(node: yaml.Node, part: str | int) -> tuple[int, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in reversed(node.value):  # the last of duplicate keys is the one loaded
            if key.value == part:
                return key.start_mark.line + 1, value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item.start_mark.line + 1, item
    return None


def as_model_deployment(text: str, source: str = "<deployment>") -> dict[str, Any]:
    """A valid deployment file (Seldon's or daneel's) as daneel's ModelDeployment: same spec, no status."""
    parse(text, source)
    data, _ = document(text, source)
    kept = {key: value for key, value in data.items() if key not in ("apiVersion", "kind", "status")}
    return {"apiVersion": API_VERSION, "kind": KIND, **kept}
