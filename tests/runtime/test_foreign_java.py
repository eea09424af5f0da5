"""Java components served by a real `daneel serve`, with a real JDK: sources compiled by daneel, or a jar."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import tritonclient.grpc as triton
from tests.runtime.foreign import wait_for, wait_status, write_folder

from daneel.runtime.languages import java

pytestmark = pytest.mark.skipif(
    shutil.which("javac") is None or shutil.which("java") is None,
    reason="needs a JDK, 17 or later (Debian: apt-get install openjdk-17-jdk-headless)",
)

MODEL = """\
package demo.models;

import io.daneel.Component;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

public class Scaler implements Component {
    private double scale = 1;

    @Override
    public void init(Map<String, Object> parameters) throws Exception {
        scale = ((Number) parameters.getOrDefault("scale", 1)).doubleValue();
        Files.writeString(Path.of("pid"), Long.toString(ProcessHandle.current().pid()));
    }

    @Override
    public double[][] predict(double[][] X, String[] names) {
        if (X.length > 0 && X[0].length > 0 && X[0][0] < 0) throw new IllegalArgumentException("negative input");
        double[][] out = new double[X.length][];
        for (int r = 0; r < X.length; r++) {
            out[r] = new double[X[r].length];
            for (int c = 0; c < X[r].length; c++) out[r][c] = X[r][c] * scale;
        }
        return out;
    }

    @Override
    public Map<String, Object> tags() {
        return Map.of("language", "java");
    }

    @Override
    public List<Map<String, Object>> metrics() {
        return List.of(Map.of("type", "GAUGE", "key", "java_scale", "value", scale));
    }

    @Override
    public Map<String, Object> init_metadata() {
        return Map.of("name", "scaler", "versions", List.of("v2"));
    }
}
"""

PYTHON_TRANSFORMER = """\
class Plus:
    def transform_input(self, X, names):
        return X + 1
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of the servers: one compile cache for the module, so daneel's classes compile once."""
    return {"DANEEL_JAVA_CACHE": str(tmp_path_factory.mktemp("java-cache"))}


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A Maven-shaped project: daneel compiles src/main/java with javac and leaves src/test out."""
    return write_folder(
        tmp_path / "scaler",
        {
            "pom.xml": "<project><modelVersion>4.0.0</modelVersion></project>\n",
            "src/main/java/demo/models/Scaler.java": MODEL,
            "src/test/java/demo/models/ScalerTest.java": "this is not Java, and is never compiled\n",
            "daneel.yaml": "parameters:\n  scale: 3\n",
        },
    )


def test_a_java_model_from_sources_answers_both_rest_protocols_and_grpc(
    serve: Any, sources: Path, cache: dict[str, str]
) -> None:
    server = serve(sources, env=cache)

    seldon = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[1, 2], [3, 4]]}})
    assert seldon.status_code == 200, seldon.text
    body = seldon.json()
    assert body["data"]["ndarray"] == [[3.0, 6.0], [9.0, 12.0]]
    assert body["meta"]["tags"] == {"language": "java"}
    assert body["meta"]["metrics"] == [{"type": "GAUGE", "key": "java_scale", "value": 3.0}]
    assert body["meta"]["requestPath"] == {"scaler": "demo.models.Scaler"}

    request = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [3], "data": [1, 2, 3]}]}
    v2 = requests.post(f"{server.url}/v2/models/scaler/infer", json=request)
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == [3.0, 6.0, 9.0]
    assert requests.get(f"{server.url}/v2/models/scaler").json()["versions"] == ["v2"]

    with triton.InferenceServerClient(server.grpc_target) as client:
        tensor = triton.InferInput("x", [1, 2], "FP64")
        tensor.set_data_from_numpy(np.array([[0.5, 1.0]]))
        result = client.infer("scaler", [tensor]).as_numpy("output-0")
    np.testing.assert_array_equal(result, [[1.5, 3.0]])


def test_errors_are_protocol_shaped(serve: Any, sources: Path, cache: dict[str, str]) -> None:
    server = serve(sources, env=cache)

    thrown = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[-1]]}})
    assert thrown.status_code == 500
    assert thrown.json()["status"]["info"] == "scaler.predict raised IllegalArgumentException: negative input"
    words = requests.post(f"{server.url}/api/v1.0/predictions", json={"strData": "hello"})
    assert words.status_code == 400
    assert words.json()["status"]["info"] == "data: a Java component takes rows of numbers; got a string"
    cube = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1, 2], "data": [1, 2]}]}
    deep = requests.post(f"{server.url}/v2/models/scaler/infer", json=cube)
    assert deep.status_code == 400
    assert "one or two dimensions" in deep.json()["error"]


def test_a_jar_is_served_as_it_is(serve: Any, tmp_path: Path, cache: dict[str, str]) -> None:
    interface = sorted(java.SOURCES.rglob("*.java"))
    runtime = java.compiled("daneel", interface, [], "javac", cache=Path(cache["DANEEL_JAVA_CACHE"]))
    build = write_folder(tmp_path / "build", {"demo/models/Scaler.java": MODEL})
    classes = tmp_path / "classes"
    subprocess.run(
        ["javac", "-cp", str(runtime), "-d", str(classes), str(build / "demo/models/Scaler.java")], check=True
    )
    folder = tmp_path / "jarred"
    folder.mkdir()
    subprocess.run(["jar", "cf", str(folder / "scaler.jar"), "-C", str(classes), "."], check=True)

    server = serve(folder, env=cache)
    answer = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[5]]}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["ndarray"] == [[5.0]]  # no parameters: the scale is 1


def test_a_python_transformer_feeds_a_java_model_in_a_deployment(
    serve: Any, tmp_path: Path, sources: Path, cache: dict[str, str]
) -> None:
    write_folder(tmp_path / "plus", {"plus.py": PYTHON_TRANSFORMER})
    path = tmp_path / "deploy.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: daneel.dev/v1alpha1
            kind: ModelDeployment
            metadata: {{name: mixed}}
            spec:
              predictors:
              - name: main
                graph:
                  name: plus
                  type: TRANSFORMER
                  modelUri: plus
                  children:
                  - {{name: scaler, modelUri: {sources}}}
            """
        )
    )
    server = serve(path, env=cache)

    answer = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[1, 2]]}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["ndarray"] == [[6.0, 9.0]]
    assert answer.json()["meta"]["requestPath"] == {"plus": "plus.Plus", "scaler": "demo.models.Scaler"}


def test_a_killed_java_child_is_restarted(serve: Any, sources: Path, cache: dict[str, str]) -> None:
    server = serve(sources, env=cache)
    pid_file = sources / "pid"
    pid = int(pid_file.read_text())
    pid_file.unlink()

    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "", "a new java process")
    assert int(pid_file.read_text()) != pid
    wait_status(server.url + "/v2/health/ready", 200)
    answer = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[2]]}})
    assert answer.json()["data"]["ndarray"] == [[6.0]]
    assert "was killed by SIGKILL" in server.stderr


ROUTER = """\
import io.daneel.Component;

public class Sign implements Component {
    @Override
    public int route(double[][] X, String[] names) {
        return X[0][0] > 0 ? 1 : 0;
    }
}
"""

COMBINER = """\
import io.daneel.Component;
import java.util.List;

public class Sum implements Component {
    @Override
    public double[][] aggregate(List<double[][]> Xs, List<String[]> names) {
        double[][] out = new double[Xs.get(0).length][Xs.get(0)[0].length];
        for (double[][] X : Xs) {
            for (int r = 0; r < X.length; r++) {
                for (int c = 0; c < X[r].length; c++) out[r][c] += X[r][c];
            }
        }
        return out;
    }
}
"""

CONSTANT = """\
class Constant:
    def __init__(self, answer):
        self.answer = answer

    def predict(self, X, names):
        return [[self.answer]]
"""


def test_a_java_router_and_a_java_combiner_in_a_graph(serve: Any, tmp_path: Path, cache: dict[str, str]) -> None:
    write_folder(tmp_path / "sign", {"Sign.java": ROUTER})
    write_folder(tmp_path / "sum", {"Sum.java": COMBINER})
    for name, answer in (("minus", -1), ("one", 1), ("two", 2)):
        write_folder(tmp_path / name, {"constant.py": CONSTANT, "daneel.yaml": f"parameters: {{answer: {answer}}}\n"})
    path = tmp_path / "deploy.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            apiVersion: daneel.dev/v1alpha1
            kind: ModelDeployment
            metadata: {name: signs}
            spec:
              predictors:
              - name: main
                graph:
                  name: sign
                  type: ROUTER
                  modelUri: sign
                  children:
                  - {name: minus, modelUri: minus}
                  - name: sum
                    type: COMBINER
                    modelUri: sum
                    children:
                    - {name: one, modelUri: one}
                    - {name: two, modelUri: two}
            """
        )
    )
    server = serve(path, env=cache)

    for x, expected in ((-5, [[-1]]), (5, [[3.0]])):
        answer = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[x]]}})
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["ndarray"] == expected
