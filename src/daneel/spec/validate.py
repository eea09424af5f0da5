"""The rules a deployment's schema cannot say: traffic, unique names, graph shapes, typed parameters.

:func:`check` returns every problem at once; each names the path of the field at fault.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from daneel.spec.model import (
    BUILTIN_TYPES,
    LANGUAGE_SERVERS,
    PREPACKAGED_SERVERS,
    Deployment,
    DeploymentSpec,
    Detector,
    DetectorAction,
    DetectorKind,
    Logger,
    Method,
    Node,
    NodeType,
    Predictor,
    node_type,
)
from daneel.spec.problems import Loc, Problem, path

_PREDICTORS: Loc = ("spec", "predictors")
_FAN_OUT = (NodeType.ROUTER, NodeType.COMBINER)
_BANDITS = ("EPSILON_GREEDY", "THOMPSON_SAMPLING")
_LANGUAGE_NAMES = {"nodejs": "Node.js", "java": "Java"}
_SELDON_NAME = re.compile(r"[A-Z][A-Z0-9_]*")  # an implementation spelt as Seldon's; a class otherwise
#: Values Seldon accepts for these spec fields.
_CHOICES = {
    "protocol": ("seldon", "v2", "tensorflow", "kfserving"),
    "transport": ("rest", "grpc"),
    "serverType": ("rpc", "kafka"),
}


def check(deployment: Deployment, components: Path | None = None) -> list[Problem]:
    """Every problem of a deployment whose schema is valid; `components` is `--components DIR`, if given."""
    spec = deployment.spec
    problems = [*_choices(spec), *_predictor_names(spec.predictors), *_traffic(spec.predictors), *_sticky(spec)]
    problems += _logger(spec.logger, ("spec", "logger"))
    for i, predictor in enumerate(spec.predictors):
        problems += _graph(predictor, (*_PREDICTORS, i), components)
    return problems


def image_nodes(deployment: Deployment) -> list[tuple[Predictor, Node]]:
    """Nodes that name only a container image; served locally from `--components DIR/<name>`."""
    return [(p, node) for p in deployment.spec.predictors for node in p.graph.walk() if node.image_only]


def _predictor_names(predictors: list[Predictor]) -> list[Problem]:
    problems = []
    first: dict[str, int] = {}
    shadow: int | None = None
    for i, predictor in enumerate(predictors):
        if predictor.name in first:
            other = path((*_PREDICTORS, first[predictor.name]))
            problems.append(Problem((*_PREDICTORS, i, "name"), f"{predictor.name!r} is already the name of {other}"))
        first.setdefault(predictor.name, i)
        if predictor.shadow and shadow is not None:
            other = path((*_PREDICTORS, shadow))
            problems.append(Problem((*_PREDICTORS, i, "shadow"), f"one shadow predictor at most; {other} is one"))
        elif predictor.shadow:
            shadow = i
    return problems


def _traffic(predictors: list[Predictor]) -> list[Problem]:
    served = [(i, p) for i, p in enumerate(predictors) if not p.shadow]
    if not served:
        return [Problem(_PREDICTORS, "expected at least one predictor that is not a shadow")]
    if len(served) == 1:
        i, predictor = served[0]
        if predictor.traffic in (0, 100):
            return []
        message = f"a single predictor takes every request; expected 100 or no traffic, got {predictor.traffic}"
        return [Problem((*_PREDICTORS, i, "traffic"), message)]
    total = sum(p.traffic for _, p in served)
    if total == 100:
        return []
    shares = ", ".join(f"{p.name} {p.traffic}" for _, p in served)
    message = f"traffic of the predictors that are not shadows sums to {total} ({shares}); expected 100"
    return [Problem(_PREDICTORS, message)]


def _choices(spec: DeploymentSpec) -> list[Problem]:
    given = {"protocol": spec.protocol, "transport": spec.transport, "serverType": spec.server_type}
    return [
        Problem(("spec", field), f"expected one of {', '.join(_CHOICES[field])}; got {value!r}")
        for field, value in given.items()
        if value is not None and value not in _CHOICES[field]
    ]


def _sticky(spec: DeploymentSpec) -> list[Problem]:
    sticky = spec.sticky
    if sticky is None or (sticky.header is None) != (sticky.field is None):
        return []
    return [Problem(("spec", "sticky"), "expected exactly one of header or field")]


def _graph(predictor: Predictor, loc: Loc, components: Path | None) -> list[Problem]:
    problems = _detectors(predictor, loc)
    seen: dict[str, Loc] = {}
    for node, node_loc in _walk(predictor.graph, (*loc, "graph")):
        if node.name in seen:
            where = path(seen[node.name])
            problems.append(Problem((*node_loc, "name"), f"{node.name!r} is already the name of {where}"))
        seen.setdefault(node.name, node_loc)
        problems += [*_type(node, node_loc), *_children(node, node_loc), *_parameters(node, node_loc)]
        problems += [*_endpoint(node, node_loc), *_source(node, node_loc, predictor, components)]
        problems += [*_logger(node.logger, (*node_loc, "logger")), *_watches(node, node_loc)]
    return problems


def _detectors(predictor: Predictor, loc: Loc) -> list[Problem]:
    """Each detector's own rules, and names unique among all the predictor's detectors (they label its metrics)."""
    problems = []
    seen: dict[str, Loc] = {}
    holders = [(predictor.detectors, loc)] + [
        (node.detectors, node_loc) for node, node_loc in _walk(predictor.graph, (*loc, "graph"))
    ]
    for detectors, holder in holders:
        for i, detector in enumerate(detectors):
            here = (*holder, "detectors", i)
            if detector.name in seen:
                problems.append(
                    Problem((*here, "name"), f"{detector.name!r} is already the name of {path(seen[detector.name])}")
                )
            seen.setdefault(detector.name, here)
            problems += _detector(detector, here)
    return problems


def _watches(node: Node, loc: Loc) -> list[Problem]:
    """Detectors on a node that has an input of its own to watch."""
    if not node.detectors or node_type(node) is not NodeType.COMBINER:
        return []
    message = "a COMBINER's input is its children's answers; put detectors on its children or the predictor"
    return [Problem((*loc, "detectors"), message)]


def _detector(detector: Detector, loc: Loc) -> list[Problem]:
    problems = []
    if not (detector.model_uri or detector.implementation):
        message = "expected modelUri (a folder `daneel detector fit` wrote) or implementation (pkg.module:Class)"
        problems.append(Problem(loc, message))
    if detector.kind is DetectorKind.DRIFT and detector.synchronous:
        message = "a drift detector tests windows of many requests, off the request path; expected async"
        problems.append(Problem((*loc, "mode"), message))
    if detector.action is DetectorAction.REJECT and detector.kind is DetectorKind.DRIFT:
        problems.append(Problem((*loc, "action"), "only an outlier detector can reject a request; expected tag"))
    elif detector.action is DetectorAction.REJECT and not detector.synchronous:
        message = "an async detector scores requests after they are answered, so it cannot reject them; expected sync"
        problems.append(Problem((*loc, "action"), message))
    return problems


def _logger(logger: Logger | None, loc: Loc) -> list[Problem]:
    """At most one of url and file (with neither, events go where `--request-log` says); URLs over HTTP."""
    if logger is None:
        return []
    if logger.url is not None and logger.file is not None:
        return [Problem(loc, "expected one of url or file, not both")]
    if logger.url is not None and (urlsplit(logger.url).scheme not in ("http", "https") or not _host(logger.url)):
        return [Problem((*loc, "url"), f"expected an http:// or https:// URL; got {logger.url!r}")]
    return []


def _host(url: str) -> str | None:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:  # a port that is not a number
        return None
    return parts.hostname


def _walk(node: Node, loc: Loc) -> Iterator[tuple[Node, Loc]]:
    yield node, loc
    for i, child in enumerate(node.children):
        yield from _walk(child, (*loc, "children", i))


def _type(node: Node, loc: Loc) -> list[Problem]:
    problems = []
    fixed = BUILTIN_TYPES.get(node.implementation or "")
    given = node.type
    if fixed is not None and given is not None and given not in (NodeType.UNKNOWN_TYPE, fixed):
        message = f"{node.implementation} is a {fixed.value}; expected {fixed.value} or no type, got {given.value}"
        problems.append(Problem((*loc, "type"), message))
    if node.implementation in PREPACKAGED_SERVERS and not (node.model_uri or node.remote):
        problems.append(Problem(loc, f"{node.implementation} serves saved model files; expected a modelUri"))
    implementation = node.implementation or ""
    if implementation in LANGUAGE_SERVERS and not node.model_uri:
        language = _LANGUAGE_NAMES[LANGUAGE_SERVERS[implementation]]
        problems.append(
            Problem(loc, f"{implementation} serves the {language} component in a folder; expected a modelUri")
        )
    if fixed is None and implementation not in LANGUAGE_SERVERS and _SELDON_NAME.fullmatch(implementation):
        problems.append(Problem((*loc, "implementation"), _unknown_implementation(implementation)))
    if fixed is None and given is NodeType.UNKNOWN_TYPE and not node.methods:
        problems.append(Problem((*loc, "methods"), "a node of type UNKNOWN_TYPE must list its methods"))
    return problems


def _unknown_implementation(name: str) -> str:
    known = [*BUILTIN_TYPES, *LANGUAGE_SERVERS]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown implementation {name!r}; {hint}expected one of {', '.join(known)}, or pkg.module:Class"


def _children(node: Node, loc: Loc) -> list[Problem]:
    kind = node_type(node)
    count = len(node.children)
    here = (*loc, "children")
    if kind in _FAN_OUT and count == 0:
        return [Problem(here, f"a {kind.value} needs at least one child")]
    if node.implementation == "RANDOM_ABTEST" and count != 2:
        return [Problem(here, f"RANDOM_ABTEST routes between exactly 2 children, got {count}")]
    fans_out = kind in _FAN_OUT or any(m in (Method.ROUTE, Method.AGGREGATE) for m in node.methods or [])
    if count > 1 and not fans_out:
        names = ", ".join(child.name for child in node.children)
        message = (
            f"a {kind.value} passes its output on to one child at most, got {count} ({names}); every child would be "
            "called and all answers but one thrown away: put several children under a ROUTER or COMBINER"
        )
        return [Problem(here, message)]
    return _branches(node, loc) if node.implementation in _BANDITS else []


def _branches(node: Node, loc: Loc) -> list[Problem]:
    for i, parameter in enumerate(node.parameters):
        if parameter.name != "n_branches":
            continue
        try:
            branches = parameter.typed()
        except ValueError:
            return []  # _parameters reports it
        if branches != len(node.children):
            message = f"n_branches is {branches} but the router has {len(node.children)} children; expected them equal"
            return [Problem((*loc, "parameters", i, "value"), message)]
    return []


def _parameters(node: Node, loc: Loc) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for i, parameter in enumerate(node.parameters):
        if parameter.name in seen:
            problems.append(Problem((*loc, "parameters", i, "name"), f"parameter {parameter.name!r} is given twice"))
        seen.add(parameter.name)
        try:
            parameter.typed()
        except ValueError as exc:
            problems.append(Problem((*loc, "parameters", i, "value"), str(exc)))
    return problems


def _endpoint(node: Node, loc: Loc) -> list[Problem]:
    if node.remote and node.endpoint is not None and node.endpoint.service_port is None:
        return [Problem((*loc, "endpoint", "service_port"), "a remote node (with service_host) needs service_port")]
    return []


def _source(node: Node, loc: Loc, predictor: Predictor, components: Path | None) -> list[Problem]:
    if not node.image_only:
        return []
    if components is not None:
        folder = components / node.name
        if folder.is_dir():
            return []
        return [Problem(loc, f"expected a folder {folder} for this node (it names no implementation or modelUri)")]
    if predictor.container(node.name) is not None:
        return []
    message = (
        "names no implementation, modelUri, endpoint or container image; expected one of them, "
        f"or serve with --components DIR where DIR/{node.name} holds its code"
    )
    return [Problem(loc, message)]
