"""Inference graphs: the executor, built-in routers and combiners, and remote nodes."""

from daneel.graph.build import BuildContext, build_graph
from daneel.graph.executor import Graph, GraphNode
from daneel.graph.state import Store, open_store

__all__ = ["BuildContext", "Graph", "GraphNode", "Store", "build_graph", "open_store"]
