"""A real MLflow tracking server on loopback for the registry tests, and a model to register in it.

`tracking_server(folder)` starts `mlflow server` with a SQLite backend and a local artifact store
under `folder` and stops it on exit; it skips the test when MLflow's server is not installed
(`pip install 'mlflow>=3'`; the runtime extra installs only mlflow-skinny, which has no server).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from conftest import free_port

_STARTUP_TIMEOUT_S = 120.0


@dataclass
class Tracking:
    """A running tracking server: `uri` for MLFLOW_TRACKING_URI, `env` to pass to `daneel` subprocesses."""

    uri: str
    log: Path

    @property
    def env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.uri}

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def register(self, name: str, model: Any, X: np.ndarray) -> str:
        """Log `model` (a fitted scikit-learn estimator) in a new run, register it as `name`; its version."""
        import mlflow
        import mlflow.sklearn

        mlflow.set_tracking_uri(self.uri)
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                serialization_format="cloudpickle",  # skops, MLflow's default, is an extra install
                registered_model_name=name,
                input_example=X[:2],
            )
        return str(info.registered_model_version)


def _mlflow() -> str:
    beside = Path(sys.executable).with_name("mlflow")
    found = str(beside) if beside.exists() else shutil.which("mlflow")
    if found is None:
        pytest.skip("the mlflow command is not installed (pip install 'mlflow>=3')")
    try:
        import mlflow.server  # noqa: F401  (mlflow-skinny has the command but not the server)
    except ImportError:
        pytest.skip("MLflow's tracking server is not installed: mlflow-skinny only (pip install 'mlflow>=3')")
    return found


@contextlib.contextmanager
def tracking_server(folder: Path) -> Iterator[Tracking]:
    port = free_port()
    log = folder / "mlflow-server.log"
    command = [
        _mlflow(),
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=folder,  # some releases also write a default mlflow.db into the working directory
            # Without its job runner and consumers: a dozen processes that these tests never use.
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
    try:
        tracking = Tracking(f"http://127.0.0.1:{port}", log)
        _wait(tracking, proc)
        yield tracking
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _wait(tracking: Tracking, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{tracking.log.read_text(errors='replace')}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{tracking.uri}/health", timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"mlflow server did not answer within {_STARTUP_TIMEOUT_S}s:\n{tracking.log.read_text()}")
