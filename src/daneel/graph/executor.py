"""The inference-graph executor: a predictor's whole graph seen as one component.

The walk follows Seldon's executor. At each node a MODEL predicts, or a
TRANSFORMER transforms the input; then, if the node has children, a ROUTER picks
one of them (-1 picks all, -2 none) or else all run, concurrently; a COMBINER
aggregates their outputs, or else the first one passes on; last, an
OUTPUT_TRANSFORMER transforms the result. Feedback walks back down the path the
routers recorded in the response's `meta.routing`.

Nodes in process exchange :class:`Payload` objects, never re-encoded. A node's
failure names the node and keeps its error's code (a node's bad input stays a
400); a node slower than its `timeout_seconds` is a :class:`ModelTimeout`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from daneel.errors import DaneelError, InvalidInput, LoadError, ModelError, describe, within
from daneel.graph import calls, messages
from daneel.observe import logs
from daneel.observe.metrics import Counter, Histogram
from daneel.observe.payloads import PayloadLogger
from daneel.observe.telemetry import OFF, ServerMetrics, Telemetry
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback
from daneel.runtime.component import Component, Kind, Metadata

T = TypeVar("T")

PREDICT = "predict"
TRANSFORM_INPUT = "transform_input"
ROUTE = "route"
AGGREGATE = "aggregate"
TRANSFORM_OUTPUT = "transform_output"
SEND_FEEDBACK = "send_feedback"

#: What a router answers to send a request to all its children, or to none of them.
ALL_CHILDREN = -1
NO_CHILDREN = -2

#: The calls each node type implies, as in Seldon.
TYPE_CALLS: dict[Kind | None, frozenset[str]] = {
    Kind.MODEL: frozenset({PREDICT, SEND_FEEDBACK}),
    Kind.TRANSFORMER: frozenset({TRANSFORM_INPUT}),
    Kind.OUTPUT_TRANSFORMER: frozenset({TRANSFORM_OUTPUT}),
    Kind.ROUTER: frozenset({ROUTE, SEND_FEEDBACK}),
    Kind.COMBINER: frozenset({AGGREGATE}),
    None: frozenset(),
}


def calls_for(kind: Kind | None, methods: Iterable[str] | None = None) -> frozenset[str]:
    """The calls the executor makes on a node: its type's, or those `methods` lists.

    `methods` (Seldon's TRANSFORM_INPUT, ROUTE, AGGREGATE, TRANSFORM_OUTPUT,
    SEND_FEEDBACK) replaces what the type implies; it cannot name predict, so a
    MODEL always predicts. `kind` None is Seldon's UNKNOWN_TYPE.
    """
    if methods is None:
        return TYPE_CALLS[kind]
    named = frozenset(method.lower() for method in methods)
    return named | {PREDICT} if kind is Kind.MODEL else named


@dataclass(slots=True)
class GraphNode:
    """A node as the executor sees it: a component, the calls to make on it, its children."""

    component: Component
    calls: frozenset[str]
    children: list[GraphNode] = field(default_factory=list)
    timeout_s: float | None = None
    label: str | None = None  # what meta.requestPath reports; the component's implementation by default
    logger: PayloadLogger | None = None  # logs the node's input and output (request logging)

    @property
    def name(self) -> str:
        return self.component.name

    def walk(self) -> Iterator[GraphNode]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(slots=True)
class _Trace:
    """What one request's walk recorded; concurrent branches each keep their own, joined in child order."""

    path: dict[str, str] = field(default_factory=dict)
    routing: dict[str, int] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    metrics: list[Any] = field(default_factory=list)

    def record(self, request: Payload, result: Payload) -> None:
        """Keep the tags a node set or changed, and the metrics it reported."""
        after = result.meta.get("tags")
        if after and isinstance(after, dict):
            before = request.meta.get("tags") or {}
            self.tags.update((k, v) for k, v in after.items() if k not in before or before[k] != v)
        metrics = result.meta.get("metrics")
        if isinstance(metrics, list):
            self.metrics.extend(metrics)

    def join(self, others: list[_Trace]) -> None:
        for other in others:
            self.path.update(other.path)
            self.routing.update(other.routing)
            self.tags.update(other.tags)
            self.metrics.extend(other.metrics)


class Graph(Component):
    """A predictor's graph served as one component; each node is also a part served by name."""

    kind = Kind.MODEL
    implementation = "graph"

    def __init__(self, name: str, root: GraphNode, deployment: str = "", telemetry: Telemetry = OFF) -> None:
        self.name = name
        self.root = root
        self.deployment = deployment
        self.telemetry = telemetry
        self._timers: dict[tuple[str, str, str], Histogram] = {}
        self._branches: dict[tuple[str, int], Counter] = {}
        _check_unique(root)

    def parts(self) -> list[Component]:
        return [node.component for node in self.root.walk()]

    def outage(self) -> str | None:
        return next((f"{part.name}: {down}" for part in self.parts() if (down := part.outage())), None)

    async def load(self) -> None:
        parts = self.parts()
        results = await asyncio.gather(*(part.load() for part in parts), return_exceptions=True)
        for part, result in zip(parts, results, strict=True):
            if isinstance(result, DaneelError) and _names(result, part.name):
                raise result
            if isinstance(result, BaseException):
                raise LoadError(f"{part.name}: {describe(result)}") from result

    async def close(self) -> None:
        await asyncio.gather(*(part.close() for part in self.parts()), return_exceptions=True)

    async def predict(self, payload: Payload) -> Payload:
        trace = _Trace(tags=dict(payload.meta.get("tags") or {}))
        result = await self._predict(self.root, payload, trace)
        meta = {**result.meta, "tags": trace.tags, "routing": trace.routing, "requestPath": trace.path}
        meta.pop("metrics", None)
        if trace.metrics:
            meta["metrics"] = trace.metrics
        if "puid" in payload.meta:
            meta["puid"] = payload.meta["puid"]
        return Payload(result.data, result.names, meta, payload.form, result.output_name)

    async def send_feedback(self, feedback: Feedback) -> Payload:
        """Route feedback as the request went; the answer's `requestPath` names the nodes that got it."""
        trace = _Trace()
        await self._feedback(self.root, feedback, trace)
        return Payload([], [], {"requestPath": trace.path})

    async def health(self) -> Any:
        nodes = list(self.root.walk())
        statuses = await _concurrently([self._run(node, "health", node.component.health()) for node in nodes])
        return {node.name: status for node, status in zip(nodes, statuses, strict=True) if status is not None} or None

    def metadata(self) -> Metadata:
        """Seldon's graph metadata: every node's own, and the graph's inputs and outputs."""
        models = {node.name: node.component.metadata() for node in self.root.walk()}
        first, last = models[self.root.name], models[_last(self.root).name]
        raw = {
            "name": self.name,
            "models": {name: meta.v1() for name, meta in models.items()},
            "graphinputs": [spec.as_dict() for spec in first.inputs],
            "graphoutputs": [spec.as_dict() for spec in last.outputs],
        }
        return Metadata(self.name, "graph", inputs=first.inputs, outputs=last.outputs, raw=raw)

    # The walk

    async def _predict(self, node: GraphNode, payload: Payload, trace: _Trace) -> Payload:
        trace.path[node.name] = node.label or node.component.implementation
        if PREDICT in node.calls:
            payload = await self._call(node, PREDICT, payload, trace)
        elif TRANSFORM_INPUT in node.calls:
            payload = await self._call(node, TRANSFORM_INPUT, payload, trace)
        if node.children:
            payload = await self._children(node, payload, trace)
        if TRANSFORM_OUTPUT in node.calls:
            payload = await self._call(node, TRANSFORM_OUTPUT, payload, trace)
        return payload

    async def _children(self, node: GraphNode, payload: Payload, trace: _Trace) -> Payload:
        choice = await self._route(node, payload, trace) if ROUTE in node.calls else ALL_CHILDREN
        if choice == NO_CHILDREN:
            return payload
        chosen = _chosen(node, choice)
        if len(chosen) == 1:  # a chain: nothing runs beside the child, so it records straight into this trace
            outputs = [await self._predict(chosen[0], payload, trace)]
        else:
            traces = [_Trace() for _ in chosen]
            outputs = await _concurrently([self._predict(c, payload, t) for c, t in zip(chosen, traces, strict=True)])
            trace.join(traces)
        if AGGREGATE not in node.calls:
            return outputs[0]
        logger = node.logger if node.logger is not None and node.logger.wants() else None
        if logger is not None:
            logger.node_input(payload)  # as Seldon logs a combiner: the message its branches were given
        result = await self._run(node, AGGREGATE, calls.aggregate(node.component, [_clean(p) for p in outputs]))
        trace.record(outputs[0], result)
        result.form = payload.form
        if logger is not None:
            logger.node_output(result, payload)
        return result

    async def _route(self, node: GraphNode, payload: Payload, trace: _Trace) -> int:
        choice = await self._run(node, ROUTE, calls.route(node.component, _clean(payload)))
        count = len(node.children)
        if not NO_CHILDREN <= choice < count:
            raise ModelError(
                f"{node.name}: route returned {choice}; expected a child index from 0 to {count - 1},"
                f" {ALL_CHILDREN} (all children) or {NO_CHILDREN} (none)"
            )
        trace.routing[node.name] = choice
        if self.telemetry.metrics is not None:
            self._branch(self.telemetry.metrics, node.name, choice).inc()
        return choice

    async def _call(self, node: GraphNode, method: str, payload: Payload, trace: _Trace) -> Payload:
        request = _clean(payload)
        logger = node.logger if node.logger is not None and node.logger.wants() else None
        if logger is not None:
            logger.node_input(request)
        result: Payload = await self._run(node, method, calls.transform(node.component, method, request))
        trace.record(request, result)
        result.form = payload.form
        if logger is not None:
            logger.node_output(result, request)
        return result

    async def _run(self, node: GraphNode, method: str, call: Awaitable[T]) -> T:
        """Await one call on a node within its timeout; any failure names the node. Timed when metrics are on."""
        # Most nodes have no timeout: they skip the cost of arming and disarming one on every call.
        if node.timeout_s is not None:
            call = within(node.timeout_s, call, f"{node.name}: {method} took longer than {node.timeout_s} s")
        tracing = self.telemetry.tracing
        if tracing is not None and method != "health":
            call = tracing.span(f"{node.name}.{method}", self._span_attributes(node, method), call)
        metrics = None if method == "health" else self.telemetry.metrics
        start, code = time.perf_counter() if metrics is not None else 0.0, "ok"
        # Lines logged while the node runs, the user's own among them, name it (about 0.1 µs a call).
        where = logs.where.set((self.deployment or self.name, self.name, node.name))
        try:
            return await call
        except DaneelError as exc:
            code = exc.code.value
            if _names(exc, node.name):
                raise
            raise _renamed(exc, f"{node.name}: {exc.message}") from exc
        except Exception as exc:
            code = ModelError.code.value
            raise ModelError(f"{node.name}: {describe(exc)}") from exc
        except BaseException:
            code = "cancelled"
            raise
        finally:
            logs.where.reset(where)
            if metrics is not None:
                self._timer(metrics, node, method, code).observe(time.perf_counter() - start)

    def _span_attributes(self, node: GraphNode, method: str) -> dict[str, str]:
        implementation = node.label or node.component.implementation
        names = {"daneel.deployment": self.deployment, "daneel.predictor": self.name, "daneel.node": node.name}
        return {**names, "daneel.method": method, "daneel.implementation": implementation}

    def _timer(self, metrics: ServerMetrics, node: GraphNode, method: str, code: str) -> Histogram:
        """A node's latency series, made once per node, method and code.

        Seldon's executor-to-component series views it: one observation records both.
        """
        key = (node.name, method, code)
        found = self._timers.get(key)
        if found is None:
            image = node.label or node.component.implementation
            found = self._timers[key] = metrics.node_seconds.histogram(
                self.deployment, self.name, node.name, method, code
            )
            seldon = (self.deployment, self.name, "", node.name, image, "", method, code, node.name)
            metrics.seldon_client.view(found, *seldon)
        return found

    def _branch(self, metrics: ServerMetrics, router: str, choice: int) -> Counter:
        found = self._branches.get((router, choice))
        if found is None:
            labels = (self.deployment, self.name, router, str(choice))
            found = self._branches[(router, choice)] = metrics.branch_requests.counter(*labels)
        return found

    # Feedback

    async def _feedback(self, node: GraphNode, feedback: Feedback, trace: _Trace) -> None:
        chose = ROUTE not in node.calls or node.name in feedback.routing
        receives = SEND_FEEDBACK in node.calls and chose
        if receives:
            trace.path[node.name] = node.label or node.component.implementation
        if node.children:
            chosen = _chosen(node, _feedback_route(node, feedback))
            traces = [_Trace() for _ in chosen]
            await _concurrently([self._feedback(c, feedback, t) for c, t in zip(chosen, traces, strict=True)])
            trace.join(traces)
        if receives:
            if node.logger is not None and node.logger.wants():
                _log_feedback(node.logger, feedback)
            await self._run(node, SEND_FEEDBACK, calls.send_feedback(node.component, feedback))
            if ROUTE in node.calls and self.telemetry.metrics is not None:
                self._count_reward(self.telemetry.metrics, node.name, feedback)

    def _count_reward(self, metrics: ServerMetrics, router: str, feedback: Feedback) -> None:
        labels = (self.deployment, self.name, router, str(feedback.routing[router]))
        metrics.branch_feedback.counter(*labels).inc()
        metrics.branch_reward.counter(*labels).inc(float(feedback.reward or 0.0))


def _log_feedback(logger: PayloadLogger, feedback: Feedback) -> None:
    """Feedback to a node with a logger, paired with the request it rewards by that response's puid."""
    puid = feedback.response.meta.get("puid") if feedback.response is not None else None
    logger.feedback(messages.feedback(feedback), "" if puid is None else str(puid))


def _feedback_route(node: GraphNode, feedback: Feedback) -> int:
    """The child a router chose for the request being rewarded; all children for any other node."""
    if ROUTE not in node.calls or node.name not in feedback.routing:
        return ALL_CHILDREN
    choice = feedback.routing[node.name]
    count = len(node.children)
    if isinstance(choice, bool) or not isinstance(choice, int) or not NO_CHILDREN <= choice < count:
        raise InvalidInput(
            f"response.meta.routing.{node.name}", f"expected a child index from 0 to {count - 1}, -1 or -2"
        )
    return choice


def _chosen(node: GraphNode, choice: int) -> list[GraphNode]:
    if choice == NO_CHILDREN:
        return []
    return node.children if choice == ALL_CHILDREN else [node.children[choice]]


async def _concurrently(coroutines: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run coroutines concurrently; the first failure cancels the rest and is raised as it is."""
    if len(coroutines) <= 1:
        return [await coroutine for coroutine in coroutines]
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coroutine) for coroutine in coroutines]
    except BaseExceptionGroup as failed:
        first = failed.exceptions[0]
    else:
        return [task.result() for task in tasks]
    raise first


def _clean(payload: Payload) -> Payload:
    """The payload a node is given: without the metrics earlier nodes reported, which the walk keeps."""
    if "metrics" not in payload.meta:
        return payload
    meta = {key: value for key, value in payload.meta.items() if key != "metrics"}
    return Payload(payload.data, payload.names, meta, payload.form, payload.output_name)


def _names(exc: DaneelError, name: str) -> bool:
    """Whether an error's message already starts with the node's name (as `name.predict raised ...`)."""
    return re.match(rf"{re.escape(name)}\b", exc.message) is not None


def _renamed(exc: DaneelError, message: str) -> DaneelError:
    """A copy of `exc`, same class and fields (so the same code), with a new message."""
    clone = type(exc).__new__(type(exc))
    clone.__dict__.update(exc.__dict__)
    clone.args = (message,)
    clone.message = message
    return clone


def _check_unique(root: GraphNode) -> None:
    seen: set[str] = set()
    for node in root.walk():
        if node.name in seen:
            raise LoadError(f"graph: two nodes are named {node.name!r}; node names must be unique")
        seen.add(node.name)


def _last(node: GraphNode) -> GraphNode:
    """The node whose output the graph returns when every router picks its first child."""
    while node.children and AGGREGATE not in node.calls:
        node = node.children[0]
    return node
