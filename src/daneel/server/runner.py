"""Run the REST edge in one process, or in N worker processes sharing one socket.

Models load after the socket is listening, so health endpoints answer (503, with
the reason) while they load. A model that fails to load stops the server with a
non-zero exit code unless `keep_going` is set; the server then serves the models
that loaded, and its readiness keeps saying which one failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Generator
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn
from grpc import aio

from daneel.dataplane.dataplane import DataPlane
from daneel.dataplane.repository import Entry, Repository, Scanner
from daneel.runtime.loader import ComponentSpec
from daneel.server import grpc as grpc_edge
from daneel.server.rest import RestApp
from daneel.server.settings import ServerSettings
from daneel.traffic.build import build

log = logging.getLogger("daneel.server")

#: How long calls in flight may take to finish once a stop signal arrives.
GRPC_GRACE_S = 5.0


def bind(host: str, port: int) -> socket.socket:
    """Listen before anything loads, so a port in use fails fast and clearly."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"daneel: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def reserve(host: str, port: int) -> socket.socket:
    """Claim the gRPC port before anything loads, and hold it while the gRPC servers bind it.

    gRPC cannot serve a socket it did not open, so each process binds the port itself, sharing it
    through SO_REUSEPORT. A plain bind first fails fast when another process listens there; the
    socket kept (bound, never listening, so it takes no connections) fixes the port that 0 picked.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SystemExit(f"daneel: cannot listen for gRPC on {host}:{port}: {exc.strerror}") from None
        port = probe.getsockname()[1]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def serve(specs: list[ComponentSpec], settings: ServerSettings, scan: Scanner | None = None) -> int:
    """Serve until stopped; the exit code is non-zero when a model failed to load.

    `scan` reads the served target again, for models loaded at runtime that it gained since.
    """
    sock = bind(settings.host, settings.http_port)
    port = sock.getsockname()[1]
    names = ", ".join(spec.name for spec in specs)
    with contextlib.ExitStack() as held:
        if settings.grpc:
            grpc_sock = held.enter_context(reserve(settings.host, settings.grpc_port))
            settings = settings.model_copy(update={"grpc_port": grpc_sock.getsockname()[1]})
        log.info("serving %s on http://%s:%d with %d worker(s)", names, settings.host, port, settings.workers)
        if settings.grpc:
            log.info("gRPC on %s", grpc_edge.address(settings.host, settings.grpc_port))
        if settings.workers == 1:
            return run_worker(specs, settings, sock, scan)
        return _supervise(specs, settings, sock)


def run_worker(
    specs: list[ComponentSpec], settings: ServerSettings, sock: socket.socket, scan: Scanner | None = None
) -> int:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        code, loaded = runner.run(_serve(specs, settings, sock, scan))
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


async def _serve(
    specs: list[ComponentSpec], settings: ServerSettings, sock: socket.socket, scan: Scanner | None = None
) -> tuple[int, bool]:
    """Serve until a stop signal; (exit code, whether loading finished)."""
    repository = Repository.from_specs(specs, functools.partial(build, policy=settings.executor), scan)
    if settings.workers > 1:
        repository.frozen = (
            f"loading and unloading models at runtime needs --workers 1; each of the {settings.workers}"
            " workers holds models of its own"
        )
    dataplane = DataPlane(repository)
    app = RestApp(dataplane, settings.max_body_bytes)
    config = uvicorn.Config(
        app, lifespan="off", http="httptools", access_log=False, log_level=settings.log_level, log_config=None
    )
    server = _Server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    grpc_server = await _start_grpc(dataplane, settings)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    loading = asyncio.create_task(repository.load_all())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([serving, loading, stopping], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if loading.done() and _failed(loading.result(), settings.keep_going):
        code = 1
    elif loading.done():
        await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    if grpc_server is not None:
        await grpc_server.stop(grace=GRPC_GRACE_S)
    await serving
    stopping.cancel()
    if loading.done():
        await repository.close()
    return code, loading.done()


async def _start_grpc(dataplane: DataPlane, settings: ServerSettings) -> aio.Server | None:
    if not settings.grpc:
        return None
    return await grpc_edge.start(dataplane, settings.host, settings.grpc_port, settings.grpc_max_message_bytes)


def _failed(failed: list[Entry], keep_going: bool) -> bool:
    if not failed or keep_going:
        return False
    for entry in failed:
        print(f"daneel: model {entry.name!r} failed to load: {entry.reason}", file=sys.stderr)
    return True


def _supervise(specs: list[ComponentSpec], settings: ServerSettings, sock: socket.socket) -> int:
    """Run the workers; replace one that a signal killed (a crash in native code, the OOM killer).

    A worker that exits by itself with an error (a model failed to load) stops them all.
    """
    context = multiprocessing.get_context("spawn")

    def start() -> BaseProcess:
        worker = context.Process(target=_worker_main, args=(specs, settings, sock))
        worker.start()
        return worker

    alive = [start() for _ in range(settings.workers)]
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for worker in alive:
            if worker.is_alive():
                worker.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    while alive:
        for worker in _finished(alive):
            alive.remove(worker)
            if stopping or not worker.exitcode:
                continue
            if worker.exitcode < 0:
                log.warning("worker %d was killed by signal %d; starting another", worker.pid, -worker.exitcode)
                alive.append(start())
            else:
                code = worker.exitcode
                stop(signal.SIGTERM, None)
    return code


def _finished(workers: list[BaseProcess]) -> list[BaseProcess]:
    ready = wait([w.sentinel for w in workers])
    done = [w for w in workers if w.sentinel in ready]
    for worker in done:
        worker.join()
    return done


def _worker_main(specs: list[ComponentSpec], settings: ServerSettings, sock: socket.socket) -> None:
    from daneel.server.logs import setup_logging

    setup_logging(settings.log_level)
    sys.exit(run_worker(specs, settings, sock))
