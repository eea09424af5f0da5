"""`daneel predict URL`: send arrays from the command line or a file, in either protocol."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from daneel.cli.predict import predict

NAMES = """
    class Names:
        def predict(self, X, names, meta):
            return {"names": names, "rows": X.tolist()}
"""


@pytest.fixture(scope="module")
def iris_url(module_serve: Any, iris: Any) -> str:
    return str(module_serve(iris.path).url)


def run_ok(daneel_cli: Any, *args: str) -> dict[str, Any]:
    result = daneel_cli("predict", *args)
    assert result.returncode == 0, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def seldon_rows(body: dict[str, Any]) -> np.ndarray:
    return np.asarray(body["data"]["ndarray"])


def v2_rows(body: dict[str, Any]) -> np.ndarray:
    (output,) = body["outputs"]
    assert output["name"] == "predict_proba"
    return np.reshape(output["data"], output["shape"])


@pytest.fixture(scope="module")
def rows(iris: Any) -> np.ndarray:
    rows: np.ndarray = iris.X[:4]
    return rows


@pytest.fixture(scope="module")
def expected(iris: Any, rows: np.ndarray) -> np.ndarray:
    probabilities: np.ndarray = iris.model.predict_proba(rows)
    return probabilities


# Seldon's protocol


def test_data_on_the_command_line(daneel_cli: Any, iris_url: str, rows: np.ndarray, expected: np.ndarray) -> None:
    body = run_ok(daneel_cli, iris_url, "--data", json.dumps(rows.tolist()))
    np.testing.assert_allclose(seldon_rows(body), expected)
    assert body["data"]["names"] == ["t:0", "t:1", "t:2"]


def test_a_whole_request_body_is_sent_as_it_is(
    daneel_cli: Any, iris_url: str, rows: np.ndarray, expected: np.ndarray
) -> None:
    request = {"data": {"tensor": {"shape": list(rows.shape), "values": rows.ravel().tolist()}}}
    body = run_ok(daneel_cli, iris_url + "/api/v1.0/predictions", "--data", json.dumps(request))
    assert body["data"]["tensor"]["shape"] == [4, 3]
    np.testing.assert_allclose(np.reshape(body["data"]["tensor"]["values"], (4, 3)), expected)


def test_a_json_file(daneel_cli: Any, iris_url: str, rows: np.ndarray, expected: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows.tolist()))
    np.testing.assert_allclose(seldon_rows(run_ok(daneel_cli, iris_url, "--file", str(path))), expected)


def test_rows_from_standard_input(iris_url: str, rows: np.ndarray, expected: np.ndarray) -> None:
    result = CliRunner().invoke(predict, [iris_url, "--file", "-"], input=json.dumps(rows.tolist()))
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(seldon_rows(json.loads(result.output)), expected)


def test_a_whole_request_body_from_standard_input(iris_url: str, rows: np.ndarray, expected: np.ndarray) -> None:
    request = {"inputs": [{"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}]}
    result = CliRunner().invoke(predict, [iris_url + "/v2/models/iris", "--file", "-"], input=json.dumps(request))
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(v2_rows(json.loads(result.output)), expected)


def test_invalid_json_on_standard_input_is_a_usage_error(iris_url: str) -> None:
    result = CliRunner().invoke(predict, [iris_url, "--file", "-"], input="[[1, 2")
    assert result.exit_code == 2
    assert "standard input: invalid JSON" in result.output


def test_a_csv_file_with_a_header(
    daneel_cli: Any, iris_url: str, rows: np.ndarray, expected: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / "rows.csv"
    lines = ["sepal_length,sepal_width,petal_length,petal_width"] + [",".join(map(repr, row)) for row in rows.tolist()]
    path.write_text("\n".join(lines) + "\n")
    np.testing.assert_allclose(seldon_rows(run_ok(daneel_cli, iris_url, "--file", str(path))), expected)


def test_a_csv_header_becomes_data_names(daneel_cli: Any, module_serve: Any, make_model: Any, tmp_path: Path) -> None:
    url = module_serve(make_model(NAMES, "names")).url
    path = tmp_path / "named.csv"
    path.write_text("alpha,beta\n1,2\n3,4\n")
    body = run_ok(daneel_cli, url, "--file", str(path))
    assert body["jsonData"] == {"names": ["alpha", "beta"], "rows": [[1.0, 2.0], [3.0, 4.0]]}


def test_a_npy_file(daneel_cli: Any, iris_url: str, rows: np.ndarray, expected: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "rows.npy"
    np.save(path, rows)
    np.testing.assert_allclose(seldon_rows(run_ok(daneel_cli, iris_url, "--file", str(path))), expected)


# the Open Inference Protocol


def test_v2_with_model_option(daneel_cli: Any, iris_url: str, rows: np.ndarray, expected: np.ndarray) -> None:
    body = run_ok(daneel_cli, iris_url, "--model", "iris", "--data", json.dumps(rows.tolist()))
    assert body["model_name"] == "iris"
    np.testing.assert_allclose(v2_rows(body), expected)


@pytest.mark.parametrize("path", ["/v2/models/iris", "/v2/models/iris/infer"])
def test_v2_from_the_url(daneel_cli: Any, iris_url: str, rows: np.ndarray, expected: np.ndarray, path: str) -> None:
    np.testing.assert_allclose(
        v2_rows(run_ok(daneel_cli, iris_url + path, "--data", json.dumps(rows.tolist()))), expected
    )


@pytest.mark.parametrize("suffix", [".csv", ".npy", ".json"])
def test_v2_from_each_file_kind(
    daneel_cli: Any, iris_url: str, rows: np.ndarray, expected: np.ndarray, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"rows{suffix}"
    if suffix == ".npy":
        np.save(path, rows.astype(np.float32))
    elif suffix == ".csv":
        path.write_text("a,b,c,d\n" + "\n".join(",".join(map(repr, row)) for row in rows.tolist()))
    else:
        path.write_text(json.dumps(rows.tolist()))
    body = run_ok(daneel_cli, iris_url, "--model", "iris", "--file", str(path))
    np.testing.assert_allclose(v2_rows(body), expected, rtol=1e-6)


# failures


def test_a_4xx_answer_is_an_error_exit(daneel_cli: Any, iris_url: str) -> None:
    result = daneel_cli("predict", iris_url, "--data", "[[1, 2, 3]]")
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "400" in lines[0] and "4 features" in lines[0]


def test_a_v2_4xx_answer_is_an_error_exit(daneel_cli: Any, iris_url: str) -> None:
    result = daneel_cli("predict", iris_url + "/v2/models/nope", "--data", "[[1, 2, 3, 4]]")
    assert result.returncode != 0
    assert "404" in result.stderr and "nope" in result.stderr


def test_an_unreachable_server_is_an_error_exit(daneel_cli: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = daneel_cli("predict", f"http://127.0.0.1:{port}", "--data", "[[1]]")
    assert result.returncode != 0
    assert "cannot reach" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "[[1, 2"], "--data: invalid JSON"),
        ([], "exactly one of --data or --file"),
        (["--data", "[[1]]", "--protocol", "v2"], "--model"),
    ],
)
def test_usage_errors(daneel_cli: Any, iris_url: str, args: list[str], message: str) -> None:
    result = daneel_cli("predict", iris_url, *args)
    assert result.returncode == 2
    assert message in result.stderr
