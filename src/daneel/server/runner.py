"""Run the REST edge in one process, or in N worker processes sharing one socket.

Models load after the socket is listening, so health endpoints answer (503, with
the reason) while they load. A model that fails to load stops the server with a
non-zero exit code unless `keep_going` is set; the server then serves the models
that loaded, and its readiness keeps saying which one failed.

With `--workers N` on Linux the workers are forked from the supervisor once it has imported the
serving stack and the frameworks its models load with (each prepackaged server's `frameworks`), and before it loads a
model or starts a thread or an event loop: the workers share those modules' memory rather than each
importing a copy. Each worker loads its models itself; model files mapped into memory (uncompressed
joblib) share their pages through the page cache. Elsewhere, or when the supervisor runs a thread
that a fork would leave holding locks, workers are spawned as fresh interpreters instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import gc
import importlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from daneel.dataplane.dataplane import DataPlane
from daneel.dataplane.repository import Entry, Repository, Scanner
from daneel.errors import DaneelError
from daneel.observe import tracing
from daneel.observe.logs import setup_logging
from daneel.observe.metrics import Registry, Slots
from daneel.observe.payloads import PayloadLogs
from daneel.observe.telemetry import ServerMetrics, Telemetry
from daneel.runtime import prepackaged
from daneel.runtime.component import Component
from daneel.runtime.loader import ComponentSpec
from daneel.server import connections, tls
from daneel.server.access import AccessLog
from daneel.server.auth import Auth, Guard
from daneel.server.connections import Limits
from daneel.server.rest import PROMETHEUS_TEXT, RestApp
from daneel.server.settings import ServerSettings
from daneel.server.supervisor import LOAD_FAILED, Slot, Supervisor, Tracked, die_with_parent

if TYPE_CHECKING:
    from grpc import aio

log = logging.getLogger("daneel.server")

#: How long the process may take to close, after the shutdown timeout has passed, before it simply exits.
CLOSE_GRACE_S = 5.0

_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}

#: Makes a component from a spec, with `policy` the executor setting: the runtime's `loader.build` for
#: models, traffic's for deployment files (which imports the graph machinery, so only then).
Build = Callable[..., Component]


def bind(host: str, port: int, option: str = "--http-port") -> socket.socket:
    """Listen before anything loads, so a port in use fails fast and clearly, naming the `option` that moves it."""
    sock = _bound(host, port, "listen on", option)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def reserve(host: str, port: int, option: str = "--grpc-port") -> socket.socket:
    """Claim the gRPC port before anything loads, and hold it while the gRPC servers bind it.

    gRPC cannot serve a socket it did not open, so each process binds the port itself, sharing it
    through SO_REUSEPORT. A plain bind first fails fast when another process listens there; the
    socket kept (bound, never listening, so it takes no connections) fixes the port that 0 picked.
    """
    with _bound(host, port, "listen for gRPC on", option) as probe:
        port = probe.getsockname()[1]
    return _bound(host, port, "listen for gRPC on", option, reuse_port=True)


def _bound(host: str, port: int, purpose: str, option: str, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to host:port; a one-line exit naming `purpose`, and the `option` that picks
    another port, when the port is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"daneel: cannot {purpose} {host}:{port}: {exc.strerror}; {_remedy(exc, option)}") from None
    return sock


def _remedy(exc: OSError, option: str) -> str:
    if exc.errno == errno.EADDRNOTAVAIL:
        return "--host names an address this machine does not have"
    return f"choose another port with {option}"


@dataclass(slots=True)
class Listeners:
    """What a worker inherits: the HTTP socket, the metrics port's, and where workers pool their metrics."""

    http: socket.socket
    metrics: socket.socket | None = None
    metrics_dir: Path | None = None


def serve(specs: list[ComponentSpec], settings: ServerSettings, build: Build, scan: Scanner | None = None) -> int:
    """Serve until stopped; the exit code is non-zero when a model failed to load.

    `scan` reads the served target again, for models loaded at runtime that it gained since.
    """
    connections.make_room(settings.max_connections)
    listeners = Listeners(bind(settings.host, settings.http_port))
    port = listeners.http.getsockname()[1]
    names = ", ".join(spec.name for spec in specs)
    scheme = "https" if settings.tls_cert is not None else "http"
    with contextlib.ExitStack() as held:
        if settings.grpc:
            grpc_sock = held.enter_context(reserve(settings.host, settings.grpc_port))
            settings = settings.model_copy(update={"grpc_port": grpc_sock.getsockname()[1]})
        if settings.metrics and settings.metrics_port is not None:
            listeners.metrics = held.enter_context(bind(settings.host, settings.metrics_port, "--metrics-port"))
            log.info("metrics on %s://%s:%d/metrics", scheme, settings.host, listeners.metrics.getsockname()[1])
        log.info("serving %s on %s://%s:%d with %d worker(s)", names, scheme, settings.host, port, settings.workers)
        if settings.grpc:
            log.info("gRPC on %s:%d", settings.host, settings.grpc_port)
        if settings.workers == 1:
            return run_worker(specs, settings, build, listeners, scan)
        if settings.metrics:
            listeners.metrics_dir = Path(tempfile.mkdtemp(prefix="daneel-metrics-"))
            held.callback(shutil.rmtree, listeners.metrics_dir, ignore_errors=True)
        return _supervise(specs, settings, build, listeners)


def run_worker(
    specs: list[ComponentSpec],
    settings: ServerSettings,
    build: Build,
    listeners: Listeners,
    scan: Scanner | None = None,
    slot: Slot | None = None,
) -> int:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        code, loaded = runner.run(_serve(specs, settings, build, listeners, scan, slot))
        if not loaded:
            # A load still running on a thread cannot be interrupted, and closing the
            # loop would wait for it: the server has drained, so leave at once.
            logging.shutdown()
            sys.stderr.flush()
            os._exit(code)
    return code


def _loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


class _Server(uvicorn.Server):
    """uvicorn's server, leaving signals to daneel so that a stop during loading is handled too."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def telemetry(settings: ServerSettings, metrics_dir: Path | None = None, service: str = "daneel") -> Telemetry:
    """This process's telemetry, as the settings and the environment configure it; traces name `service`."""
    metrics = None
    if settings.metrics:
        slots = Slots.shared(metrics_dir) if metrics_dir is not None else Slots.local()
        metrics = ServerMetrics(Registry(slots, metrics_dir))
    payloads = PayloadLogs.from_environ(os.environ, settings.request_log, metrics)
    return Telemetry(metrics, tracing.from_environ(os.environ, service), payloads)


async def _serve(
    specs: list[ComponentSpec],
    settings: ServerSettings,
    build: Build,
    listeners: Listeners,
    scan: Scanner | None,
    slot: Slot | None = None,
) -> tuple[int, bool]:
    """Serve until a stop signal; (exit code, whether loading finished)."""
    observed = telemetry(settings, listeners.metrics_dir, specs[0].name if len(specs) == 1 else "daneel")
    builder = functools.partial(build, policy=settings.executor, telemetry=observed)
    repository = Repository.from_specs(specs, builder, scan)
    if settings.workers > 1:
        repository.frozen = (
            f"loading and unloading models at runtime needs --workers 1; each of the {settings.workers}"
            " workers holds models of its own"
        )
    dataplane = DataPlane(repository, observed, settings.request_timeout)
    if observed.payloads is not None:
        await observed.payloads.start()  # the loggers are built: each sink starts, sending what earlier runs left
    app: Any = RestApp(dataplane, settings.max_body_bytes)
    server = _Server(_config(app if slot is None else Tracked(app, slot), settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    grpc_server = await _start_grpc(dataplane, settings)
    servers = [(server, listeners.http)]
    if listeners.metrics is not None and observed.metrics is not None:
        servers.append((_Server(_config(MetricsApp(observed.metrics.registry), settings)), listeners.metrics))
    serving: asyncio.Future[Any] = asyncio.gather(*(each.serve(sockets=[sock]) for each, sock in servers))
    loading = asyncio.create_task(repository.load_all())
    loading.add_done_callback(_collect_again)
    if slot is not None:
        loading.add_done_callback(lambda _: slot.mark_loaded())
    stopping: asyncio.Future[Any] = asyncio.create_task(stop.wait())
    await asyncio.wait([serving, loading, stopping], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if loading.done() and _failed(loading.result(), settings.keep_going):
        code = 1
    elif loading.done():
        await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
    _exit_after(settings.shutdown_timeout + CLOSE_GRACE_S, code)
    for each, _ in servers:
        each.should_exit = True
    if grpc_server is not None:
        await grpc_server.stop(grace=settings.shutdown_timeout)
    await serving
    stopping.cancel()
    if loading.done():
        await repository.close()
    await observed.close()
    return code, loading.done()


def _exit_after(seconds: float, code: int) -> None:
    """Leave the process once `seconds` have passed, whatever still runs: a model's call on a thread
    cannot be interrupted, and the interpreter would wait for it at exit."""

    def leave() -> None:
        log.warning("still stopping %g s after the stop signal; exiting now", seconds)
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)

    timer = threading.Timer(seconds, leave)
    timer.daemon = True
    timer.start()


def _collect_again(_: object) -> None:
    """Turn the collector back on once the models have loaded (`daneel serve` starts with it off).

    What loading made is frozen first: later collections, on the request path, never walk a model's objects.
    """
    gc.freeze()
    gc.enable()


def _config(app: Any, settings: ServerSettings) -> uvicorn.Config:
    """uvicorn as daneel serves: httptools, daneel's access log only if asked for, and no proxy-headers middleware.

    That middleware rewrites a request's client address and scheme from X-Forwarded-* headers, which
    nothing in daneel reads; it cost about 1.5 µs a request, one more coroutine and a pass over the headers.
    """
    guard = Auth.from_settings(settings)
    if guard is not None:
        app = Guard(app, guard)
    limits = Limits(
        settings.header_timeout,
        settings.body_timeout,
        settings.max_header_bytes,
        settings.max_headers,
        settings.max_connections,
        settings.shutdown_timeout,
    )
    return uvicorn.Config(
        AccessLog(app) if settings.access_log else app,
        lifespan="off",
        http=connections.protocol(limits),
        timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]  # a float does; it calls call_later
        access_log=False,
        proxy_headers=False,
        log_level=settings.log_level,
        log_config=None,
        **tls.uvicorn_options(settings),
        server_header=False,  # names no server software to clients
    )


class MetricsApp:
    """The metrics port: GET /metrics and nothing else."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        found = scope["path"] == "/metrics"
        body = self.registry.render() if found else b"not found; metrics are at /metrics\n"
        content_type = PROMETHEUS_TEXT if found else b"text/plain; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 200 if found else 404,
                "headers": [(b"content-type", content_type)],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _start_grpc(dataplane: DataPlane, settings: ServerSettings) -> aio.Server | None:
    if not settings.grpc:
        return None
    from daneel.server import grpc as grpc_edge  # grpc and its protobufs cost startup time; only when serving it

    return await grpc_edge.start(
        dataplane,
        settings.host,
        settings.grpc_port,
        settings.grpc_max_message_bytes,
        settings.access_log,
        auth=Auth.from_settings(settings),
        credentials=tls.grpc_credentials(settings),
    )


def _failed(failed: list[Entry], keep_going: bool) -> bool:
    if not failed or keep_going:
        return False
    for entry in failed:
        print(f"daneel: model {entry.name!r} failed to load: {entry.reason}", file=sys.stderr)
    return True


def _supervise(specs: list[ComponentSpec], settings: ServerSettings, build: Build, listeners: Listeners) -> int:
    """Run the workers under a :class:`~daneel.server.supervisor.Supervisor`, which replaces any that dies."""
    context = _context(specs)

    def start(slot: Slot) -> BaseProcess:
        worker = context.Process(target=_worker_main, args=(specs, settings, build, listeners, slot))
        with _stop_signals_blocked():  # until the worker has replaced the handlers a fork gives it
            worker.start()
        return worker

    gc.enable()  # off since `daneel serve` started; the supervisor loads no model
    grace = settings.shutdown_timeout + CLOSE_GRACE_S + 5.0
    return Supervisor(start, functools.partial(Slot, context), settings.workers, grace).run()


def _context(specs: list[ComponentSpec]) -> ForkContext | SpawnContext:
    """fork, once the frameworks the workers will load with are imported; spawn where a fork is unsafe."""
    if sys.platform != "linux" or threading.active_count() > 1:
        return multiprocessing.get_context("spawn")
    modules = frameworks(specs)
    for module in modules:
        _preload(module)
    if threading.active_count() > 1:
        log.info("starting fresh worker processes: importing %s started a thread", ", ".join(modules))
        return multiprocessing.get_context("spawn")
    gc.collect()
    gc.freeze()  # the workers' collections then leave the supervisor's objects, and their pages, untouched
    return multiprocessing.get_context("fork")


def frameworks(specs: list[ComponentSpec]) -> list[str]:
    """The modules that the prepackaged servers among `specs` (or in their deployments' graphs) load with."""
    names = [name for spec in specs for name in _implementations(spec)]
    return list(dict.fromkeys(module for name in names for module in _frameworks(name)))


def _frameworks(implementation: str) -> tuple[str, ...]:
    server = prepackaged.SERVERS.get(implementation)
    return server.frameworks if server else ()


def _implementations(spec: ComponentSpec) -> list[str]:
    """The spec's implementation, or for a deployment those of its graphs' nodes.

    A deployment's spec points at its file, a model's at its folder.
    """
    if spec.path is None or not spec.path.is_file():
        return [spec.implementation]
    from daneel.spec import load

    components = spec.parameters.get("components_dir")
    try:
        deployment = load(spec.path, Path(components) if components else None)
    except DaneelError:
        return []
    return [node.implementation for node in deployment.nodes() if node.implementation]


def _preload(module: str) -> None:
    try:
        importlib.import_module(module)
    except Exception as exc:  # the worker that needs it fails to load its model, and says why
        log.debug("not preloading %s: %s", module, exc)


@contextlib.contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _worker_main(
    specs: list[ComponentSpec], settings: ServerSettings, build: Build, listeners: Listeners, slot: Slot
) -> None:
    die_with_parent()
    # A forked worker starts with the supervisor's handlers, and stop signals blocked until they are reset.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    setup_logging(settings.log_level, settings.log_format, capture=True)
    sys.exit(LOAD_FAILED if run_worker(specs, settings, build, listeners, slot=slot) else 0)
