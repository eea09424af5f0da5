"""A Node.js or Java component served through the component interface, by calls to its child process.

Everything above the interface (both REST protocols, gRPC, batching, detectors, graphs) treats it as
any other component. Each call sends the payload's data, names and meta to the child and turns its
answer back into a payload; the methods the child's class lacks behave as a Python class's do
(transforms pass data through, predict is a 501).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from daneel.errors import InvalidInput, ModelError, NotImplementedByModel, NotReady
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback
from daneel.runtime.component import Component, Kind, Metadata
from daneel.runtime.languages import wire
from daneel.runtime.languages.child import Child, Prepare
from daneel.runtime.names import column_names
from daneel.runtime.python import answer_meta, kind_of, metadata_of


class ForeignComponent(Component):
    """A component whose class runs in a child process of another language."""

    def __init__(
        self,
        name: str,
        language: str,
        implementation: str,
        folder: Path,
        prepare: Prepare,
        kind: Kind | None = None,
    ) -> None:
        self.name = name
        self.implementation = implementation
        self.language = language
        self.kind = kind or Kind.MODEL
        self._explicit_kind = kind
        self._folder = folder
        self._prepare = prepare
        self._methods: frozenset[str] = frozenset()
        self._metadata: dict[str, Any] = {}
        self.child: Child | None = None

    async def load(self) -> None:
        command = await asyncio.to_thread(self._prepare)
        self.child = Child(self.name, self.language, command, self._folder)
        try:
            hello = await self.child.start()
        except BaseException:
            await self.child.close()
            raise
        self._methods = frozenset(hello.get("methods") or ())
        self.implementation = self.implementation or str(hello.get("class") or self.language)
        self.kind = self._explicit_kind or kind_of(self._methods.__contains__)
        metadata = hello.get("metadata")
        self._metadata = metadata if isinstance(metadata, dict) else {}

    async def close(self) -> None:
        if self.child is not None:
            await self.child.close()

    def outage(self) -> str | None:
        return self.child.down if self.child is not None else "not loaded"

    async def _call(self, method: str, header: dict[str, Any], blobs: list[bytes]) -> tuple[Any, wire.Frame]:
        if self.child is None:
            raise NotReady(f"model {self.name!r} is not loaded")
        header["m"] = method
        frame = await self.child.call(header, blobs)
        answer = frame.header
        if "error" in answer:
            raise self._error(method, answer)
        return wire.unvalue(answer.get("x"), frame.blobs), frame

    def _error(self, method: str, answer: dict[str, Any]) -> Exception:
        message = str(answer["error"])
        if answer.get("unimplemented"):
            return NotImplementedByModel(f"component {self.name!r} does not implement {method}")
        if answer.get("invalid"):
            return InvalidInput(str(answer["invalid"]), message)
        kind = answer.get("type") or "Error"
        return ModelError(f"{self.name}.{method} raised {kind}: {message}")

    async def _data_method(self, method: str, payload: Payload) -> Payload:
        if method not in self._methods:
            if method == "predict":
                raise NotImplementedByModel(f"component {self.name!r} does not implement predict")
            return payload
        blobs: list[bytes] = []
        header = {"x": wire.value(payload.data, blobs), "names": payload.names, "meta": payload.meta}
        data, frame = await self._call(method, header, blobs)
        return self._answer(data, frame, payload.meta)

    def _answer(self, data: Any, frame: wire.Frame, request_meta: dict[str, Any]) -> Payload:
        answer = frame.header
        tags, metrics = answer.get("tags") or {}, answer.get("metrics") or []
        names = answer.get("names")
        meta = answer_meta(request_meta, tags, metrics, self.name)
        return Payload(data, column_names(data, names if isinstance(names, list) else None), meta)

    async def predict(self, payload: Payload) -> Payload:
        return await self._data_method("predict", payload)

    async def transform_input(self, payload: Payload) -> Payload:
        return await self._data_method("transform_input", payload)

    async def transform_output(self, payload: Payload) -> Payload:
        return await self._data_method("transform_output", payload)

    async def route(self, payload: Payload) -> int:
        if "route" not in self._methods:
            return await super().route(payload)
        blobs: list[bytes] = []
        header = {"x": wire.value(payload.data, blobs), "names": payload.names, "meta": payload.meta}
        data, _ = await self._call("route", header, blobs)
        try:
            return int(data.flat[0] if hasattr(data, "flat") else data)
        except (TypeError, ValueError, IndexError):
            raise ModelError(f"{self.name}.route returned {data!r}; expected an integer child index") from None

    async def aggregate(self, payloads: list[Payload]) -> Payload:
        if "aggregate" not in self._methods:
            return await super().aggregate(payloads)
        blobs: list[bytes] = []
        xs = [wire.value(p.data, blobs, f"[{i}].data") for i, p in enumerate(payloads)]
        data, frame = await self._call("aggregate", {"xs": xs, "names": [p.names for p in payloads]}, blobs)
        return self._answer(data, frame, payloads[0].meta if payloads else {})

    async def send_feedback(self, feedback: Feedback) -> Payload:
        if "send_feedback" not in self._methods:
            return await super().send_feedback(feedback)
        request = feedback.request or Payload(None)
        blobs: list[bytes] = []
        header = {
            "x": wire.value(request.data, blobs),
            "names": request.names,
            "reward": feedback.reward,
            "truth": wire.value(feedback.truth.data if feedback.truth else None, blobs, "truth"),
            "routing": feedback.routing.get(self.name),
        }
        data, frame = await self._call("send_feedback", header, blobs)
        return self._answer([] if data is None else data, frame, {})

    async def health(self) -> Any:
        down = self.outage()
        if down is not None:
            raise NotReady(f"model {self.name!r} is not ready: {down}")
        if "health_status" not in self._methods:
            return None
        data, _ = await self._call("health_status", {}, [])
        return data

    def metadata(self) -> Metadata:
        return metadata_of(self._metadata, self.name, self.language)
