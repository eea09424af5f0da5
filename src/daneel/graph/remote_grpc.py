"""A graph node served by another process over the Open Inference Protocol's gRPC (endpoint type GRPC).

Predictions and transforms are `ModelInfer` calls for the model named as the
node. V2 has no call for routing, aggregating or feedback, so a router or
combiner needs a REST endpoint. As over REST, a call that could not connect is
retried a few times, one that reached the server never is, and the remote's
status comes back as daneel's error of the same meaning, naming the node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from grpc import aio

from daneel.errors import (
    DaneelError,
    InvalidInput,
    ModelError,
    ModelTimeout,
    NotFound,
    NotImplementedByModel,
    NotReady,
)
from daneel.graph.remote import BACKOFF_S, CONNECT_RETRIES, DEFAULT_TIMEOUT_S, v2_inputs, v2_payload
from daneel.observe import tracing
from daneel.protocol import v2grpc
from daneel.protocol.payload import Payload
from daneel.protocol.proto import grpc_predict_v2_pb2 as pb
from daneel.protocol.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from daneel.runtime.component import Component, Kind

MAX_MESSAGE_BYTES = 64 * 1024 * 1024

#: The remote's status code back to daneel's error, so it keeps its meaning here.
_ERRORS: dict[grpc.StatusCode, Callable[[str], DaneelError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: lambda message: InvalidInput("", message),
    grpc.StatusCode.RESOURCE_EXHAUSTED: lambda message: InvalidInput("", message),
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNIMPLEMENTED: NotImplementedByModel,
    grpc.StatusCode.UNAVAILABLE: NotReady,
    grpc.StatusCode.DEADLINE_EXCEEDED: ModelTimeout,
}


class GrpcRemoteComponent(Component):
    def __init__(self, name: str, kind: Kind, host: str, port: int, timeout_s: float | None = None) -> None:
        self.name = name
        self.kind = kind
        self.target = f"{host}:{port}"
        self.implementation = f"grpc://{self.target}"
        self.timeout_s = timeout_s or DEFAULT_TIMEOUT_S
        self._channel: aio.Channel | None = None
        self._stub: Any = None

    async def load(self) -> None:
        options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
        options.append(("grpc.max_receive_message_length", MAX_MESSAGE_BYTES))
        self._channel = aio.insecure_channel(self.target, options=options)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def predict(self, payload: Payload) -> Payload:
        return await self._infer(payload)

    async def transform_input(self, payload: Payload) -> Payload:
        return await self._infer(payload)

    async def transform_output(self, payload: Payload) -> Payload:
        return await self._infer(payload)

    async def route(self, payload: Payload) -> int:
        raise NotImplementedByModel(f"{self._where()}: V2 gRPC has no route call; give this node a REST endpoint")

    async def aggregate(self, payloads: list[Payload]) -> Payload:
        raise NotImplementedByModel(f"{self._where()}: V2 gRPC has no aggregate call; give this node a REST endpoint")

    async def health(self) -> Any:
        try:
            ready = await self._open().ModelReady(pb.ModelReadyRequest(name=self.name), timeout=self.timeout_s)
        except aio.AioRpcError as exc:
            raise NotReady(f"{self._where()}: {exc.code().name}: {exc.details()}") from exc
        if not ready.ready:
            raise NotReady(f"{self._where()}: model {self.name} is not ready")
        return None

    async def _infer(self, payload: Payload) -> Payload:
        inputs, parameters = v2_inputs(payload)
        puid = payload.meta.get("puid")
        request_id = puid if isinstance(puid, str) else None
        request = v2grpc.encode_request(self.name, inputs, request_id=request_id, parameters=parameters)
        response = await self._call(request)
        try:
            body = v2grpc.decode_response(response)
        except InvalidInput as exc:
            raise ModelError(f"{self._where()}: the reply is not a valid V2 response ({exc.message})") from None
        outputs = [(str(output["name"]), output["data"]) for output in body["outputs"]]
        if not outputs:
            raise ModelError(f"{self._where()}: the reply has no outputs")
        return v2_payload(outputs, body.get("parameters"), payload)

    async def _call(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        stub = self._open()
        traced = tracing.outgoing_headers()  # the remote's spans join this request's trace
        metadata = None if traced is None else tuple(traced.items())
        for attempt in range(CONNECT_RETRIES + 1):
            try:
                response: pb.ModelInferResponse = await stub.ModelInfer(
                    request, timeout=self.timeout_s, metadata=metadata
                )
                return response
            except aio.AioRpcError as exc:
                if attempt < CONNECT_RETRIES and self._never_connected(exc):
                    await asyncio.sleep(BACKOFF_S * 2**attempt)
                    continue
                raise self._error(exc) from exc
        raise AssertionError("unreachable")

    def _never_connected(self, exc: aio.AioRpcError) -> bool:
        """An UNAVAILABLE call on a channel that is not connected never reached the server."""
        assert self._channel is not None
        connected = self._channel.get_state() is grpc.ChannelConnectivity.READY
        return exc.code() is grpc.StatusCode.UNAVAILABLE and not connected

    def _error(self, exc: aio.AioRpcError) -> DaneelError:
        code = exc.code()
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return ModelTimeout(f"{self._where()}: no answer within {self.timeout_s:g} s")
        if code is grpc.StatusCode.UNAVAILABLE and self._never_connected(exc):
            return ModelError(f"{self._where()}: cannot connect ({exc.details()})")
        return _ERRORS.get(code, ModelError)(f"{self._where()}: {exc.details()}")

    def _open(self) -> Any:
        if self._stub is None:
            raise NotReady(f"{self.name}: remote node {self.implementation} is not loaded")
        return self._stub

    def _where(self) -> str:
        return f"{self.name} ({self.implementation})"
