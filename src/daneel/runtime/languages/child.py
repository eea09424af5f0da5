"""A component's child process (node, java), supervised: started, called, restarted when it dies.

daneel listens on a Unix socket in a private temporary folder and starts the child with its path;
the child connects and greets (frame id 0) once the user's class has loaded. Until then, and from
the moment it exits until a restarted child greets again, :attr:`Child.down` says why it cannot
serve, which readiness reports. Calls in flight when it dies fail with a ModelError that names its
exit code or signal and its last lines on stderr; it is restarted with a growing delay. The child
leaves with daneel: it exits when the socket closes, and :meth:`Child.close` stops it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, cast

from daneel.errors import LoadError, ModelError, NotReady
from daneel.runtime.languages import wire

log = logging.getLogger("daneel.runtime.child")

#: The longest wait for a child's greeting, its user's class loading included.
START_TIMEOUT_S = 300.0
#: How long a stopped child gets to exit before it is killed.
STOP_GRACE_S = 5.0
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0
#: A child that served this long before dying is restarted after the first delay again.
STEADY_S = 30.0
_STDERR_LINES = 20
#: How long the last lines on stderr of a child that has exited are waited for.
STDERR_DRAIN_S = 1.0

#: The child's command line, given the socket it must connect to.
Command = Callable[[str], Sequence[str]]
#: Makes the command line, off the event loop, as the component loads (Java sources compile then).
Prepare = Callable[[], Command]


class _Connection(asyncio.Protocol):
    """The socket to one child: frames in, each handed to the child by id."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 4:
            size = int.from_bytes(buffer[:4], "little")
            if len(buffer) < 4 + size:
                return
            frame = wire.decode(buffer[4 : 4 + size])
            del buffer[: 4 + size]
            self.child.received(self, frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.child.lost(self)


class Child:
    """One child process and the calls in flight to it."""

    def __init__(self, name: str, language: str, command: Command, cwd: Path) -> None:
        self.name = name
        self.language = language
        self.down: str | None = "starting"
        self.hello: dict[str, Any] = {}
        self.restarts = 0
        self._command = command
        self._cwd = cwd
        self._folder = Path(tempfile.mkdtemp(prefix="daneel-child-"))
        self._socket = str(self._folder / "socket")
        self._server: asyncio.AbstractServer | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._connections: list[_Connection] = []  # the Java worker opens one per thread that answers
        self._turn = 0
        self._greeted: asyncio.Future[dict[str, Any]] | None = None
        self._calls: dict[int, asyncio.Future[wire.Frame]] = {}
        self._ids = itertools.count(1)
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stderr_read: asyncio.Task[Any] | None = None
        self._closing = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> dict[str, Any]:
        """Start the child and wait for its greeting; a LoadError says why it did not come."""
        loop = asyncio.get_running_loop()
        if self._server is None:
            self._server = await loop.create_unix_server(lambda: _Connection(self), self._socket)
        self._stderr.clear()
        greeted: asyncio.Future[Any] = loop.create_future()
        self._greeted = greeted
        process = self._process = await self._spawn()
        exited: asyncio.Future[Any] = asyncio.ensure_future(process.wait())
        try:
            done, _ = await asyncio.wait({greeted, exited}, timeout=START_TIMEOUT_S, return_when="FIRST_COMPLETED")
        except BaseException:
            exited.cancel()
            raise
        if greeted in done and greeted.exception() is None:
            self._watch(process, exited)
            self.hello = greeted.result()
            self.down = None
            return self.hello
        if exited in done:
            await self._drained()
            raise LoadError(f"{self.name}: the {self.language} process {self._exit(process.returncode)} as it started")
        exited.cancel()
        await self._stop(process)
        if greeted.done():
            raise LoadError(f"{self.name}: {greeted.exception()}")
        raise LoadError(f"{self.name}: the {self.language} process did not start within {START_TIMEOUT_S:.0f}s")

    async def _spawn(self) -> asyncio.subprocess.Process:
        command = list(self._command(self._socket))
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                cwd=self._cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C at the terminal is daneel's to handle, not the child's
            )
        except OSError as exc:
            raise LoadError(f"{self.name}: cannot start {command[0]}: {exc.strerror or exc}") from None
        assert process.stdout is not None and process.stderr is not None
        self._task(self._pump(process.stdout, logging.INFO, None))
        self._stderr_read = self._task(self._pump(process.stderr, logging.WARNING, self._stderr))
        log.info("%s: started %s (pid %d)", self.name, self.language, process.pid)
        return process

    async def _pump(self, stream: asyncio.StreamReader, level: int, keep: collections.deque[str] | None) -> None:
        """The child's output, line by line, into daneel's log."""
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").rstrip()
            if keep is not None:
                keep.append(text)
            log.log(level, "%s: %s", self.name, text)

    def _watch(self, process: asyncio.subprocess.Process, exited: asyncio.Future[int]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        exited.add_done_callback(lambda _: self._exited(process, loop.time() - started))

    def _exited(self, process: asyncio.subprocess.Process, served: float) -> None:
        if self._closing or process is not self._process:
            return
        self.down = f"the {self.language} process exited; restarting it"  # at once, for readiness
        self._task(self._restart(process, FIRST_DELAY_S if served >= STEADY_S or not self.restarts else None))

    async def _drained(self) -> None:
        """Wait a moment for the last lines on stderr of a child that has exited, to report them."""
        if self._stderr_read is not None:
            await asyncio.wait({self._stderr_read}, timeout=STDERR_DRAIN_S)

    async def _restart(self, process: asyncio.subprocess.Process, delay: float | None) -> None:
        await self._drained()
        how = self._exit(process.returncode)
        self.down = f"the {self.language} process {how}; restarting it"
        log.error("%s: %s", self.name, self.down)
        self._fail_calls(ModelError(f"{self.name}: the {self.language} process {how}"))
        delay = delay or FIRST_DELAY_S * 2 ** min(self.restarts, 6)
        while not self._closing:
            await asyncio.sleep(min(delay, MAX_DELAY_S))
            self.restarts += 1
            try:
                await self.start()
            except LoadError as exc:
                self.down = f"{exc.message}; restarting it"
                log.error("%s", exc.message)
                delay *= 2
                continue
            log.info("%s: the %s process is back (restart %d)", self.name, self.language, self.restarts)
            return

    def _exit(self, code: int | None) -> str:
        """How the child ended, with its last lines on stderr."""
        if code is not None and code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        tail = " | ".join(line for line in self._stderr if line)
        return f"{how} (its last lines on stderr: {tail})" if tail else how

    async def call(self, header: dict[str, Any], blobs: list[bytes]) -> wire.Frame:
        connections = self._connections
        if self.down is not None or not connections:
            raise NotReady(f"model {self.name!r} is not ready: {self.down or 'no connection'}")
        self._turn += 1
        transport = connections[self._turn % len(connections)].transport
        if transport is None:
            raise NotReady(f"model {self.name!r} is not ready: no connection")
        id = next(self._ids) & 0xFFFFFFFF or next(self._ids)
        future: asyncio.Future[wire.Frame] = asyncio.get_running_loop().create_future()
        self._calls[id] = future
        try:
            transport.write(wire.encode(id, header, blobs))
            return await future
        finally:
            self._calls.pop(id, None)

    def received(self, connection: _Connection, frame: wire.Frame) -> None:
        if frame.id == 0:
            self._greet(connection, frame.header)
            return
        future = self._calls.get(frame.id)
        if future is not None and not future.done():
            future.set_result(frame)

    def _greet(self, connection: _Connection, header: dict[str, Any]) -> None:
        """A connection's greeting: the first one makes the child ready; each one joins the connections in use."""
        greeted = self._greeted
        if "hello" not in header:
            if greeted is not None and not greeted.done():
                greeted.set_exception(LoadError(str(header.get("error", "no greeting"))))
            return
        self._connections.append(connection)
        if greeted is not None and not greeted.done():
            greeted.set_result(dict(header["hello"]))

    def lost(self, connection: _Connection) -> None:
        if connection in self._connections:
            self._connections.remove(connection)

    def _fail_calls(self, error: Exception) -> None:
        for future in self._calls.values():
            if not future.done():
                future.set_exception(error)

    def _task(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Stop the child (it is killed if it will not exit) and remove the socket's folder."""
        self._closing = True
        self.down = "stopped"
        if self._process is not None:
            await self._stop(self._process)
        self._fail_calls(NotReady(f"model {self.name!r} is stopping"))
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        shutil.rmtree(self._folder, ignore_errors=True)

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):  # it has gone already
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):  # it has gone already
                os.kill(process.pid, signal.SIGKILL)
            await process.wait()
