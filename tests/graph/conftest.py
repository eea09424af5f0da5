"""Fixtures for graph tests: shared state stores and Python components as graph nodes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daneel.graph.executor import GraphNode
from daneel.graph.state import SqliteStore
from daneel.runtime.component import Kind
from daneel.runtime.python import PythonComponent

from .helpers import node, run


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def sqlite_stores(state_file: Path) -> Iterator[Callable[[], SqliteStore]]:
    """Open SqliteStores on one file, as each worker process would; all are closed at teardown."""
    opened: list[SqliteStore] = []

    def open_one() -> SqliteStore:
        store = SqliteStore(state_file)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        run(store.close())


@pytest.fixture
def python_node(user_module: Callable[[str], tuple[Path, str]]) -> Callable[..., GraphNode]:
    """A graph node named "m" serving class `cls` of `source`: `python_node(source, *children, cls=, kind=)`."""

    def make(
        source: str, *children: GraphNode, cls: str = "Model", kind: Kind = Kind.MODEL, **options: Any
    ) -> GraphNode:
        folder, module = user_module(source)
        component = PythonComponent("m", f"{module}.{cls}", folder, {}, kind)
        return node(component, *children, kind=kind, **options)

    return make
