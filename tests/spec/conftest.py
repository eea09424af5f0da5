"""Factory fixtures for the deployment-file tests: write YAML, wrap a spec or a graph, collect problems."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daneel.spec import InvalidDeployment, parse

HEADER = """\
apiVersion: daneel.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: demo
"""


def _problems(text: str, **options: Any) -> list[str]:
    try:
        parse(textwrap.dedent(text), "demo.yaml", **options)
    except InvalidDeployment as exc:
        return [str(problem) for problem in exc.problems]
    return []


def _with_spec(spec: str) -> str:
    return HEADER + "spec:\n" + textwrap.indent(textwrap.dedent(spec).lstrip("\n"), "  ")


def _with_graph(graph: str) -> str:
    return _with_spec(
        "predictors:\n- name: p\n  graph:\n" + textwrap.indent(textwrap.dedent(graph).lstrip("\n"), "    ")
    )


@pytest.fixture
def problems() -> Callable[..., list[str]]:
    """`problems(text, components=None)`: every problem of deployment `text` as `path: message`; [] if valid."""
    return _problems


@pytest.fixture
def with_spec() -> Callable[[str], str]:
    """`with_spec(yaml)`: a ModelDeployment named demo with this (dedented) spec."""
    return _with_spec


@pytest.fixture
def with_graph() -> Callable[[str], str]:
    """`with_graph(yaml)`: a deployment of one predictor `p` whose graph is this (dedented) node."""
    return _with_graph


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """`write(text, name="deploy.yaml")`: dedented `text` written in tmp_path; returns its path."""

    def write_file(text: str, name: str = "deploy.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    return write_file
