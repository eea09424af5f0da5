"""`daneel serve --workers N`: N processes behind one port, stopped together."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from daneel.runtime.loader import ComponentSpec
from daneel.server import runner
from daneel.spec import load
from daneel.traffic.build import deployment_spec

PID = """
    import os
    from pathlib import Path


    class Pid:
        def __init__(self, marker_dir):
            self.marker_dir = marker_dir

        def load(self):
            Path(self.marker_dir, str(os.getpid())).touch()

        def predict(self, X, names, meta):
            return X + 1

        def tags(self):
            return {"pid": os.getpid()}
"""

BROKEN = """
    class Broken:
        def load(self):
            raise RuntimeError("no GPU named cuda:7 on this machine")

        def predict(self, X, names, meta):
            return X
"""


DEPLOYMENT = """
    apiVersion: daneel.dev/v1alpha1
    kind: ModelDeployment
    metadata:
      name: two-frameworks
    spec:
      predictors:
      - name: default
        graph:
          name: trees
          type: MODEL
          implementation: XGBOOST_SERVER
          modelUri: {folder}
          children:
          - name: linear
            type: MODEL
            implementation: SKLEARN_SERVER
            modelUri: {folder}
"""


def parent_of(pid: int) -> int:
    # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after its ')'.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1])


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def children_of(pid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent_or_none(int(p.name)) == pid]


def _parent_or_none(pid: int) -> int | None:
    try:
        return parent_of(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None


def maps(pid: int) -> str:
    """The files that process pid has mapped into memory (shared libraries, memory-mapped files)."""
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    """Where each worker leaves a file named by its pid once it has loaded the model."""
    path = tmp_path / "markers"
    path.mkdir()
    return path


@pytest.fixture
def two_workers(serve: Any, make_model: Any, markers: Path, wait_for: Any) -> Any:
    server = serve(make_model(PID, "pid"), "--workers", "2", "--parameters", json.dumps({"marker_dir": str(markers)}))
    wait_for(lambda: len(list(markers.iterdir())) == 2, "both workers to load the model")
    # Both workers loaded; make sure whichever answers also reports ready.
    for _ in range(10):
        server.wait_ready()
    return server


@pytest.fixture
def worker_pids(two_workers: Any, markers: Path) -> set[int]:
    return {int(path.name) for path in markers.iterdir()}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_two_workers_are_children_of_the_server(two_workers: Any, worker_pids: set[int]) -> None:
    assert len(worker_pids) == 2
    assert two_workers.proc.pid not in worker_pids
    assert {parent_of(pid) for pid in worker_pids} == {two_workers.proc.pid}


def test_two_workers_serve_requests_on_one_port(two_workers: Any, worker_pids: set[int]) -> None:
    served_by = set()
    for i in range(30):
        response = requests.post(
            two_workers.url + "/api/v1.0/predictions",
            json={"data": {"ndarray": [[i, i]]}},
            headers={"Connection": "close"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["ndarray"] == [[i + 1, i + 1]]
        served_by.add(response.json()["meta"]["tags"]["pid"])
    assert served_by <= worker_pids
    v2 = requests.post(
        two_workers.url + "/v2/models/pid/infer",
        json={"inputs": [{"name": "x", "datatype": "INT64", "shape": [2], "data": [1, 2]}]},
        timeout=30,
    )
    assert v2.json()["outputs"][0]["data"] == [2, 3]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigterm_stops_the_server_and_its_workers(two_workers: Any, worker_pids: set[int], wait_for: Any) -> None:
    os.kill(two_workers.proc.pid, signal.SIGTERM)
    assert two_workers.proc.wait(timeout=60) == 0
    wait_for(lambda: all(gone(pid) for pid in worker_pids), "the workers to exit")


def test_a_failed_load_with_two_workers_exits_non_zero(serve: Any, make_model: Any) -> None:
    server = serve.exits(make_model(BROKEN, "broken"), "--workers", "2")
    assert server.returncode != 0
    assert "no GPU named cuda:7 on this machine" in server.stderr


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_worker_killed_by_a_signal_is_replaced(
    two_workers: Any, worker_pids: set[int], markers: Path, wait_for: Any
) -> None:
    victim = min(worker_pids)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(list(markers.iterdir())) == 3, "a replacement worker to load the model")
    replacement = {int(path.name) for path in markers.iterdir()} - worker_pids
    assert parent_of(replacement.pop()) == two_workers.proc.pid
    assert two_workers.returncode is None
    for _ in range(10):
        response = requests.post(
            two_workers.url + "/api/v1.0/predictions", json={"data": {"ndarray": [[1]]}}, timeout=30
        )
        assert response.status_code == 200


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc")
def test_workers_map_the_model_file_and_fork_from_a_supervisor_holding_its_framework(
    serve: Any, iris: Any, wait_for: Any
) -> None:
    server = serve(iris.path, "--workers", "2")
    model_file = str((iris.path / "model.joblib").resolve())
    wait_for(lambda: len(children_of(server.proc.pid)) == 2, "two workers")
    workers = children_of(server.proc.pid)
    wait_for(lambda: all(model_file in maps(pid) for pid in workers), "both workers to map the model file")
    # The supervisor imported scikit-learn before forking, so the workers share its pages.
    assert "/sklearn/" in maps(server.proc.pid)
    assert model_file not in maps(server.proc.pid)
    answer = requests.post(
        server.url + "/v2/models/iris/infer",
        json={"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 4], "data": iris.X[0].tolist()}]},
        timeout=30,
    )
    assert answer.json()["outputs"][0]["data"] == pytest.approx(iris.model.predict_proba(iris.X[:1])[0].tolist())


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_replacement_worker_stops_with_the_server(
    two_workers: Any, worker_pids: set[int], markers: Path, wait_for: Any
) -> None:
    os.kill(min(worker_pids), signal.SIGKILL)
    wait_for(lambda: len(list(markers.iterdir())) == 3, "a replacement worker to load the model")
    replacement = {int(path.name) for path in markers.iterdir()} - worker_pids
    os.kill(two_workers.proc.pid, signal.SIGTERM)
    assert two_workers.proc.wait(timeout=60) == 0
    wait_for(lambda: all(gone(pid) for pid in replacement | worker_pids), "every worker to exit")


def test_the_frameworks_preloaded_are_those_of_the_served_models(tmp_path: Path) -> None:
    specs = [ComponentSpec("iris", "SKLEARN_SERVER", tmp_path), ComponentSpec("mine", "model.Mine", tmp_path)]
    assert runner.frameworks(specs) == ["joblib", "sklearn"]
    assert runner.frameworks([ComponentSpec("mine", "model.Mine", tmp_path)]) == []


def test_the_frameworks_of_a_deployment_are_those_of_its_nodes(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(textwrap.dedent(DEPLOYMENT.format(folder=tmp_path)))
    assert runner.frameworks([deployment_spec(path, load(path))]) == ["xgboost", "joblib", "sklearn"]


def test_workers_are_spawned_afresh_while_the_supervisor_runs_a_thread() -> None:
    # A fork would copy the thread's locks into the workers, held by nobody there.
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert runner._context([]).get_start_method() == "spawn"
    finally:
        stop.set()
        thread.join()
