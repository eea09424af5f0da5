"""Which servers a run loads, and the command line and configuration of each.

daneel serves the model folder as a user would. MLServer gets one repository folder per
configuration (settings.json beside iris/model-settings.json), with `debug: false` so that, like
daneel, it writes no access log line per request. The raw ASGI baseline is bench/baseline.py.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from servers import Spec, free_port

MODEL_NAME = "iris"
GRAPH_NAME = "iris-chain"
LARGE_NAME = "mlp-200mb"
INFER = f"/v2/models/{MODEL_NAME}/infer"
NAMES = ("daneel", "daneel-workers2", "mlserver-inproc", "mlserver-workers", "mlserver-batching", "raw-asgi")


@dataclass(frozen=True)
class Tools:
    """Where the programs under test live."""

    python: Path
    daneel: Path
    mlserver: Path
    baseline: Path
    work: Path
    model: Path
    batch_size: int
    batch_time: float
    daneel_options: tuple[str, ...]


def lineup(tools: Tools) -> dict[str, Spec]:
    """Every server a run can load, by the name --servers takes, in the order they run."""
    specs = [
        daneel_spec(tools, "daneel", "daneel", []),
        daneel_spec(tools, "daneel-workers2", "daneel --workers 2", ["--workers", "2"]),
        mlserver_spec(tools, "mlserver-inproc", "MLServer in-process", {"parallel_workers": 0}, {}),
        mlserver_spec(tools, "mlserver-workers", "MLServer parallel workers (default)", {}, {}),
        mlserver_spec(tools, "mlserver-batching", f"MLServer adaptive batching {_batching(tools)}", {}, _batch(tools)),
        Spec("raw-asgi", "raw ASGI baseline", "baseline", _baseline(tools), tools.work, INFER),
    ]
    return {spec.name: spec for spec in specs}


def graph_spec(tools: Tools, deployment: Path) -> Spec:
    """daneel serving the 3-node deployment; the pass-through module is imported from the file's folder."""

    def launch(port: int) -> list[str]:
        return [str(tools.daneel), "serve", str(deployment), "--http-port", str(port), *tools.daneel_options]

    return Spec(
        "daneel-graph", "daneel 3-node graph", "daneel", launch, deployment.parent, f"/v2/models/{GRAPH_NAME}/infer"
    )


def daneel_spec(tools: Tools, name: str, label: str, extra: list[str]) -> Spec:
    folder = tools.model.parent

    def launch(port: int) -> list[str]:
        return [str(tools.daneel), "serve", str(folder), "--http-port", str(port), *tools.daneel_options, *extra]

    return Spec(name, label, "daneel", launch, tools.work, INFER)


def large_spec(tools: Tools, model: Path, workers: int) -> Spec:
    """daneel serving the ~200 MB model with `workers` processes; it answers the iris payload too."""
    folder = model.parent

    def launch(port: int) -> list[str]:
        options = [*tools.daneel_options, "--workers", str(workers)]
        return [str(tools.daneel), "serve", str(folder), "--http-port", str(port), *options]

    label = f"daneel --workers {workers}"
    return Spec(f"daneel-large-{workers}", label, "daneel", launch, tools.work, f"/v2/models/{folder.name}/infer")


def mlserver_spec(tools: Tools, name: str, label: str, settings: dict[str, object], model: dict[str, object]) -> Spec:
    repository = tools.work / "mlserver" / name
    (repository / MODEL_NAME).mkdir(parents=True, exist_ok=True)
    model_settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(tools.model.resolve())},
        **model,
    }
    (repository / MODEL_NAME / "model-settings.json").write_text(json.dumps(model_settings, indent=2) + "\n")

    def launch(port: int) -> list[str]:
        ports = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port()}
        server = {"debug": False, "host": "127.0.0.1", **ports, **settings}
        (repository / "settings.json").write_text(json.dumps(server, indent=2) + "\n")
        return [str(tools.mlserver), "start", str(repository)]

    return Spec(name, label, "mlserver", launch, repository, INFER)


def _baseline(tools: Tools) -> Callable[[int], list[str]]:
    def launch(port: int) -> list[str]:
        return [str(tools.python), str(tools.baseline), str(tools.model), "--port", str(port), "--name", MODEL_NAME]

    return launch


def _batch(tools: Tools) -> dict[str, object]:
    return {"max_batch_size": tools.batch_size, "max_batch_time": tools.batch_time}


def _batching(tools: Tools) -> str:
    return f"(max_batch_size {tools.batch_size}, max_batch_time {tools.batch_time * 1000:g} ms)"


def daneel_options(daneel: Path) -> tuple[str, ...]:
    """Loopback only, like the other servers; --no-grpc where this daneel has it, as all are loaded over HTTP."""
    return ("--host", "127.0.0.1", *(["--no-grpc"] if "--no-grpc" in daneel_help(daneel, "serve") else []))


def daneel_help(daneel: Path, command: str) -> str:
    """The --help text of a daneel subcommand, or "" when the command does not exist."""
    done = subprocess.run([str(daneel), command, "--help"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""
