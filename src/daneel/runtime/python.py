"""Serve a user's Python class through the component interface.

The class follows Seldon Core's duck-typed contract (no import of daneel needed)
or subclasses :class:`daneel.Model`. Signatures are read once at load, so a
two-argument `predict(X, names)` is called with two arguments rather than retried
after a TypeError that could equally come from inside the user's code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np

from daneel.errors import DaneelError, LoadError, ModelError, NotImplementedByModel
from daneel.observe.custom import UserMetrics
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback
from daneel.runtime.base import Model
from daneel.runtime.component import Component, Kind, Metadata, TensorSpec
from daneel.runtime.generation import Generator
from daneel.runtime.imports import import_class, off_loop
from daneel.runtime.invoke import Invoker
from daneel.runtime.names import column_names
from daneel.runtime.python_generator import PythonGenerator

DATA_METHODS = ("predict", "transform_input", "transform_output", "route")
OTHER_METHODS = ("aggregate", "send_feedback", "tags", "metrics", "health_status", "init_metadata")
RAW_METHODS = ("predict", "transform_input", "transform_output", "route", "aggregate", "send_feedback")
_METRIC_TYPES = ("COUNTER", "GAUGE", "TIMER")
#: Results that are data as they are, never Seldon's ClientResponse: told apart by their exact type at once.
_PLAIN = frozenset({np.ndarray, list, dict, str, bytes, int, float, bool, type(None)})


def implements(cls: type, method: str) -> bool:
    """Whether `cls` defines `method` itself rather than inheriting daneel.Model's stub."""
    found = getattr(cls, method, None)
    return callable(found) and found is not getattr(Model, method, None)


def infer_kind(cls: type) -> Kind:
    return kind_of(lambda method: implements(cls, method) or implements(cls, f"{method}_raw"))


def kind_of(has: Callable[[str], bool]) -> Kind:
    """A component's kind by the first method of the contract it implements: predict first."""
    for method, kind in (
        ("predict", Kind.MODEL),
        ("route", Kind.ROUTER),
        ("aggregate", Kind.COMBINER),
        ("transform_input", Kind.TRANSFORMER),
        ("transform_output", Kind.OUTPUT_TRANSFORMER),
    ):
        if has(method):
            return kind
    return Kind.MODEL


class _NotImplemented(Exception):
    """A user method raised Seldon's SeldonNotImplementedError (or NotImplementedError)."""


class PythonComponent(Component):
    """A component backed by an instance of the user's class."""

    def __init__(
        self,
        name: str,
        implementation: str,
        path: Path | None,
        parameters: dict[str, Any],
        kind: Kind | None = None,
        policy: str = "auto",
        executor: Executor | None = None,
        metrics: UserMetrics | None = None,
    ) -> None:
        self.name = name
        self.implementation = implementation
        self.kind = kind or Kind.MODEL
        self._explicit_kind = kind
        self._path = path
        self._cls: type = object
        self._parameters = parameters
        self._policy = policy
        self._executor = executor
        self._user_metrics = metrics
        self._calls: dict[str, Invoker] = {}
        self._metadata: dict[str, Any] = {}
        self.obj: Any = None
        self._generator: PythonGenerator | None = None

    async def load(self) -> None:
        self._cls = await off_loop(import_class, self.implementation, self._path)
        self.kind = self._explicit_kind or infer_kind(self._cls)
        self.raw_methods = frozenset(m for m in RAW_METHODS if implements(self._cls, f"{m}_raw"))
        self.obj = await off_loop(self._construct)
        if implements(self._cls, "init_metrics") and self._user_metrics is not None:
            self._init_metrics(self._user_metrics)
        if implements(self._cls, "load"):
            await _run_load(self.obj.load, self.name)
        for method in (*DATA_METHODS, *OTHER_METHODS, *(f"{m}_raw" for m in self.raw_methods)):
            if implements(self._cls, method):
                self._calls[method] = self._invoker(getattr(self.obj, method), method)
        self._metadata = await self._optional("init_metadata", {}) or {}
        if callable(getattr(self._cls, "generate", None)):
            self._generator = PythonGenerator(self.obj, self.name)

    def generator(self) -> Generator | None:
        return self._generator

    async def close(self) -> None:
        if self._generator is not None:
            self._generator.close()

    def _init_metrics(self, metrics: UserMetrics) -> None:
        """Give the instance the server's metrics API, to define series of its own (a dict's worth of work)."""
        try:
            self.obj.init_metrics(metrics)
        except Exception as exc:
            raise LoadError(f"{self.name}.init_metrics raised {type(exc).__name__}: {exc}") from exc

    def _construct(self) -> Any:
        try:
            return self._cls(**self._parameters)
        except Exception as exc:
            raise LoadError(f"{self.implementation}({_kwargs(self._parameters)}) failed: {exc}") from exc

    def _invoker(self, fn: Callable[..., Any], method: str) -> Invoker:
        if method in DATA_METHODS:
            fn = _adapt(fn, 3, "meta")
        elif method == "send_feedback":
            fn = _adapt(fn, 5, "routing")
        return Invoker(fn, self._policy, executor=self._executor, bounded=False)

    async def _call(self, method: str, *args: Any) -> Any:
        try:
            return await self._calls[method](*args)
        except DaneelError:
            raise
        except Exception as exc:
            if type(exc).__name__ in ("SeldonNotImplementedError", "NotImplementedError"):
                raise _NotImplemented(method) from exc
            raise ModelError(f"{self.name}.{method} raised {type(exc).__name__}: {exc}") from exc

    async def _optional(self, method: str, default: Any, *args: Any) -> Any:
        if method not in self._calls:
            return default
        try:
            return await self._call(method, *args)
        except _NotImplemented:
            return default

    async def _data_method(self, method: str, payload: Payload) -> Payload:
        if method in self._calls:
            try:
                result = await self._call(method, payload.data, payload.names, payload.meta)
            except _NotImplemented:
                pass
            else:
                return await self._response(result, payload.meta)
        if method == "predict":
            raise NotImplementedByModel(f"component {self.name!r} does not implement predict")
        return payload

    async def _response(self, result: Any, request_meta: dict[str, Any]) -> Payload:
        data, tags, metrics = _unwrap(result)
        # Only classes that define tags() or metrics() are asked: a pass-through node should cost about a call.
        if "tags" in self._calls:
            tags = {**(await self._optional("tags", {}) or {}), **tags}
        if "metrics" in self._calls:
            metrics = [*(await self._optional("metrics", []) or []), *metrics]
        return Payload(
            data, column_names(data, self._class_names()), answer_meta(request_meta, tags, metrics, self.name)
        )

    def _class_names(self) -> list[str] | None:
        found = getattr(self.obj, "class_names", None)
        if callable(found):
            try:
                found = found()
            except Exception:
                return None
        return list(found) if isinstance(found, (list, tuple)) else None

    async def predict(self, payload: Payload) -> Payload:
        return await self._data_method("predict", payload)

    async def transform_input(self, payload: Payload) -> Payload:
        return await self._data_method("transform_input", payload)

    async def transform_output(self, payload: Payload) -> Payload:
        return await self._data_method("transform_output", payload)

    async def route(self, payload: Payload) -> int:
        missing = object()
        result = await self._optional("route", missing, payload.data, payload.names, payload.meta)
        if result is missing:
            return await super().route(payload)
        data, _, _ = _unwrap(result)
        try:
            return int(data)
        except (TypeError, ValueError):
            raise ModelError(f"{self.name}.route returned {data!r}; expected an integer child index") from None

    async def aggregate(self, payloads: list[Payload]) -> Payload:
        missing = object()
        features = [p.data for p in payloads]
        result = await self._optional("aggregate", missing, features, [p.names for p in payloads])
        if result is missing:
            return await super().aggregate(payloads)
        return await self._response(result, payloads[0].meta if payloads else {})

    async def send_feedback(self, feedback: Feedback) -> Payload:
        request = feedback.request or Payload(None)
        truth = feedback.truth.data if feedback.truth else None
        routing = feedback.routing.get(self.name)
        args = (request.data, request.names, feedback.reward, truth, routing)
        result = await self._optional("send_feedback", None, *args)
        return await self._response([] if result is None else result, {})

    async def call_raw(self, method: str, message: Any) -> Any:
        try:
            result = await self._call(f"{method}_raw", message)
        except _NotImplemented:
            return await super().call_raw(method, message)
        return _unwrap(result)[0]

    async def health(self) -> Any:
        return await self._optional("health_status", None)

    def metadata(self) -> Metadata:
        return metadata_of(self._metadata, self.name, "python")


def metadata_of(meta: dict[str, Any], name: str, platform: str) -> Metadata:
    """A component's metadata from what its init_metadata returned, `name` and `platform` by default."""
    return Metadata(
        name=str(meta.get("name", name)),
        platform=str(meta.get("platform", platform)),
        versions=[str(v) for v in meta.get("versions", [])],
        inputs=_specs(meta.get("inputs")),
        outputs=_specs(meta.get("outputs")),
        custom=meta.get("custom") or {},
        raw=meta or None,
    )


def answer_meta(request_meta: dict[str, Any], tags: dict[str, Any], metrics: list[Any], name: str) -> dict[str, Any]:
    """An answer's meta: the request's, with the component's tags merged in and its metrics checked."""
    meta = dict(request_meta)
    request_tags = meta.get("tags")
    if tags or request_tags:
        meta["tags"] = {**request_tags, **tags} if request_tags else tags
    if metrics:
        _check_metrics(metrics, name)
        meta["metrics"] = metrics
    return meta


async def _run_load(load: Callable[[], Any], name: str) -> None:
    try:
        if inspect.iscoroutinefunction(load):
            await load()
        else:
            await off_loop(load)
    except Exception as exc:
        raise LoadError(f"{name}.load raised {type(exc).__name__}: {exc}") from exc


def _adapt(fn: Callable[..., Any], full: int, keyword: str) -> Callable[..., Any]:
    """Let `fn` be called with all `full` arguments, whatever subset of them it declares.

    Seldon's contract has optional trailing arguments: `meta` for predict and the
    transforms, `routing` for send_feedback. The last one goes by keyword wherever
    `fn` names it or takes **kwargs; leading ones go by position as far as declared.
    """
    params = list(inspect.signature(fn).parameters.values())
    declared = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    if declared >= full or any(p.kind is p.VAR_POSITIONAL for p in params):
        return fn
    positional = min(full - 1, sum(_by_position(p, keyword) for p in params))
    by_keyword = any(p.kind is p.VAR_KEYWORD or p.name == keyword for p in params)

    def call(*args: Any) -> Any:
        return fn(*args[:positional], **{keyword: args[-1]}) if by_keyword else fn(*args[:positional])

    if inspect.iscoroutinefunction(fn):

        async def call_async(*args: Any) -> Any:
            return await call(*args)

        return call_async
    return call


def _by_position(param: inspect.Parameter, keyword: str) -> bool:
    """Whether `param` takes an argument by position; `keyword` goes by keyword wherever it may."""
    return param.kind is param.POSITIONAL_ONLY or (param.kind is param.POSITIONAL_OR_KEYWORD and param.name != keyword)


def _unwrap(result: Any) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    """Accept Seldon's ClientResponse/SeldonResponse (data, tags, metrics) as well as plain data."""
    if type(result) in _PLAIN:
        return result, {}, []
    wrapped = all(hasattr(result, a) for a in ("data", "tags", "metrics")) and not hasattr(result, "shape")
    if wrapped:
        return result.data, dict(result.tags or {}), list(result.metrics or [])
    return result, {}, []


def _check_metrics(metrics: list[Any], name: str) -> None:
    for metric in metrics:
        ok = isinstance(metric, dict) and metric.get("type") in _METRIC_TYPES
        ok = ok and isinstance(metric.get("key"), str) and isinstance(metric.get("value"), (int, float))
        if not ok:
            expected = "{'type': COUNTER|GAUGE|TIMER, 'key': str, 'value': number}"
            raise ModelError(f"{name}.metrics returned {metric!r}; expected {expected}")


def _specs(value: Any) -> list[TensorSpec]:
    """V2 tensor specs from init_metadata, where entries carry name, datatype and shape."""
    if not isinstance(value, list):
        return []
    specs = []
    for item in value:
        if isinstance(item, dict) and {"name", "datatype", "shape"} <= item.keys():
            specs.append(TensorSpec(str(item["name"]), str(item["datatype"]), list(item["shape"])))
    return specs


def _kwargs(parameters: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in parameters.items())
