"""Factory fixtures shared by the whole suite.

`serve` (and `module_serve`, for servers shared by a module's tests) start real
`daneel serve` subprocesses on free ports and stop them, with any workers they
spawned, at teardown. `make_model` writes a Python class into a model folder;
`iris` trains a scikit-learn model into one, `people` a pipeline fitted on a DataFrame.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import requests

#: How long a server may take to start on a loaded two-core machine.
STARTUP_TIMEOUT_S = 60.0
DANEEL = Path(sys.executable).with_name("daneel")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def daneel_command(*args: str) -> list[str]:
    """The `daneel` console script installed beside this interpreter, or the module entry point."""
    if DANEEL.exists():
        return [str(DANEEL), *args]
    return [sys.executable, "-c", "from daneel.cli.main import main; main()", *args]


@dataclass
class Server:
    """One `daneel serve` process; `stderr` is what it has written so far.

    `grpc_port` is the gRPC port it was given (None with --no-grpc or its own --grpc-port), and
    `grpc_target` the "127.0.0.1:PORT" a gRPC client connects to.
    """

    url: str
    port: int
    proc: subprocess.Popen[bytes]
    stderr_path: Path
    grpc_port: int | None = None

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S, in_a_row: int = 1) -> None:
        """Wait until /v2/health/ready answers 200 (`in_a_row` times, each on a new connection, so that
        every worker of several has loaded); fail with the server's stderr if it never does."""
        _poll(self, "/v2/health/ready", timeout, in_a_row)

    def wait_workers(self, workers: int, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Wait until /metrics, summed over the workers, counts every model READY in each of them (twenty
        ready answers in a row can all come from the one worker that has loaded, on a busy machine)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = requests.get(self.url + "/metrics", timeout=5)
            if response.status_code != 200:
                return  # no metrics to tell (--no-metrics, or a token guards them): the readiness polls stand
            ready = [
                float(line.rsplit(" ", 1)[1])
                for line in response.text.splitlines()
                if line.startswith("daneel_model_state{") and 'state="READY"' in line
            ]
            if ready and all(count >= workers for count in ready):
                return
            time.sleep(0.1)
        pytest.fail(f"daneel serve: not every one of {workers} workers loaded within {timeout}s:\n{self.stderr}")

    def stop(self) -> None:
        """SIGTERM the process group (the server and its workers), then SIGKILL what is left."""
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        _signal_group(self.proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _poll(server: Server, path: str, timeout: float, in_a_row: int = 1) -> None:
    deadline = time.monotonic() + timeout
    answered = 0
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"daneel serve exited with {server.proc.returncode}:\n{server.stderr}")
        try:
            answered = answered + 1 if requests.get(server.url + path, timeout=5).status_code == 200 else 0
        except (requests.ConnectionError, requests.Timeout):
            answered = 0
        if answered >= in_a_row:
            return
        time.sleep(0.1 if answered == 0 else 0)
    pytest.fail(f"daneel serve: {path} did not answer 200 within {timeout}s:\n{server.stderr}")


class Servers:
    """Starts `daneel serve` processes and stops every one of them on `close`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.servers: list[Server] = []

    def __call__(self, target: str | Path, *args: str, ready: bool = True, **options: Any) -> Server:
        """Start a server and wait until it answers /health/ping (and, with `ready`, /v2/health/ready)."""
        server = self.start(target, *args, **options)
        _poll(server, "/health/ping", STARTUP_TIMEOUT_S)
        if ready:
            # A worker still loading answers 503 while another is ready; wait for all of them.
            server.wait_ready(in_a_row=20 if "--workers" in args else 1)
            if "--workers" in args:
                server.wait_workers(int(args[args.index("--workers") + 1]))
        return server

    def exits(self, target: str | Path, *args: str, **options: Any) -> Server:
        """Start a server that is expected to exit by itself, and wait until it has."""
        server = self.start(target, *args, **options)
        try:
            server.proc.wait(timeout=STARTUP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"daneel serve was expected to exit but still runs:\n{server.stderr}")
        return server

    def start(
        self,
        target: str | Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        port: int | None = None,
    ) -> Server:
        """Start a server without waiting for it, on `port` or a free one, and gRPC on another free one.

        Every server gets its own gRPC port, so that servers started in parallel never meet on 8081.
        """
        port = port or free_port()
        grpc_port = None if {"--grpc-port", "--no-grpc"} & set(args) else free_port()
        grpc_args = ("--grpc-port", str(grpc_port)) if grpc_port else ()
        command = daneel_command(
            "serve", str(target), "--host", "127.0.0.1", "--http-port", str(port), *grpc_args, *args
        )
        stderr_path = self.log_dir / f"daneel-{len(self.servers)}-{port}.stderr"
        with stderr_path.open("wb") as stderr:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        server = Server(f"http://127.0.0.1:{port}", port, proc, stderr_path, grpc_port)
        self.servers.append(server)
        return server

    def close(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Servers]:
    """Start `daneel serve TARGET ARGS...` for one test: `serve(target, *args, env=, cwd=, ready=)`."""
    servers = Servers(tmp_path)
    yield servers
    servers.close()


@pytest.fixture(scope="module")
def module_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """`serve` for servers that a whole module's tests share."""
    servers = Servers(tmp_path_factory.mktemp("servers"))
    yield servers
    servers.close()


def run_daneel(*args: str, cwd: str | Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a short-lived `daneel` command and capture its output."""
    return subprocess.run(
        daneel_command(*args), capture_output=True, text=True, cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL
    )


@pytest.fixture(scope="session")
def daneel_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `daneel ARGS...` to completion: `daneel_cli(*args, cwd=None)` → CompletedProcess."""
    return run_daneel


@pytest.fixture(scope="session")
def make_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Write `source` (a Python class) as `NAME/FILENAME`, plus `files` (relative path → text); return NAME/."""

    def make(
        source: str, name: str = "model", files: Mapping[str, str] | None = None, filename: str = "model.py"
    ) -> Path:
        folder = tmp_path_factory.mktemp("models") / name
        folder.mkdir()
        (folder / filename).write_text(textwrap.dedent(source))
        for relative, text in (files or {}).items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        return folder

    return make


@dataclass
class Iris:
    """A logistic regression trained on iris and saved as `path/model.joblib`."""

    path: Path
    model: Any
    X: np.ndarray


@pytest.fixture(scope="session")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Iris:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    folder = tmp_path_factory.mktemp("iris") / "iris"
    folder.mkdir()
    joblib.dump(model, folder / "model.joblib")
    return Iris(folder, model, X[::10])


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory, iris: Iris) -> Path:
    """The examples' iris folder and deployment files, with a freshly trained model (a clone has none)."""
    root = tmp_path_factory.mktemp("examples")
    shutil.copytree(iris.path, root / "iris")
    shutil.copytree(Path(__file__).parents[1] / "examples" / "deployments", root / "deployments")
    return root


@dataclass
class People:
    """A pipeline fitted on a DataFrame of mixed columns (age, city, score), saved as `path/model.joblib`.

    Numbers are scaled and the string column `city` one-hot encoded by a ColumnTransformer, then a
    logistic regression answers; `frame` holds rows to send, in the training DataFrame's dtypes.
    """

    path: Path
    model: Any
    frame: Any


@pytest.fixture(scope="session")
def people(tmp_path_factory: pytest.TempPathFactory) -> People:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.DataFrame(
        {
            "age": [33, 45, 23, 51, 38, 29, 60, 41],
            "city": ["a", "b", "a", "c", "b", "c", "a", "b"],
            "score": [2.2, 1.0, 3.5, 0.4, 2.9, 1.1, 0.7, 2.5],
        }
    )
    columns = ColumnTransformer([("numbers", StandardScaler(), ["age", "score"]), ("city", OneHotEncoder(), ["city"])])
    model = Pipeline([("columns", columns), ("classify", LogisticRegression())])
    model.fit(frame, [1, 0, 1, 0, 1, 0, 0, 1])
    folder = tmp_path_factory.mktemp("people") / "people"
    folder.mkdir()
    joblib.dump(model, folder / "model.joblib")
    return People(folder, model, frame.iloc[:3])


def _wait_for(predicate: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def wait_for() -> Callable[..., None]:
    """Poll `predicate` until it holds; fail the test naming `what` after `timeout` seconds."""
    return _wait_for


_modules = itertools.count()


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[Callable[[str], tuple[Path, str]]]:
    """Write `source` as a module of its own in tmp_path; return the folder and module name.

    Each module gets a fresh name, as Python caches imported modules by name.
    """
    written: list[str] = []

    def write(source: str) -> tuple[Path, str]:
        name = f"user_model_{next(_modules)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)
        return tmp_path, name

    yield write
    for name in written:
        sys.modules.pop(name, None)
    for entry in {str(tmp_path), str(tmp_path.resolve())}:
        while entry in sys.path:
            sys.path.remove(entry)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{what} did not listen within 30 s")


@pytest.fixture(scope="session")
def wait_for_port() -> Callable[[int, subprocess.Popen[bytes], str], None]:
    """Wait until a process listens on a loopback port: `wait_for_port(port, proc, what)`; fail naming
    `what` if it exits first or takes over 30 s."""
    return _wait_for_port


@pytest.fixture
def node_model() -> Iterator[int]:
    """tests/graph/node_model.js, a Seldon model in JavaScript (it triples values), served by Node.js."""
    binary = shutil.which("node")
    if binary is None:
        pytest.skip("node (Node.js) is not installed")
    port = free_port()
    script = Path(__file__).parent / "graph" / "node_model.js"
    proc = subprocess.Popen([binary, str(script), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_port(port, proc, "node_model.js")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
