"""The servers under test: how each is launched, and a fleet that starts, watches and always stops them.

Each server runs in a session of its own, so stopping it stops every process it started (MLServer's
inference workers, daneel's --workers) and its memory is read over that whole process tree.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

READY_TIMEOUT = 180.0
STOP_TIMEOUT = 15.0
POLL = 0.01

Launch = Callable[[int], list[str]]


@dataclass(frozen=True)
class Spec:
    """One server under test: launch(port) gives its command line, run in cwd."""

    name: str
    label: str
    kind: str
    launch: Launch
    cwd: Path
    infer_path: str


@dataclass
class Running:
    spec: Spec
    port: int
    process: subprocess.Popen[bytes]
    started: float
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.spec.infer_path}"


@dataclass
class Fleet:
    """Every server process this run started; leaving the `with` block stops those still running."""

    logs: Path
    running: list[Running] = field(default_factory=list)

    def __enter__(self) -> Fleet:
        self.logs.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for server in list(self.running):
            self.stop(server)

    def start(self, spec: Spec) -> Running:
        port = free_port()
        log = self.logs / f"{spec.name}.log"
        command = spec.launch(port)
        with log.open("wb") as out:
            started = time.perf_counter()
            process = subprocess.Popen(
                command, cwd=spec.cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = Running(spec, port, process, started, log)
        self.running.append(server)
        return server

    def stop(self, server: Running) -> None:
        if server not in self.running:
            return
        _signal_group(server.process, signal.SIGTERM)
        try:
            server.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _signal_group(server.process, signal.SIGKILL)
            server.process.wait()
        # Workers that outlived their parent are still in its process group.
        _signal_group(server.process, signal.SIGKILL)
        self.running.remove(server)


def wait_ready(server: Running, timeout: float = READY_TIMEOUT) -> float:
    """Seconds from the server's start to its first 200 on /v2/health/ready."""
    deadline = server.started + timeout
    while time.perf_counter() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.spec.label} exited with {server.process.returncode}: {last_words(server.log)}")
        if status(server.port, "GET", "/v2/health/ready") == 200:
            return time.perf_counter() - server.started
        time.sleep(POLL)
    raise RuntimeError(f"{server.spec.label} was not ready within {timeout:.0f} s: {last_words(server.log)}")


def check_answer(server: Running, payload: bytes) -> None:
    """One request before any load: every server must answer the payload with iris' three probabilities.

    A 503 is a worker still loading its model while another answered ready: the request is sent again.
    """
    deadline = time.perf_counter() + READY_TIMEOUT
    status, body = _post(server, payload)
    while status == 503 and time.perf_counter() < deadline:
        time.sleep(POLL)
        status, body = _post(server, payload)
    outputs = json.loads(body).get("outputs", []) if status == 200 else []
    if not outputs or outputs[0].get("shape") != [1, 3]:
        raise RuntimeError(f"{server.spec.label} answered {status} {body[:300]!r}; expected 1x3 probabilities")


def spread(server: Running, payload: bytes, requests: int, clients: int) -> None:
    """Send requests from several clients at once, each on a new connection, so that every worker of a
    server with several gets some (a kept-alive connection stays with the worker that accepted it).

    A 503 is a worker still loading its model (another one answered ready): that request is sent again.
    """
    deadline = time.perf_counter() + READY_TIMEOUT

    def client() -> None:
        answered = 0
        while answered < requests // clients:
            status, _ = _post(server, payload)
            if status == 503 and time.perf_counter() < deadline:
                time.sleep(POLL)
            elif status != 200:
                raise RuntimeError(f"{server.spec.label} answered {status} while warming up")
            else:
                answered += 1

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for done in [pool.submit(client) for _ in range(clients)]:
            done.result()


def _post(server: Running, payload: bytes) -> tuple[int, bytes]:
    """One request on a connection of its own: the status and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request("POST", server.spec.infer_path, payload, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def status(port: int, method: str, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request(method, path)
        return connection.getresponse().status
    except OSError:
        return 0
    finally:
        connection.close()


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB summed over pid and all its descendants, from /proc/<pid>/smaps_rollup."""
    each = process_memory_kib(pid)
    return sum(rss for rss, _ in each.values()), sum(pss for _, pss in each.values())


def process_memory_kib(pid: int) -> dict[int, tuple[int, int]]:
    """(RSS, PSS) in KiB of pid and of each of its descendants, by process id."""
    found = {each: _rollup(each) for each in [pid, *descendants(pid)]}
    return {each: (fields.get("Rss", 0), fields.get("Pss", 0)) for each, fields in found.items() if fields}


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of pid and its descendants, all their threads included."""
    ticks = 0
    for each in [pid, *descendants(pid)]:
        fields = _stat(Path(f"/proc/{each}"))
        if fields:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent(entry)
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def _parent(proc: Path) -> int | None:
    fields = _stat(proc)
    return int(fields[1]) if fields else None


def _stat(proc: Path) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name, from the state on (field 3 of proc(5))."""
    try:
        stat = (proc / "stat").read_text()
    except OSError:
        return []
    # The command name in parentheses may hold spaces and parentheses; the fields after the last ')' are fixed.
    return stat.rsplit(")", 1)[1].split()


def _rollup(pid: int) -> dict[str, int]:
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return {}
    fields = {}
    for line in lines[1:]:
        key, _, rest = line.partition(":")
        fields[key] = int(rest.split()[0])
    return fields


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def last_words(log: Path) -> str:
    """The last line a server wrote, which is where daneel and Python put the reason they stopped."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()] if log.exists() else []
    return f"{lines[-1].strip() if lines else 'no output'} (log: {log})"


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
