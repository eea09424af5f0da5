"""Inference, feedback, metadata and health, independent of the transport.

Handlers take decoded JSON values and return JSON-ready values (numpy arrays
allowed); they raise :class:`daneel.errors.DaneelError` for every failure.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np

from daneel.dataplane.repository import Entry, Repository, State
from daneel.errors import DaneelError, ErrorCode, InvalidInput, ModelError, NotFound, NotReady, describe, within
from daneel.observe import custom, logs
from daneel.observe.payloads import PayloadLogs
from daneel.observe.telemetry import OFF, Telemetry
from daneel.protocol import binary, context, v1, v2
from daneel.protocol.payload import Payload
from daneel.runtime.component import Component
from daneel.runtime.generation import Generator
from daneel.version import __version__

T = TypeVar("T")

log = logging.getLogger("daneel.dataplane")

#: Seldon's model-side paths and the component method each one calls.
SELDON_METHODS = (
    "predictions",
    "predict",
    "transform-input",
    "transform-output",
    "route",
    "aggregate",
    "send-feedback",
)


class Ids:
    """Ids for requests that come without one: random, so that no client can guess another's.

    They look as clients expect: a UUID (version 4) for V2, 26 hex digits for Seldon's `puid`.
    """

    @staticmethod
    def uuid() -> str:
        return str(uuid.uuid4())

    @staticmethod
    def puid() -> str:
        return os.urandom(13).hex()


class DataPlane:
    def __init__(
        self, repository: Repository, telemetry: Telemetry = OFF, request_timeout_s: float | None = None
    ) -> None:
        self.repository = repository
        #: How long one call into a model may take before the request fails with 504 (`--request-timeout`).
        self.request_timeout_s = request_timeout_s
        self.ids = Ids()
        self.telemetry = telemetry
        if telemetry.metrics is not None:
            repository.watch = self._watch
            for entry in repository.entries.values():
                self._watch(entry)

    def labels(self, model: str | None) -> tuple[str, str]:
        """The `deployment` and `node` labels of requests to `model` (the default model when None)."""
        entry = self.repository.entries.get(model) if model else None
        if model and entry is None:
            return "", ""  # not a served name: one label value for all of them, however many are tried
        if entry is not None and entry.part_of is not None:
            return entry.part_of, entry.name
        return (model or self._default_name()), ""

    def _default_name(self) -> str:
        try:
            return self.repository.default().name
        except DaneelError:
            return ""

    def _watch(self, entry: Entry) -> None:
        metrics = self.telemetry.metrics
        assert metrics is not None
        if entry.part_of is not None:
            return
        for state in State:
            metrics.model_state.gauge(entry.name, state.value).set(1.0 if entry.state is state else 0.0)
        metrics.load_seconds.gauge(entry.name).set(entry.load_seconds)

    def _reported(self, result: Payload, model: str) -> None:
        """Record the metrics a model reported with its answer (Seldon's custom metrics)."""
        metrics = self.telemetry.metrics
        reported = result.meta.get("metrics")
        if metrics is not None and reported:
            custom.record(metrics, reported, model, context.current().predictor or "")

    # Open Inference Protocol

    async def infer(self, model: str, version: str | None, body: Any) -> Any:
        component = self._versioned(model, version)
        logs = self.telemetry.payloads
        if logs is not None and logs.active:
            return await self._logging(logs, component, "v2", body, self._infer_json(component, version, body))
        return await self._infer_json(component, version, body)

    async def _infer_json(self, component: Component, version: str | None, body: Any) -> Any:
        method = component.main_method()
        if method in component.raw_methods:
            return await _guard(component, component.call_raw(method, body), self.request_timeout_s)
        return await self._infer(component, method, version, v2.decode_request(body))

    async def infer_decoded(self, model: str, version: str | None, request: v2.InferenceRequest) -> Any:
        """`infer` for a request its transport decoded (gRPC messages, binary tensors)."""
        component = self._versioned(model, version)
        logs = self.telemetry.payloads
        if logs is not None and logs.active:
            return await self._logging(logs, component, "v2", request, self._infer_decoded(component, version, request))
        return await self._infer_decoded(component, version, request)

    async def _infer_decoded(self, component: Component, version: str | None, request: v2.InferenceRequest) -> Any:
        method = component.main_method()
        if method in component.raw_methods:
            return await _guard(component, component.call_raw(method, v2.as_body(request)), self.request_timeout_s)
        return await self._infer(component, method, version, request)

    async def _infer(self, component: Component, method: str, version: str | None, request: v2.InferenceRequest) -> Any:
        result = await _guard(component, getattr(component, method)(v2.to_payload(request)), self.request_timeout_s)
        if "metrics" in result.meta:
            self._reported(result, component.name)
        try:
            outputs = v2.encode_outputs(result, request.outputs)
        except (ValueError, TypeError) as exc:
            raise _unencodable(component.name, exc) from exc
        request_id = request.id if request.id is not None else self.ids.uuid()
        parameters = _v2_parameters(result.meta) if result.meta else None
        return v2.encode_response(component.name, version, request_id, outputs, parameters)

    def unencodable(self, model: str | None, exc: Exception) -> ModelError:
        """The error, logged, for an answer of `model` (None: Seldon's one model) that its transport cannot encode."""
        return _unencodable(model or self._default_name(), exc)

    @staticmethod
    def check_json(model: str, response: Any, in_binary: Callable[[str], bool]) -> None:
        """Refuse (a logged 500) to send an answer of `model` as JSON that would turn its inf or NaN into null.

        For the transports that send outputs as JSON; `in_binary` names the outputs that go as raw bytes.
        """
        name = v2.non_finite_output(response, in_binary)
        if name is not None:
            problem = f"output {name!r} holds inf or NaN, which JSON cannot carry; ask for it in binary or over gRPC"
            raise _unencodable(model, ValueError(problem))

    def model_metadata(self, model: str, version: str | None) -> dict[str, Any]:
        return self._versioned(model, version).metadata().v2()

    def model_ready(self, model: str, version: str | None) -> None:
        """Return if the model is ready; raise NotReady (or NotFound) saying why not."""
        self._versioned(model, version)
        self.repository.check_ready(model)

    def _versioned(self, model: str, version: str | None) -> Component:
        component = self.repository.get(model)
        if not version:
            return component
        versions = component.metadata().versions
        if versions and version not in versions:
            raise NotFound(f"model {model!r} has no version {version!r}; it has {', '.join(versions)}")
        return component

    def generator(self, model: str | None, version: str | None = None) -> tuple[str, Generator]:
        """The served name of `model` (None: the default model) and what generates its text.

        NotFound for a name not served; InvalidInput, naming `model`, for a model that does not generate text.
        """
        component = self._versioned(model, version) if model else self.repository.default()
        found = component.generator()
        if found is None:
            generating = self.generating_models()
            hint = f"; these do: {', '.join(generating)}" if generating else "; no model served here does"
            raise InvalidInput("model", f"model {component.name!r} does not generate text{hint}")
        return component.name, found

    def generates(self, model: str, version: str | None = None) -> bool:
        """Whether `model` (ready) generates text."""
        return self._versioned(model, version).generator() is not None

    def generating_models(self) -> list[str]:
        """The names of the models that generate text and are ready."""
        return [name for name, entry in self.repository.entries.items() if _generates(entry)]

    @staticmethod
    def server_metadata() -> dict[str, Any]:
        return {"name": "daneel", "version": __version__, "extensions": [binary.EXTENSION, "model_repository"]}

    def ready(self) -> None:
        reasons = self.repository.not_ready()
        if reasons:
            raise NotReady("not ready: " + "; ".join(reasons))

    # The repository extension: which models are served, loading and unloading them at runtime

    def repository_index(self, ready_only: bool) -> list[dict[str, Any]]:
        """Every model with its state ("READY", "LOADING", "UNAVAILABLE") and the reason for it."""
        return self.repository.index(ready_only)

    async def load_model(self, name: str) -> None:
        """Load or reload a model; the serving copy is replaced only once the new one has loaded."""
        await self.repository.load(name)

    async def unload_model(self, name: str) -> None:
        await self.repository.unload(name)

    # Seldon protocol

    async def seldon(self, method: str, body: Any) -> Any:
        component = self.repository.default()
        logs = self.telemetry.payloads
        if logs is not None and logs.active:
            call = self._seldon(component, method, body)
            return await self._logging(logs, component, "seldon", body, call, feedback=method == "send-feedback")
        return await self._seldon(component, method, body)

    async def _seldon(self, component: Component, method: str, body: Any) -> Any:
        name = component.main_method() if method == "predictions" else method.replace("-", "_")
        if name in component.raw_methods:
            return await _guard(component, component.call_raw(name, body), self.request_timeout_s)
        if method == "aggregate":
            payloads = v1.decode_message_list(body)
            result = await _guard(component, component.aggregate(payloads), self.request_timeout_s)
            return self._seldon_response(component, result, payloads[0].form, payloads[0].meta)
        if method == "send-feedback":
            feedback = v1.decode_feedback(body)
            result = await _guard(component, component.send_feedback(feedback), self.request_timeout_s)
            self._count_feedback(component, feedback)
            return self._seldon_response(component, result, "ndarray", {})
        payload = v1.decode_message(body)
        if method == "route":
            index = await _guard(component, component.route(payload), self.request_timeout_s)
            result = Payload(np.array([[index]]), [], payload.meta)
        else:
            result = await _guard(component, getattr(component, name)(payload), self.request_timeout_s)
            if "metrics" in result.meta:
                self._reported(result, component.name)
        return self._seldon_response(component, result, payload.form, payload.meta)

    # Request logging

    async def _logging(
        self,
        logs: PayloadLogs,
        component: Component,
        protocol: str,
        request: Any,
        call: Awaitable[Any],
        feedback: bool = False,
    ) -> Any:
        """Await `call`, the request to `component`; then log the request, and its answer, where loggers want them.

        The request gets its id first (a Seldon `puid`, a V2 `id`), so that the answer and any graph node's
        events carry the same one.
        """
        request_id = self._request_id(protocol, request, feedback)
        loggers = [logger for logger in logs.served(component.name) if logger.wants()]
        if not loggers:
            return await call
        answer = None
        try:
            answer = await call
        finally:  # a request that failed is logged too, without an answer
            predictor = context.current().predictor
            for logger in loggers:
                if feedback:
                    logger.feedback(request, request_id, component.name, predictor)
                    continue
                logger.request(request, request_id, protocol, component.name, predictor)
                if answer is not None:
                    logger.response(answer, request_id, protocol, component.name, predictor)
        return answer

    def _request_id(self, protocol: str, request: Any, feedback: bool) -> str:
        """The request's id, given one where it has none; feedback's is that of the request it rewards."""
        if isinstance(request, v2.InferenceRequest):
            if request.id is None:
                request.id = self.ids.uuid()
            return request.id
        if not isinstance(request, dict):
            return self.ids.uuid()  # invalid: the call fails, and the log shows what came
        if protocol == "v2":
            if request.get("id") is None:
                request["id"] = self.ids.uuid()
            return str(request["id"])
        if feedback:
            response = request.get("response")
            meta = response.get("meta") if isinstance(response, dict) else None
            puid = meta.get("puid") if isinstance(meta, dict) else None
            return str(puid) if puid else self.ids.puid()
        if "seldonMessages" in request:
            return self.ids.puid()
        if request.get("meta") is None:
            request["meta"] = {}
        meta = request["meta"]
        if isinstance(meta, dict) and not meta.get("puid"):
            meta["puid"] = self.ids.puid()
        return str(meta["puid"]) if isinstance(meta, dict) else self.ids.puid()

    def _count_feedback(self, component: Component, feedback: v1.Feedback) -> None:
        metrics = self.telemetry.metrics
        if metrics is not None:
            labels = (component.name, context.current().predictor or "")
            metrics.feedback.counter(*labels).inc()
            metrics.reward.counter(*labels).inc(float(feedback.reward or 0.0))

    def _seldon_response(
        self, component: Component, result: Payload, form: str, request_meta: dict[str, Any]
    ) -> dict[str, Any]:
        meta = {**request_meta, **result.meta}
        meta["puid"] = request_meta.get("puid") or self.ids.puid()
        meta.setdefault("tags", {})
        meta["requestPath"] = result.meta.get("requestPath") or {component.name: component.implementation}
        result.meta = meta
        try:
            return v1.encode_message(result, form)
        except (ValueError, TypeError) as exc:
            raise _unencodable(component.name, exc) from exc

    def seldon_metadata(self) -> dict[str, Any]:
        return self.repository.default().metadata().v1()

    async def health_status(self) -> Any:
        self.ready()
        component = self.repository.default()
        try:
            status = await component.health()
        except Exception as exc:
            raise NotReady(f"{component.name} is unhealthy: {describe(exc)}") from exc
        return v1.encode_message(Payload([] if status is None else status, [], {}), "ndarray")


async def _guard(component: Component, call: Awaitable[T], timeout_s: float | None = None) -> T:
    """Await a component call; anything but a DaneelError becomes a ModelError naming it.

    A call that takes longer than `timeout_s` is a ModelTimeout (504), logged as a warning; the model's
    code may still run on its thread, but the request is answered.

    Log lines written meanwhile (the model's own too) name the model. A model's error (a 500) is
    logged here, with its traceback, once per request: below, a batch retried request by request or
    a graph's nodes would log it more than once, and the edges would each need to.
    """
    where = logs.where.set((component.name, "", ""))
    try:
        if timeout_s is None:
            return await call
        return await within(timeout_s, call, f"{component.name}: no answer within {timeout_s:g} s (--request-timeout)")
    except DaneelError as exc:
        if exc.code is ErrorCode.MODEL_ERROR:
            _log_failure(exc.message, exc)
        elif exc.code is ErrorCode.TIMEOUT:
            log.warning("%s", exc.message)
        raise
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # a model's sys.exit() ends its request, not the server
        error = ModelError(f"{component.name}: {describe(exc)}")
        _log_failure(error.message, exc)
        raise error from exc
    finally:
        logs.where.reset(where)


def _log_failure(message: str, exc: BaseException) -> None:
    """Log a model's error with the traceback of what first raised it: the user's code, or a library it called.

    An error daneel raised itself, for nothing that raised before (a router's answer out of range), needs none.
    """
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    log.error("%s", message, exc_info=None if isinstance(root, DaneelError) else root)


def _generates(entry: Entry) -> bool:
    return entry.state is State.READY and entry.component is not None and entry.component.generator() is not None


def _unencodable(model: str, exc: Exception) -> ModelError:
    """A result that cannot be put on the wire (a ragged list, an odd type, inf in JSON) is the model's error,
    logged as `_guard` logs the others: the model's call has returned, so nothing else would."""
    error = ModelError(f"{model} returned a result that cannot be encoded: {exc}")
    where = logs.where.set((model, "", ""))
    try:
        _log_failure(error.message, error)
    finally:
        logs.where.reset(where)
    return error


def _v2_parameters(meta: dict[str, Any]) -> dict[str, Any]:
    """What a graph or deployment tells about the call: tags, the predictor, routers' choices.

    Outlier detectors' verdicts are also parameters of their own, where V2 clients look first.
    """
    parameters = {key: meta[key] for key in ("tags", "predictor", "routing") if meta.get(key)}
    tags = meta.get("tags")
    if tags and "outlier" in tags:
        parameters.update((key, tags[key]) for key in _VERDICTS if key in tags)
    return parameters


_VERDICTS = ("outlier", "outlier_score", "outlier_scores")
