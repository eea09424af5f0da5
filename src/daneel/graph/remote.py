"""A graph node served by another process, in any language, over REST.

The node speaks Seldon's model-side protocol (POST `/predict`,
`/transform-input`, `/transform-output`, `/route`, `/aggregate`,
`/send-feedback` with a SeldonMessage) or, with protocol `v2`, the Open
Inference Protocol (`/v2/models/{node name}/infer`) for its predictions and
transforms; routing and aggregating have no V2 form and always use Seldon's
paths, and feedback reaches a V2 node only when it is a router.

Each node keeps one pooled HTTP client, opened in `load` and closed in `close`.
A request that could not connect is retried a few times with a short backoff;
one that was sent never is, as the remote may have acted on it. The remote's
error comes back with its status kept (a 400 stays a 400) and the node named.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from daneel.errors import (
    DaneelError,
    InvalidInput,
    ModelError,
    ModelTimeout,
    NotFound,
    NotImplementedByModel,
    NotReady,
    Rejected,
)
from daneel.graph import messages
from daneel.observe import tracing
from daneel.protocol import codecs, jsonwire, v2
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback
from daneel.runtime.component import Component, Kind

PROTOCOLS = ("seldon", "v2")
DEFAULT_TIMEOUT_S = 30.0
CONNECT_RETRIES = 3
BACKOFF_S = 0.05

_JSON = {"content-type": "application/json"}

#: The remote's HTTP status back to daneel's error, so it keeps its meaning here.
_ERRORS: dict[int, Callable[[str], DaneelError]] = {
    400: lambda message: InvalidInput("", message),
    404: NotFound,
    413: lambda message: InvalidInput("", message),
    422: lambda message: Rejected("", message),
    501: NotImplementedByModel,
    503: NotReady,
    504: ModelTimeout,
}


class RemoteComponent(Component):
    def __init__(
        self,
        name: str,
        kind: Kind,
        host: str,
        port: int,
        protocol: str = "seldon",
        timeout_s: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
        self.name = name
        self.kind = kind
        self.url = f"http://{host}:{port}"
        self.implementation = self.url
        self.protocol = protocol
        self.timeout_s = timeout_s or DEFAULT_TIMEOUT_S
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def load(self) -> None:
        self._client = httpx.AsyncClient(
            base_url=self.url, timeout=httpx.Timeout(self.timeout_s), transport=self._transport
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def predict(self, payload: Payload) -> Payload:
        return await self._transform("predict", payload)

    async def transform_input(self, payload: Payload) -> Payload:
        return await self._transform("transform-input", payload)

    async def transform_output(self, payload: Payload) -> Payload:
        return await self._transform("transform-output", payload)

    async def route(self, payload: Payload) -> int:
        where = self._where("/route")
        body = await self._post("/route", messages.message(payload))
        return messages.route_index(messages.reply(body, payload, where).data, where)

    async def aggregate(self, payloads: list[Payload]) -> Payload:
        body = await self._post("/aggregate", messages.message_list(payloads))
        return messages.reply(body, payloads[0], self._where("/aggregate"))

    async def send_feedback(self, feedback: Feedback) -> Payload:
        # A V2 server (Triton, MLServer) has no feedback path; only a router, which speaks Seldon's, gets it.
        if self.protocol == "seldon" or self.kind is Kind.ROUTER:
            await self._post("/send-feedback", messages.feedback(feedback))
        return Payload([], [], {})

    async def health(self) -> Any:
        path = "/v2/health/ready" if self.protocol == "v2" else "/health/ping"
        try:
            response = await self._open().get(path)
        except httpx.HTTPError as exc:
            raise NotReady(f"{self._where(path)}: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise NotReady(f"{self._where(path)}: answered {response.status_code}")
        return None

    async def _transform(self, method: str, payload: Payload) -> Payload:
        if self.protocol == "v2":
            path = f"/v2/models/{self.name}/infer"
            return _from_v2(await self._post(path, _to_v2(payload)), payload, self._where(path))
        path = f"/{method}"
        return messages.reply(await self._post(path, messages.message(payload)), payload, self._where(path))

    async def _post(self, path: str, body: Any) -> Any:
        content = jsonwire.dumps(body)
        traced = tracing.outgoing_headers()  # the remote's spans join this request's trace
        headers = _JSON if traced is None else {**_JSON, **traced}
        for attempt in range(CONNECT_RETRIES + 1):
            try:
                response = await self._open().post(path, content=content, headers=headers)
            except httpx.ConnectError as exc:
                if attempt == CONNECT_RETRIES:
                    raise ModelError(f"{self._where(path)}: cannot connect ({exc})") from exc
                await asyncio.sleep(BACKOFF_S * 2**attempt)
            except httpx.TimeoutException as exc:
                raise ModelTimeout(f"{self._where(path)}: no answer within {self.timeout_s:g} s") from exc
            except httpx.HTTPError as exc:
                raise ModelError(f"{self._where(path)}: {type(exc).__name__}: {exc}") from exc
            else:
                return _answer(response, self._where(path))
        raise AssertionError("unreachable")

    def _open(self) -> httpx.AsyncClient:
        if self._client is None:
            raise NotReady(f"{self.name}: remote node {self.url} is not loaded")
        return self._client

    def _where(self, path: str) -> str:
        return f"{self.name} ({self.url}{path})"


def _answer(response: httpx.Response, where: str) -> Any:
    try:
        body = orjson.loads(response.content or b"null")
    except orjson.JSONDecodeError:
        if response.is_success:
            raise ModelError(f"{where}: the reply is not JSON: {response.text[:200]!r}") from None
        body = None
    if response.is_success:
        return body
    message = _error_message(body) or response.text[:200] or response.reason_phrase
    raise _ERRORS.get(response.status_code, ModelError)(f"{where}: {message}")


def _error_message(body: Any) -> str | None:
    """The message of an error in Seldon's shape ({status: {info}}) or V2's ({error})."""
    if not isinstance(body, dict):
        return None
    status = body.get("status")
    if isinstance(status, dict) and status.get("info"):
        return str(status["info"])
    return str(body["error"]) if body.get("error") else None


def v2_inputs(payload: Payload) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A payload as V2 input tensors (one per named array, or `input-0` for one array) and request parameters."""
    single = Payload(payload.data, payload.names, {}, payload.form, "input-0")
    parameters = {"content_type": "pd"} if codecs.is_dataframe(payload.data) else {}
    return v2.encode_outputs(single, None), parameters


def v2_payload(outputs: list[tuple[str, Any]], parameters: Any, request: Payload) -> Payload:
    """A V2 reply's outputs as the payload passed on: one output's array, or a dict of them; its tags merged."""
    meta = dict(request.meta)
    tags = parameters.get("tags") if isinstance(parameters, dict) else None
    if isinstance(tags, str):  # gRPC parameters carry objects as JSON text
        tags = orjson.loads(tags)
    if isinstance(tags, dict):
        meta["tags"] = {**(meta.get("tags") or {}), **tags}
    if len(outputs) == 1:
        return Payload(outputs[0][1], [], meta, request.form, outputs[0][0])
    data = dict(outputs)
    return Payload(data, list(data), meta, request.form)


def _to_v2(payload: Payload) -> dict[str, Any]:
    inputs, parameters = v2_inputs(payload)
    request: dict[str, Any] = {"inputs": inputs}
    if parameters:
        request["parameters"] = parameters
    puid = payload.meta.get("puid")
    if isinstance(puid, str):
        request["id"] = puid
    return request


def _from_v2(body: Any, request: Payload, where: str) -> Payload:
    outputs = body.get("outputs") if isinstance(body, dict) else None
    if not isinstance(outputs, list) or not outputs:
        raise ModelError(f"{where}: the reply is not a V2 inference response with outputs")
    try:
        tensors = [v2.decode_tensor(output, f"outputs[{i}]") for i, output in enumerate(outputs)]
    except InvalidInput as exc:
        raise ModelError(f"{where}: the reply is not a valid V2 response ({exc.message})") from None
    return v2_payload([(tensor.name, tensor.data) for tensor in tensors], body.get("parameters"), request)
