"""Request logging: each request and response to a deployment or a node, as a CloudEvent.

A :class:`PayloadLogs` is made per serving process. It holds one
:class:`~daneel.observe.delivery.Delivery` per sink (a URL, or a file), shared by
every `logger:` that names it, and gives out a cheap :class:`PayloadLogger`
handle per `logger:`. The data plane logs what a deployment (or, with
`--request-log`, any model) is asked and answers; the graph executor logs a
node's input and output. A handle decides once per request whether it logs it
(its `sample`, and the `X-Daneel-Skip-Logging` header), then queues references
to the payloads; they are encoded as JSON later, off the request path.

Events carry the types and extensions Seldon Core's executor sends
(`ce-requestid` pairs a request with its response), plus daneel's own
`ce-deployment`, `ce-predictor` and `ce-node`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daneel.observe.cloudevents import TYPES, Event, EventIds, timestamp
from daneel.observe.delivery import Delivery, DeliverySettings, Tally
from daneel.observe.journal import Journal, folder_for, state_dir
from daneel.observe.metrics import Family
from daneel.observe.sinks import FileSink, HttpSink, Sink
from daneel.observe.telemetry import ServerMetrics
from daneel.protocol import context, jsonwire, v1, v2
from daneel.protocol.payload import Payload
from daneel.spec.model import Logger, LoggerMode

log = logging.getLogger("daneel.requestlog")

#: Requests, responses and feedback kept in memory for the console, newest last.
RECENT = 50

#: A request with this header set to true is not logged, by any logger.
SKIP_HEADER = "X-Daneel-Skip-Logging"
_SKIP_HEADERS = (SKIP_HEADER.lower().encode(), b"seldon-skip-logging")  # Seldon's name too
_TRUE = (b"true", b"1", b"yes")


@dataclass(frozen=True, slots=True)
class Source:
    """Where a logger's events come from. An empty `deployment` means the model each request names."""

    deployment: str = ""
    predictor: str | None = None
    node: str | None = None
    namespace: str | None = None


class Record:
    """One queued request, response or feedback: references only, encoded by :meth:`event` off the request path."""

    __slots__ = ("kind", "logger", "model", "predictor", "protocol", "request_id", "time", "value")

    def __init__(
        self,
        logger: PayloadLogger,
        kind: str,
        value: Any,
        request_id: str,
        protocol: str,
        model: str,
        predictor: str | None,
    ) -> None:
        self.logger, self.kind, self.value, self.request_id = logger, kind, value, request_id
        self.protocol, self.model, self.predictor, self.time = protocol, model, predictor, time.time()

    def event(self) -> Event:
        return self.logger.event(self)


class PayloadLogger:
    """One `logger:` of a deployment or node, bound to its sink."""

    def __init__(
        self,
        delivery: Delivery,
        mode: LoggerMode,
        sample: float,
        source: Source,
        ids: EventIds,
        rng: random.Random,
        recent: deque[Record] | None = None,
    ) -> None:
        """`recent`: where the requests, responses and feedback logged are kept as well, for the console."""
        self.delivery = delivery
        self.recent = recent
        self.requests = mode in (LoggerMode.ALL, LoggerMode.REQUEST)
        self.responses = mode in (LoggerMode.ALL, LoggerMode.RESPONSE)
        self.sample = sample
        self.source = source
        self._ids = ids
        self._rng = rng

    def wants(self) -> bool:
        """Whether to log the request being served: drawn by `sample`, and not skipped by its header."""
        sample = self.sample
        if sample < 1.0 and not (sample > 0.0 and self._rng.random() < sample):
            return False
        return not skipped(context.current())

    def request(
        self, value: Any, request_id: str, protocol: str, model: str = "", predictor: str | None = None
    ) -> None:
        if self.requests:
            self._logged(Record(self, "request", value, request_id, protocol, model, predictor))

    def response(
        self, value: Any, request_id: str, protocol: str, model: str = "", predictor: str | None = None
    ) -> None:
        if self.responses:
            self._logged(Record(self, "response", value, request_id, protocol, model, predictor))

    def node_input(self, payload: Payload) -> None:
        """What a graph node is given, paired with its output by the request's `puid`."""
        if self.requests:
            self.delivery.append(Record(self, "request", payload, _puid(payload), _protocol(payload), "", None))

    def node_output(self, payload: Payload, given: Payload) -> None:
        """What a graph node answered to `given`."""
        if self.responses:
            self.delivery.append(Record(self, "response", payload, _puid(given), _protocol(given), "", None))

    def feedback(self, value: Any, request_id: str, model: str = "", predictor: str | None = None) -> None:
        """Feedback on an answer is logged where answers are, as Seldon does."""
        if self.responses:
            self._logged(Record(self, "feedback", value, request_id, "seldon", model, predictor))

    def _logged(self, record: Record) -> None:
        self.delivery.append(record)
        if self.recent is not None:
            self.recent.append(record)

    def detection(self, value: dict[str, Any]) -> None:
        """A detector's finding (drift): sent whatever the logger's mode and sample, as an alert is."""
        self.delivery.append(Record(self, "drift", value, "", "", "", value.get("predictor")))

    def event(self, record: Record) -> Event:
        source = self.source
        deployment = source.deployment or record.model
        predictor = source.predictor or record.predictor
        extensions = {
            "requestid": record.request_id,
            "modelid": source.node or deployment,
            "inferenceservicename": deployment,
            "protocol": record.protocol,
            "deployment": deployment,
        }
        if not record.request_id:  # an alert, not about one request
            del extensions["requestid"], extensions["protocol"]
        if source.namespace:
            extensions["namespace"] = source.namespace
        if predictor:
            extensions["endpoint"] = extensions["predictor"] = predictor
        if source.node:
            extensions["node"] = source.node
        where = "/".join(part for part in ("/daneel", deployment, source.predictor, source.node) if part)
        return Event(self._ids(), TYPES[record.kind], where, timestamp(record.time), encode(record), extensions)


def _puid(payload: Payload) -> str:
    puid = payload.meta.get("puid")
    return "" if puid is None else str(puid)


def _protocol(payload: Payload) -> str:
    return "v2" if payload.form == "v2" else "seldon"


def skipped(request: context.RequestContext) -> bool:
    """Whether the request asks not to be logged."""
    for name, value in request.raw_headers:
        if name in _SKIP_HEADERS:
            return value.strip().lower() in _TRUE
    return False


def encode(record: Record) -> bytes:
    """A record's payload as JSON, as it is (or would be) on the wire in the record's protocol."""
    value = record.value
    if isinstance(value, Payload):
        value = _payload_body(value, record)
    elif isinstance(value, v2.InferenceRequest):
        value = v2.as_body(value)
    return jsonwire.dumps(value)


def _payload_body(payload: Payload, record: Record) -> Any:
    """A node's input or output: a SeldonMessage, or a V2 request or response."""
    if payload.form != "v2":
        return v1.encode_message(payload, payload.form)
    if record.kind == "request":
        named = Payload(payload.data, payload.names, {}, "v2", payload.output_name or "input-0")
        return {"id": record.request_id, "inputs": v2.encode_outputs(named, None)}
    tensors = v2.encode_outputs(payload, None)
    return v2.encode_response(record.logger.source.node or record.model, None, record.request_id, tensors)


class PayloadLogs:
    """The request logs of one serving process: a delivery per sink, and the loggers that feed them.

    `request_log` (`daneel serve --request-log URL|FILE`) logs every request to every model served, and
    is where a `logger:` naming neither `url` nor `file` (as Seldon allows) sends its events.
    """

    def __init__(
        self,
        state: Path,
        request_log: str | None = None,
        settings: DeliverySettings | None = None,
        metrics: ServerMetrics | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.state = state
        self.settings = settings or DeliverySettings()
        self.deliveries: dict[str, Delivery] = {}
        self._counts: Family | None = None
        if metrics is not None:
            self._counts = metrics.registry.counter(
                "daneel_request_log_events_total",
                "Request log events sent, spilled to disk, or lost.",
                ("sink", "outcome"),
            )
        self._ids = EventIds()
        self._rng = rng or random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._target = _target(request_log) if request_log else None
        self._served: dict[str, tuple[PayloadLogger, ...]] = {}
        #: The last requests, responses and feedback logged to a deployment or model, by any logger.
        self.recent: deque[Record] = deque(maxlen=RECENT)
        self.default = self._make(self._target, LoggerMode.ALL, 1.0, Source()) if self._target else None
        self._defaults = (self.default,) if self.default else ()
        self.active = self.default is not None  # whether any logger exists: then requests get ids up front

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], request_log: str | None = None, metrics: ServerMetrics | None = None
    ) -> PayloadLogs:
        """Journals under daneel's state folder ($DANEEL_STATE_DIR, else $XDG_STATE_HOME/daneel)."""
        return cls(state_dir(environ), request_log, metrics=metrics)

    def node_logger(self, config: Logger, source: Source, base_dir: Path | None = None) -> PayloadLogger | None:
        """The handle for a node's `logger:`; None (with a warning) when it names no sink and there is no default."""
        target = self._config_target(config, base_dir, f"node {source.node}")
        return self._make(target, config.mode, config.sample, source) if target else None

    def deployment_logger(
        self, config: Logger | None, source: Source, base_dir: Path | None = None
    ) -> PayloadLogger | None:
        """The handle for a deployment's `logger:`, logging every request to the deployment (served by its name).

        Called for every deployment built, with or without a logger, so that a reloaded one drops its old logger.
        """
        target = self._config_target(config, base_dir, f"deployment {source.deployment}") if config else None
        logger = self._make(target, config.mode, config.sample, source) if config and target else None
        self._served[source.deployment] = (*((logger,) if logger else ()), *self._defaults)
        return logger

    def served(self, name: str) -> tuple[PayloadLogger, ...]:
        """The loggers of requests to the model or deployment served as `name`: its own, and --request-log's."""
        return self._served.get(name, self._defaults)

    async def start(self) -> None:
        """Start every sink's delivery, each replaying what earlier runs left in its journal."""
        self._loop = asyncio.get_running_loop()
        for delivery in self.deliveries.values():
            delivery.start()

    async def close(self) -> None:
        """Send what is queued (briefly), journal the rest."""
        await asyncio.gather(*(delivery.close() for delivery in self.deliveries.values()))

    def _make(self, target: str, mode: LoggerMode, sample: float, source: Source) -> PayloadLogger:
        self.active = True
        return PayloadLogger(self._delivery(target), mode, sample, source, self._ids, self._rng, self.recent)

    def _delivery(self, target: str) -> Delivery:
        delivery = self.deliveries.get(target)
        if delivery is None:
            sink: Sink = FileSink(Path(target))
            if _is_url(target):
                sink = HttpSink(target, self.settings.concurrency, self.settings.timeout_s)
            journal = Journal(folder_for(self.state, target))
            delivery = self.deliveries[target] = Delivery(sink, journal, self.settings, self._tally(target))
            if self._loop is not None:  # already serving: start it there (this may run on a loading thread)
                self._loop.call_soon_threadsafe(delivery.start)
        return delivery

    def _tally(self, target: str) -> Tally:
        if self._counts is None:
            return Tally()
        sent, spilled, failed = (self._counts.counter(target, outcome) for outcome in ("sent", "spilled", "failed"))
        return Tally(counters=(sent, spilled, failed))

    def _config_target(self, config: Logger, base_dir: Path | None, owner: str) -> str | None:
        if config.url:
            return config.url
        if config.file:
            path = Path(config.file).expanduser()
            return str((base_dir or Path.cwd()) / path if not path.is_absolute() else path)
        if self._target is None:
            log.warning("the logger of %s names no url or file, and there is no --request-log: not logging", owner)
        return self._target


def _target(request_log: str) -> str:
    return request_log if _is_url(request_log) else str(Path(request_log).expanduser().resolve())


def _is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))
