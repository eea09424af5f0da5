"""Node.js components served by a real `daneel serve`, with a real `node` child, over every edge."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import signal
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import tritonclient.grpc as triton
from tests.runtime.foreign import child_gone, wait_for, wait_status, write_folder

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node (Debian: apt-get install nodejs)")

MODEL = """\
const fs = require("fs");
const path = require("path");

class MyModel {
  constructor(parameters) {
    this.scale = parameters.scale || 1;
  }
  async init() {
    if (fs.existsSync(path.join(__dirname, "fail-init"))) throw new Error("told to fail by fail-init");
    fs.writeFileSync(path.join(__dirname, "pid"), String(process.pid));
  }
  async predict(X, names) {
    if (X === "throw" || (Array.isArray(X) && X[0] === "throw")) throw new RangeError("no answer for throw");
    if (X === "exit") {
      console.error("out of cheese");
      process.exit(7);
    }
    if (X === "hang") {
      console.error("hanging on purpose");
      fs.writeFileSync(path.join(__dirname, "hanging"), "");
      return new Promise(() => {});
    }
    await new Promise((resolve) => setImmediate(resolve));
    return X.map((row) => row.map((v) => v * this.scale));
  }
  tags() {
    return { language: "nodejs" };
  }
  metrics() {
    return [{ type: "COUNTER", key: "node_calls", value: 1 }];
  }
  health_status() {
    return { node: "fine" };
  }
  init_metadata() {
    return { name: "doubler", versions: ["v1"], inputs: [{ name: "x", datatype: "FP64", shape: [-1, 2] }] };
  }
}

module.exports = MyModel;
"""


@pytest.fixture
def node_model(tmp_path: Path) -> Path:
    return write_folder(
        tmp_path / "doubler",
        {"MyModel.js": MODEL, "daneel.yaml": "parameters:\n  scale: 2\n"},
    )


def test_a_nodejs_model_answers_both_rest_protocols_and_grpc(serve: Any, node_model: Path) -> None:
    server = serve(node_model)

    seldon = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[1, 2], [3, 4]]}})
    assert seldon.status_code == 200, seldon.text
    body = seldon.json()
    assert body["data"]["ndarray"] == [[2.0, 4.0], [6.0, 8.0]]
    assert body["meta"]["tags"] == {"language": "nodejs"}
    assert body["meta"]["metrics"] == [{"type": "COUNTER", "key": "node_calls", "value": 1}]

    request = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}
    v2 = requests.post(f"{server.url}/v2/models/doubler/infer", json=request)
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == [2.0, 4.0, 6.0]
    assert v2.json()["outputs"][0]["shape"] == [1, 3]

    with triton.InferenceServerClient(server.grpc_target) as client:
        tensor = triton.InferInput("x", [2, 2], "FP64")
        tensor.set_data_from_numpy(np.array([[0.5, 1.0], [1.5, 2.0]]))
        result = client.infer("doubler", [tensor]).as_numpy("output-0")
        assert client.is_model_ready("doubler")
    np.testing.assert_array_equal(result, [[1.0, 2.0], [3.0, 4.0]])


def test_init_metadata_and_health_status_come_from_the_js_class(serve: Any, node_model: Path) -> None:
    server = serve(node_model)

    metadata = requests.get(f"{server.url}/v2/models/doubler").json()
    assert metadata["versions"] == ["v1"]
    assert metadata["platform"] == "nodejs"
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP64", "shape": [-1, 2]}]
    status = requests.get(f"{server.url}/health/status")
    assert status.status_code == 200, status.text
    assert status.json()["jsonData"] == {"node": "fine"}


def test_a_throwing_predict_is_a_protocol_shaped_500_that_names_the_message(serve: Any, node_model: Path) -> None:
    server = serve(node_model)

    seldon = requests.post(f"{server.url}/api/v1.0/predictions", json={"strData": "throw"})
    assert seldon.status_code == 500
    assert seldon.json()["status"]["info"] == "doubler.predict raised RangeError: no answer for throw"
    request = {"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1], "data": ["throw"]}]}
    v2 = requests.post(f"{server.url}/v2/models/doubler/infer", json=request)
    assert v2.status_code == 500
    assert "no answer for throw" in v2.json()["error"]
    assert requests.get(f"{server.url}/v2/health/ready").status_code == 200  # the child lives on


def test_a_killed_child_fails_the_calls_in_flight_and_is_restarted(serve: Any, node_model: Path) -> None:
    server = serve(node_model)
    pid = int((node_model / "pid").read_text())
    (node_model / "pid").unlink()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        hanging = pool.submit(requests.post, f"{server.url}/api/v1.0/predictions", json={"strData": "hang"})
        wait_for(lambda: (node_model / "hanging").exists(), "the JS predict to start hanging")
        (node_model / "fail-init").write_text("")  # the restarts fail until it goes
        os.kill(pid, signal.SIGKILL)
        answer = hanging.result(timeout=60)

    assert answer.status_code == 500
    info = answer.json()["status"]["info"]
    assert "was killed by SIGKILL" in info and "hanging on purpose" in info
    not_ready = wait_status(server.url + "/v2/health/ready", 503)
    assert "restarting" in not_ready.text
    assert requests.get(f"{server.url}/v2/models/doubler/ready").status_code == 503
    assert "told to fail by fail-init" in wait_status(server.url + "/v2/health/ready", 503, "fail-init").text

    (node_model / "fail-init").unlink()
    wait_status(server.url + "/v2/health/ready", 200)
    again = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[1, 1]]}})
    assert again.json()["data"]["ndarray"] == [[2.0, 2.0]]
    assert int((node_model / "pid").read_text()) != pid


def test_a_child_that_exits_names_its_code_and_last_words_and_comes_back(serve: Any, node_model: Path) -> None:
    server = serve(node_model)

    answer = requests.post(f"{server.url}/api/v1.0/predictions", json={"strData": "exit"})

    assert answer.status_code == 500
    assert answer.json()["status"]["info"] == (
        "doubler: the nodejs process exited with code 7 (its last lines on stderr: out of cheese)"
    )
    wait_status(server.url + "/v2/health/ready", 200)
    again = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[3]]}})
    assert again.json()["data"]["ndarray"] == [[6.0]]


def test_the_child_leaves_with_daneel(serve: Any, node_model: Path) -> None:
    stopped = serve(node_model)
    stopped_pid = int((node_model / "pid").read_text())
    stopped.stop()
    wait_for(lambda: child_gone(stopped_pid), "the child of a stopped daneel to exit")

    killed = serve(node_model)
    killed_pid = int((node_model / "pid").read_text())
    os.kill(killed.proc.pid, signal.SIGKILL)
    wait_for(lambda: child_gone(killed_pid), "the child of a killed daneel to exit")


ROUTER = """\
module.exports = {
  async route(X, names) {
    return X[0][0] > 0 ? 1 : 0;
  },
};
"""

UPPER = """\
class Upper {
  transform_input(X) {
    return typeof X === "string" ? X.toUpperCase() : X;
  }
}
module.exports = Upper;
"""

PYTHON_MODEL = """\
class Model:
    def __init__(self, answer):
        self.answer = answer

    def predict(self, X, names):
        return [[self.answer]] if not isinstance(X, str) else X + "!"
"""

PYTHON_TRANSFORMER = """\
class Plus:
    def transform_input(self, X, names):
        return X + 1
"""


def deployment(folder: Path, graph: str) -> Path:
    path = folder / "deploy.yaml"
    head = """\
        apiVersion: daneel.dev/v1alpha1
        kind: ModelDeployment
        metadata: {name: mixed}
        spec:
          predictors:
          - name: main
            graph:
    """
    path.write_text(textwrap.dedent(head) + textwrap.indent(textwrap.dedent(graph), " " * 6))
    return path


def test_a_js_router_and_a_js_transformer_compose_with_python_models(serve: Any, tmp_path: Path) -> None:
    write_folder(tmp_path / "router", {"router.js": ROUTER, "package.json": '{"main": "router.js"}'})
    write_folder(tmp_path / "upper", {"MyModel.js": UPPER})
    write_folder(tmp_path / "left", {"model.py": PYTHON_MODEL, "daneel.yaml": "parameters: {answer: left}\n"})
    write_folder(tmp_path / "right", {"model.py": PYTHON_MODEL, "daneel.yaml": "parameters: {answer: right}\n"})
    routed = deployment(
        tmp_path,
        """\
        name: router
        type: ROUTER
        modelUri: router
        children:
        - {name: left, modelUri: left}
        - {name: right, modelUri: right}
        """,
    )
    server = serve(routed)

    for x, expected in ((-1, "left"), (1, "right")):
        answer = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[x]]}})
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["ndarray"] == [[expected]]

    (tmp_path / "second").mkdir()
    shouted = deployment(
        tmp_path / "second",
        f"""\
        name: upper
        type: TRANSFORMER
        modelUri: {tmp_path / "upper"}
        children:
        - {{name: left, modelUri: {tmp_path / "left"}}}
        """,
    )
    server = serve(shouted)
    answer = requests.post(f"{server.url}/api/v1.0/predictions", json={"strData": "hello"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["strData"] == "HELLO!"


def test_a_python_transformer_feeds_a_nodejs_model_in_a_deployment(
    serve: Any, tmp_path: Path, node_model: Path
) -> None:
    write_folder(tmp_path / "plus", {"plus.py": PYTHON_TRANSFORMER})
    path = deployment(
        tmp_path,
        f"""\
        name: plus
        type: TRANSFORMER
        modelUri: plus
        children:
        - {{name: doubler, modelUri: {node_model}}}
        """,
    )
    server = serve(path)

    answer = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[1, 2]]}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["ndarray"] == [[4.0, 6.0]]
    assert answer.json()["meta"]["requestPath"] == {"plus": "plus.Plus", "doubler": "MyModel.js"}
    v2 = requests.post(
        f"{server.url}/v2/models/mixed/infer",
        json={"inputs": [{"name": "x", "datatype": "INT64", "shape": [1, 2], "data": [0, 1]}]},
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == [2.0, 4.0]

    (node_model / "fail-init").write_text("")  # a graph is not ready while one of its nodes restarts
    os.kill(int((node_model / "pid").read_text()), signal.SIGKILL)
    assert "doubler: the nodejs process" in wait_status(server.url + "/v2/health/ready", 503).text
    assert requests.get(f"{server.url}/v2/models/mixed/ready").status_code == 503
    (node_model / "fail-init").unlink()
    wait_status(server.url + "/v2/health/ready", 200)


BATCH_COUNTER = """\
class Counted {
  constructor() {
    this.calls = 0;
  }
  predict(X) {
    this.calls += 1;
    return X.map((row) => [row[0], X.length]);
  }
}
module.exports = Counted;
"""


def test_batching_joins_concurrent_requests_into_one_js_call(serve: Any, tmp_path: Path) -> None:
    folder = write_folder(
        tmp_path / "counted",
        {"MyModel.js": BATCH_COUNTER, "daneel.yaml": "batching: {max_batch_size: 8, max_latency_ms: 500}\n"},
    )
    server = serve(folder)

    def ask(i: int) -> Any:
        body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [i]}]}
        return requests.post(f"{server.url}/v2/models/counted/infer", json=body, timeout=30).json()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(8)))
    rows = [answer["outputs"][0]["data"] for answer in answers]
    assert [row[0] for row in rows] == [float(i) for i in range(8)]  # each request gets its own row back
    assert max(row[1] for row in rows) > 1  # and some were answered by one call together


S2I_TRANSFORMER = """\
class Shout {
  async init() {
    this.mark = "!";
  }
  async transform_input(X, names) {
    return X.map((row) => row.map((v) => v * 10));
  }
}
module.exports = Shout;
"""


def test_a_seldon_s2i_nodejs_project_is_served_as_it_is(serve: Any, tmp_path: Path) -> None:
    folder = write_folder(
        tmp_path / "shout",
        {
            "Shout.js": S2I_TRANSFORMER,
            "package.json": '{"name": "shout", "main": "index.js", "dependencies": {}}\n',
            ".s2i/environment": "MODEL_NAME=Shout\nAPI_TYPE=REST\nSERVICE_TYPE=TRANSFORMER\nPERSISTENCE=0\n",
        },
    )
    server = serve(folder)

    answer = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[1, 2]]}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["ndarray"] == [[10.0, 20.0]]  # SERVICE_TYPE: the transform answers
    assert answer.json()["meta"]["requestPath"] == {"shout": "Shout.js"}


def test_a_folder_of_folders_serves_a_nodejs_model_beside_a_python_one(
    serve: Any, tmp_path: Path, node_model: Path
) -> None:
    write_folder(tmp_path / "plus", {"plus.py": PYTHON_TRANSFORMER, "daneel.yaml": "type: TRANSFORMER\n"})
    server = serve(tmp_path)

    index = requests.post(f"{server.url}/v2/repository/index", json={}).json()
    assert {(m["name"], m["state"]) for m in index} == {("doubler", "READY"), ("plus", "READY")}
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [4]}]}
    assert requests.post(f"{server.url}/v2/models/doubler/infer", json=body).json()["outputs"][0]["data"] == [8.0]
    assert requests.post(f"{server.url}/v2/models/plus/infer", json=body).json()["outputs"][0]["data"] == [5.0]
