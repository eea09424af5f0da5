"""`daneel serve TARGET`: import paths, folders, parameters, names, and failing fast."""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

SCORER = """
    class Scorer:
        def __init__(self, weight=1.0, offset=0, label="none", enabled=False):
            self.params = {"weight": weight, "offset": offset, "label": label, "enabled": enabled}

        def predict(self, X, feature_names):
            return X * self.params["weight"] + self.params["offset"]

        def tags(self):
            return {name: [value, type(value).__name__] for name, value in self.params.items()}
"""

OTHER = """

class Other:
    def predict(self, X, names, meta):
        return -X
"""

TYPED = [
    {"name": "weight", "value": "2.5", "type": "FLOAT"},
    {"name": "offset", "value": "3", "type": "INT"},
    {"name": "label", "value": "typed", "type": "STRING"},
    {"name": "enabled", "value": "true", "type": "BOOL"},
]
TYPED_TAGS = {
    "weight": [2.5, "float"],
    "offset": [3, "int"],
    "label": ["typed", "str"],
    "enabled": [True, "bool"],
}


def predict(url: str, rows: list[list[float]]) -> dict[str, Any]:
    response = requests.post(url + "/api/v1.0/predictions", json={"data": {"ndarray": rows}}, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A folder holding the importable package `scoring` with `scoring.models:Scorer`."""
    (tmp_path / "scoring").mkdir()
    (tmp_path / "scoring" / "__init__.py").write_text("")
    (tmp_path / "scoring" / "models.py").write_text(textwrap.dedent(SCORER))
    return tmp_path


# import paths and parameters


def test_serve_an_import_path_from_the_working_directory(serve: Any, package: Path) -> None:
    server = serve("scoring.models:Scorer", cwd=package)
    body = predict(server.url, [[1.0, 2.0]])
    assert body["data"]["ndarray"] == [[1.0, 2.0]]
    assert body["meta"]["tags"]["weight"] == [1.0, "float"]
    assert requests.get(server.url + "/v2/models/Scorer/ready", timeout=30).status_code == 200


def test_parameters_as_a_json_object_reach_init(serve: Any, package: Path) -> None:
    params = {"weight": 2, "offset": -1, "label": "plain", "enabled": True}
    server = serve("scoring.models:Scorer", "--parameters", json.dumps(params), cwd=package)
    body = predict(server.url, [[1.0, 2.0]])
    assert body["data"]["ndarray"] == [[1.0, 3.0]]
    assert body["meta"]["tags"] == {
        "weight": [2, "int"],
        "offset": [-1, "int"],
        "label": ["plain", "str"],
        "enabled": [True, "bool"],
    }


def test_parameters_as_seldons_typed_list_reach_init_converted(serve: Any, package: Path) -> None:
    server = serve("scoring.models:Scorer", "--parameters", json.dumps(TYPED), cwd=package)
    body = predict(server.url, [[2.0]])
    assert body["data"]["ndarray"] == [[8.0]]
    assert body["meta"]["tags"] == TYPED_TAGS


def test_predictive_unit_parameters_reach_init(serve: Any, package: Path) -> None:
    server = serve("scoring.models:Scorer", env={"PREDICTIVE_UNIT_PARAMETERS": json.dumps(TYPED)}, cwd=package)
    assert predict(server.url, [[0.0]])["meta"]["tags"] == TYPED_TAGS


def test_parameters_option_wins_over_predictive_unit_parameters(serve: Any, package: Path) -> None:
    server = serve(
        "scoring.models:Scorer",
        "--parameters",
        '{"label": "from-option"}',
        env={"PREDICTIVE_UNIT_PARAMETERS": json.dumps(TYPED)},
        cwd=package,
    )
    tags = predict(server.url, [[0.0]])["meta"]["tags"]
    assert tags["label"] == ["from-option", "str"]
    assert tags["offset"] == [3, "int"]


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ("{not json", "--parameters: expected JSON"),
        ('[{"name": "offset", "value": "three", "type": "INT"}]', "--parameters[0].value"),
        ('[{"name": "offset", "value": "3", "type": "INTEGER"}]', "--parameters[0].type"),
        ("42", "--parameters"),
    ],
)
def test_bad_parameters_fail_with_one_line(serve: Any, package: Path, parameters: str, message: str) -> None:
    server = serve.exits("scoring.models:Scorer", "--parameters", parameters, cwd=package)
    assert server.returncode != 0
    assert len(server.stderr.strip().splitlines()) == 1, server.stderr
    assert message in server.stderr


def test_unknown_parameter_fails_with_the_classs_error(serve: Any, package: Path) -> None:
    server = serve.exits("scoring.models:Scorer", "--parameters", '{"colour": "red"}', cwd=package)
    assert server.returncode != 0
    assert "colour" in server.stderr


# names and folders


def test_name_option_renames_the_model(serve: Any, make_model: Any) -> None:
    server = serve(make_model(SCORER, "scorer"), "--name", "renamed")
    assert requests.get(server.url + "/v2/models/renamed/ready", timeout=30).status_code == 200
    assert requests.get(server.url + "/v2/models/scorer/ready", timeout=30).status_code == 404
    infer = requests.post(
        server.url + "/v2/models/renamed/infer",
        json={"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [4.0]}]},
        timeout=30,
    )
    assert infer.json()["model_name"] == "renamed"
    assert requests.get(server.url + "/api/v1.0/metadata", timeout=30).json()["name"] == "renamed"


def test_a_folder_with_daneel_yaml(serve: Any, make_model: Any) -> None:
    config = """
        name: from-yaml
        implementation: model.Scorer
        type: MODEL
        parameters:
          - {name: weight, value: "3", type: FLOAT}
          - {name: label, value: yaml}
    """
    server = serve(make_model(textwrap.dedent(SCORER) + OTHER, "folder", files={"daneel.yaml": config}))
    assert requests.get(server.url + "/v2/models/from-yaml/ready", timeout=30).status_code == 200
    body = predict(server.url, [[2.0]])
    assert body["data"]["ndarray"] == [[6.0]]
    assert body["meta"]["tags"]["weight"] == [3.0, "float"]
    assert body["meta"]["tags"]["label"] == ["yaml", "str"]


def test_a_daneel_yaml_with_an_unknown_field_names_it(serve: Any, make_model: Any) -> None:
    server = serve.exits(make_model(SCORER, "typo", files={"daneel.yaml": "name: x\nimplementaton: model.Scorer\n"}))
    assert server.returncode != 0
    assert "implementaton" in server.stderr
    assert len(server.stderr.strip().splitlines()) == 1, server.stderr


TRANSFORMER = """
    class Shifter:
        def __init__(self, shift=0):
            self.shift = shift

        def predict(self, X, names, meta):
            raise AssertionError("a TRANSFORMER's predictions go to transform_input")

        def transform_input(self, X, names, meta):
            return X + self.shift
"""


def test_a_folder_with_s2i_environment(serve: Any, make_model: Any) -> None:
    environment = """
        MODEL_NAME=Shifter
        SERVICE_TYPE=TRANSFORMER
        PERSISTENCE=0
        PARAMETERS='[{"name": "shift", "value": "5", "type": "INT"}]'
    """
    folder = make_model(TRANSFORMER, "shifter", files={".s2i/environment": environment}, filename="Shifter.py")
    server = serve(folder)
    assert predict(server.url, [[1.0, 2.0]])["data"]["ndarray"] == [[6.0, 7.0]]
    assert requests.get(server.url + "/v2/models/shifter/ready", timeout=30).status_code == 200


def test_seldons_layout_picks_the_class_named_like_its_file(serve: Any, make_model: Any) -> None:
    source = """
        class Helper:
            def predict(self, X, names, meta):
                return X * 0

        class MyModel:
            def predict(self, X, names, meta):
                return X + 100
    """
    server = serve(make_model(source, "mine", filename="MyModel.py"))
    assert predict(server.url, [[1.0]])["data"]["ndarray"] == [[101.0]]


def test_a_folder_with_two_classes_and_no_config_fails_naming_them(serve: Any, make_model: Any) -> None:
    server = serve.exits(make_model(textwrap.dedent(SCORER) + OTHER, "ambiguous"))
    assert server.returncode != 0
    assert "model.Scorer" in server.stderr and "model.Other" in server.stderr


def test_a_subclass_of_daneels_model(serve: Any, make_model: Any) -> None:
    source = """
        from daneel import Model


        class Doubler(Model):
            def predict(self, X, names, meta):
                return X * self.parameters.get("factor", 2)
    """
    server = serve(make_model(source, "doubler"), "--parameters", '{"factor": 3}')
    assert predict(server.url, [[1.0, 2.0]])["data"]["ndarray"] == [[3.0, 6.0]]


def test_sklearn_method_parameter(serve: Any, iris: Any) -> None:
    server = serve(iris.path, "--parameters", '{"method": "predict"}')
    body = predict(server.url, iris.X.tolist())
    np.testing.assert_array_equal(body["data"]["ndarray"], iris.model.predict(iris.X))
    metadata = requests.get(server.url + "/v2/models/iris", timeout=30).json()
    assert metadata["outputs"][0]["name"] == "predict"


def test_sklearn_transformer_saved_as_pickle(serve: Any, iris: Any, tmp_path: Path) -> None:
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(iris.X)
    folder = tmp_path / "scaler"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(scaler))
    server = serve(folder)
    body = predict(server.url, iris.X.tolist())
    np.testing.assert_allclose(body["data"]["ndarray"], scaler.transform(iris.X))
    assert requests.get(server.url + "/v2/models/scaler", timeout=30).json()["outputs"][0]["name"] == "transform"


def imported(stderr: str) -> set[str]:
    """The modules a process imported, from the lines that PYTHONPROFILEIMPORTTIME makes it write."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize(("options", "expected"), [(["--no-grpc"], set()), ([], {"grpc"})])
def test_serving_a_model_folder_imports_only_what_it_needs(
    serve: Any, iris: Any, options: list[str], expected: set[str]
) -> None:
    server = serve(iris.path, *options, env={"PYTHONPROFILEIMPORTTIME": "1"})
    predict(server.url, iris.X.tolist())
    modules = imported(server.stderr)
    assert "sklearn" in modules
    assert modules & {"httpx", "grpc", "daneel.graph", "daneel.traffic.build"} == expected


BLAS_TIMEOUT = """
    import os

    class Blas:
        def predict(self, X, feature_names):
            return X

        def tags(self):
            return {"timeout": os.environ.get("OPENBLAS_THREAD_TIMEOUT")}
"""


def test_openblas_threads_sleep_soon_unless_the_environment_says_otherwise(
    serve: Any, make_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The setting is read by OpenBLAS as numpy loads it: it must be in the environment before that."""
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    folder = make_model(BLAS_TIMEOUT)
    assert predict(serve(folder, "--no-grpc").url, [[1.0]])["meta"]["tags"]["timeout"] == "20"
    given = serve(folder, "--no-grpc", env={"OPENBLAS_THREAD_TIMEOUT": "28"})
    assert predict(given.url, [[1.0]])["meta"]["tags"]["timeout"] == "28"


def test_importing_the_serve_command_leaves_numpy_unloaded() -> None:
    """So that `daneel serve` can set OpenBLAS's environment first; in a fresh interpreter, as tests import numpy."""
    check = "import sys, daneel.cli.main, daneel.cli.serve; print('numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize(
    ("parameters", "named"), [('{"methd": "predict"}', "methd"), ('{"method": "decision"}', "method")]
)
def test_bad_sklearn_parameters_fail_with_one_line_before_listening(
    serve: Any, iris: Any, parameters: str, named: str
) -> None:
    server = serve.exits(iris.path, "--parameters", parameters)
    assert server.returncode != 0
    assert named in server.stderr
    assert "Traceback" not in server.stderr
    assert "serving" not in server.stderr


# failing fast with a one-line reason


def test_a_port_in_use_fails_fast_with_one_line(serve: Any, make_model: Any, tmp_path: Path) -> None:
    marker = tmp_path / "constructed"
    source = f"""
        class Marker:
            def __init__(self):
                open({str(marker)!r}, "w").close()

            def predict(self, X, names, meta):
                return X
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        server = serve.exits(make_model(source, "marker"), port=port)
    assert server.returncode != 0
    lines = server.stderr.strip().splitlines()
    assert len(lines) == 1, server.stderr
    assert f"127.0.0.1:{port}" in lines[0]
    assert "in use" in lines[0]
    assert not marker.exists(), "the model was built although the port was taken"


@pytest.mark.parametrize("option", ["--http-port", "--grpc-port", "--metrics-port"])
def test_a_port_in_use_names_the_option_that_moves_it(serve: Any, make_model: Any, option: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        server = serve.exits(make_model(SCORER, "busy"), option, str(port))
    assert server.returncode == 1
    assert server.stderr.strip().splitlines() == [
        f"daneel: cannot {'listen for gRPC on' if option == '--grpc-port' else 'listen on'} 127.0.0.1:{port}:"
        f" Address already in use; choose another port with {option}"
    ]


def test_a_model_file_is_served_named_after_its_folder(serve: Any, iris: Any, tmp_path: Path) -> None:
    server = serve(iris.path / "model.joblib", env={"DANEEL_CACHE_DIR": str(tmp_path / "cache")})
    rows = iris.X[:2]
    body = {"inputs": [{"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}]}
    response = requests.post(server.url + "/v2/models/iris/infer", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert np.allclose(response.json()["outputs"][0]["data"], iris.model.predict_proba(rows).ravel())


def test_a_missing_folder_fails_with_one_line(serve: Any, tmp_path: Path) -> None:
    server = serve.exits("no/such/folder", cwd=tmp_path)
    assert server.returncode != 0
    assert server.stderr.strip().splitlines() == [
        "Error: no/such/folder: not a folder or an import path of the form pkg.module:Class"
    ]


def test_an_unknown_module_fails_naming_it(serve: Any, tmp_path: Path) -> None:
    server = serve.exits("no_such_module:Model", cwd=tmp_path)
    assert server.returncode != 0
    assert "daneel: model 'Model' failed to load: cannot import 'no_such_module'" in server.stderr


# settings


def test_http_port_zero_picks_a_free_port_and_logs_it(serve: Any, make_model: Any) -> None:
    server = serve.start(make_model(SCORER, "anyport"), "--http-port", "0")
    deadline = time.monotonic() + 60
    while not (found := re.search(r"serving anyport on http://127\.0\.0\.1:(\d+)", server.stderr)):
        assert server.returncode is None, server.stderr
        assert time.monotonic() < deadline, server.stderr
        time.sleep(0.1)
    port = int(found.group(1))
    assert port not in (0, server.port)
    url = f"http://127.0.0.1:{port}"
    while requests.get(url + "/v2/health/ready", timeout=30).status_code != 200:
        assert time.monotonic() < deadline, server.stderr
        time.sleep(0.1)
    assert predict(url, [[1.0]])["data"]["ndarray"] == [[1.0]]


def test_settings_come_from_daneel_environment_variables(serve: Any, make_model: Any) -> None:
    server = serve(make_model(SCORER, "envlimit"), env={"DANEEL_MAX_BODY_BYTES": "64"})
    small = requests.post(server.url + "/api/v1.0/predictions", json={"data": {"ndarray": [[1]]}}, timeout=30)
    assert small.status_code == 200
    big = requests.post(server.url + "/api/v1.0/predictions", json={"data": {"ndarray": [[1.0] * 40]}}, timeout=30)
    assert big.status_code == 413
    assert "64 bytes" in big.json()["status"]["info"]


def test_an_invalid_setting_is_a_usage_error_naming_it(serve: Any, make_model: Any) -> None:
    server = serve.exits(make_model(SCORER, "badsetting"), "--max-body-bytes", "0")
    assert server.returncode == 2
    assert "--max-body-bytes" in server.stderr


def test_sigterm_stops_a_single_process_server_cleanly(serve: Any, make_model: Any) -> None:
    server = serve(make_model(SCORER, "stopme"))
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 0


STUCK = """
    import time

    class Stuck:
        def load(self):
            time.sleep(3600)

        def predict(self, X, names):
            return X
"""


def test_sigterm_while_a_model_loads_stops_without_waiting_for_the_load(serve: Any, make_model: Any) -> None:
    server = serve(make_model(STUCK, "stuck"), ready=False)
    assert requests.get(server.url + "/v2/health/ready", timeout=30).status_code == 503
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=120) == 0


def test_seldons_port_variables_set_the_ports_of_a_component_image(make_model: Any, tmp_path: Path) -> None:
    """A daneel image run as a Seldon component listens where Seldon's variables say (port 9000 in a pod)."""
    import subprocess

    from conftest import daneel_command, free_port

    model = make_model("class Ported:\n    def predict(self, X):\n        return X\n", "ported")
    http, grpc = free_port(), free_port()
    env = {**os.environ, "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": str(http), "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": str(grpc)}
    env.pop("DANEEL_HTTP_PORT", None)
    env.pop("DANEEL_GRPC_PORT", None)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        daneel_command("serve", str(model), "--host", "127.0.0.1"),
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{http}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert predict(f"http://127.0.0.1:{http}", [[1.0, 2.0]])["data"]["ndarray"] == [[1.0, 2.0]]
        assert f"gRPC on 127.0.0.1:{grpc}" in (tmp_path / "serve.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
