"""Health that tells the truth: not ready while loading or after a failed load, with the reason."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

SLOW = """
    import os
    import time


    class Slow:
        def __init__(self, flag):
            self.flag = flag

        def load(self):
            while not os.path.exists(self.flag):
                time.sleep(0.05)

        def predict(self, X, names, meta):
            return X * 10
"""

BROKEN = """
    class Broken:
        def load(self):
            raise RuntimeError("weights file is corrupt: checksum 1234 != 5678")

        def predict(self, X, names, meta):
            return X
"""

BAD_INIT = """
    class BadInit:
        def __init__(self, threshold=0.5):
            if threshold > 1:
                raise ValueError(f"threshold must be at most 1, got {threshold}")

        def predict(self, X, names, meta):
            return X
"""

BAD_IMPORT = """
    import a_module_that_does_not_exist_anywhere


    class BadImport:
        def predict(self, X, names, meta):
            return X
"""


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=30)


@pytest.fixture
def flag(tmp_path: Path) -> Iterator[Path]:
    """The file whose creation lets the `slow` model finish loading."""
    path = tmp_path / "loaded.flag"
    yield path
    path.touch()


@pytest.fixture
def slow(serve: Any, make_model: Any, flag: Path) -> Any:
    """A server whose model loads only once the test creates `flag`."""
    return serve(make_model(SLOW, "slow"), "--parameters", json.dumps({"flag": str(flag)}), ready=False)


def test_a_loading_model_is_live_but_not_ready(slow: Any) -> None:
    assert get(slow.url + "/v2/health/live").status_code == 200
    assert get(slow.url + "/health/ping").status_code == 200
    ready = get(slow.url + "/v2/health/ready")
    assert ready.status_code == 503
    assert ready.json() == {"error": "not ready: model 'slow': loading"}
    model_ready = get(slow.url + "/v2/models/slow/ready")
    assert model_ready.status_code == 503
    assert "slow" in model_ready.json()["error"] and "loading" in model_ready.json()["error"]


def test_requests_to_a_loading_model_are_503_with_the_reason(slow: Any) -> None:
    v2 = requests.post(
        slow.url + "/v2/models/slow/infer",
        json={"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}]},
        timeout=30,
    )
    assert v2.status_code == 503
    assert "loading" in v2.json()["error"]
    seldon = requests.post(slow.url + "/api/v1.0/predictions", json={"data": {"ndarray": [1]}}, timeout=30)
    assert seldon.status_code == 503
    assert seldon.json()["status"]["status"] == "FAILURE"
    assert "loading" in seldon.json()["status"]["info"]
    status = get(slow.url + "/health/status")
    assert status.status_code == 503
    assert "loading" in status.json()["status"]["info"]


def test_a_model_becomes_ready_once_loaded(slow: Any, flag: Path) -> None:
    assert get(slow.url + "/v2/models/slow/ready").status_code == 503
    flag.touch()
    slow.wait_ready()
    assert get(slow.url + "/v2/models/slow/ready").json() == {"name": "slow", "ready": True}
    assert get(slow.url + "/health/status").status_code == 200
    response = requests.post(slow.url + "/api/v1.0/predictions", json={"data": {"ndarray": [[1, 2]]}}, timeout=30)
    assert response.json()["data"]["ndarray"] == [[10, 20]]


def test_sigterm_while_loading_stops_the_server(slow: Any) -> None:
    slow.proc.send_signal(signal.SIGTERM)
    try:
        code = slow.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"daneel serve ignored SIGTERM while a model was loading:\n{slow.stderr}")
    # uvicorn re-raises the signal after its graceful shutdown, so the process ends by SIGTERM.
    assert code in (0, -signal.SIGTERM)


def test_a_failed_load_exits_non_zero_with_the_models_error(serve: Any, make_model: Any) -> None:
    server = serve.exits(make_model(BROKEN, "broken"))
    assert server.returncode != 0
    assert "weights file is corrupt: checksum 1234 != 5678" in server.stderr
    assert "broken" in server.stderr


def test_a_failing_constructor_exits_non_zero_with_its_error(serve: Any, make_model: Any) -> None:
    server = serve.exits(make_model(BAD_INIT, "badinit"), "--parameters", '{"threshold": 2}')
    assert server.returncode != 0
    assert "threshold must be at most 1, got 2" in server.stderr


def test_a_failing_import_exits_non_zero_with_its_error(serve: Any, make_model: Any) -> None:
    server = serve.exits(make_model(BAD_IMPORT, "badimport"))
    assert server.returncode != 0
    assert "a_module_that_does_not_exist_anywhere" in server.stderr


def test_keep_going_serves_on_and_ready_says_why_the_model_failed(serve: Any, make_model: Any, wait_for: Any) -> None:
    server = serve(make_model(BROKEN, "broken"), "--keep-going", ready=False)

    def failed() -> bool:
        return "loading" not in get(server.url + "/v2/models/broken/ready").text

    wait_for(failed, "the load to fail")
    ready = get(server.url + "/v2/models/broken/ready")
    assert ready.status_code == 503
    assert "weights file is corrupt: checksum 1234 != 5678" in ready.json()["error"]
    infer = requests.post(server.url + "/api/v1.0/predictions", json={"strData": "x"}, timeout=30)
    assert infer.status_code == 503
    assert "weights file is corrupt" in infer.json()["status"]["info"]
    assert get(server.url + "/v2/health/live").status_code == 200
    not_ready = get(server.url + "/v2/health/ready")
    assert not_ready.status_code == 503
    assert "model 'broken'" in not_ready.json()["error"]
    assert "weights file is corrupt" in not_ready.json()["error"]
    assert server.returncode is None


BLOCKING = """
    import os
    import time
    from pathlib import Path


    class Blocking:
        def __init__(self, started, release):
            self.started = started
            self.release = release

        def predict(self, X, names, meta):
            if X[0][0] == 1:
                Path(self.started).touch()
                while not os.path.exists(self.release):
                    time.sleep(0.05)
            return X
"""


@pytest.mark.parametrize("executor", ["auto", "thread"])
def test_a_blocked_synchronous_predict_does_not_stop_the_server_answering(
    serve: Any, make_model: Any, tmp_path: Path, executor: str, wait_for: Any
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    params = json.dumps({"started": str(started), "release": str(release)})
    server = serve(make_model(BLOCKING, "blocking"), "--executor", executor, "--parameters", params)
    warmups = 0 if executor == "auto" else 5
    for _ in range(warmups):
        quick = requests.post(server.url + "/api/v1.0/predictions", json={"data": {"ndarray": [[0]]}}, timeout=30)
        assert quick.status_code == 200
    with ThreadPoolExecutor(1) as pool:
        blocked = pool.submit(
            requests.post, server.url + "/api/v1.0/predictions", json={"data": {"ndarray": [[1]]}}, timeout=120
        )
        try:
            wait_for(started.exists, "predict to start")
            assert get(server.url + "/health/ping").status_code == 200
            assert get(server.url + "/v2/health/ready").status_code == 200
        finally:
            release.touch()
        assert blocked.result().status_code == 200
