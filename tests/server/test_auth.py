"""`daneel serve --auth-token-file`: bearer tokens over REST and gRPC, by group of endpoints, against real servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tests.conftest import free_port
from tritonclient.utils import InferenceServerException

from daneel.protocol.proto import grpc_predict_v2_pb2 as pb
from daneel.protocol.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from daneel.protocol.proto import model_repository_pb2 as repo_pb
from daneel.protocol.proto import model_repository_pb2_grpc as repo_grpc
from daneel.server import auth

TOKEN = "t0ken-for-the-tests_3f9a"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": "Bearer not-the-token"}
ROW = [5.1, 3.5, 1.4, 0.2]
V2_BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
SELDON_BODY = {"data": {"ndarray": [ROW]}}


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "token"
    path.write_text(TOKEN + "\n")  # as `kubectl create secret --from-file` keeps an editor's newline
    return path


@pytest.fixture(scope="module")
def guarded(module_serve: Any, iris: Any, token_file: Path) -> Any:
    """The repository guarded, as by default; its access log on, to show what it logs."""
    return module_serve(iris.path, "--auth-token-file", str(token_file), "--access-log", "--log-level", "debug")


@pytest.fixture(scope="module")
def all_guarded(module_serve: Any, iris: Any) -> Any:
    """Every group guarded, the token from the environment."""
    metrics = free_port()
    server = module_serve(
        iris.path, "--auth-protect", "all", "--metrics-port", str(metrics), env={"DANEEL_AUTH_TOKEN": TOKEN}
    )
    server.metrics_url = f"http://127.0.0.1:{metrics}/metrics"
    return server


def post(url: str, headers: dict[str, str] | None = None, body: Any = None) -> requests.Response:
    return requests.post(url, json=body, headers=headers, timeout=30)


def assert_refused_v2(response: requests.Response, because: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert because in response.json()["error"]


# REST, the default: the repository alone


@pytest.mark.parametrize("path", ["/v2/repository/index", "/v2/repository/models/iris/unload"])
def test_the_repository_needs_the_token(guarded: Any, path: str) -> None:
    assert_refused_v2(post(guarded.url + path), "needs a token")
    assert_refused_v2(post(guarded.url + path, WRONG), "not accepted")
    assert_refused_v2(post(guarded.url + path, {"Authorization": f"Basic {TOKEN}"}), "Bearer")
    assert requests.get(guarded.url + "/v2/models/iris/ready", timeout=30).status_code == 200  # nothing unloaded


def test_the_token_opens_the_repository(guarded: Any) -> None:
    index = post(guarded.url + "/v2/repository/index", GOOD)
    assert index.status_code == 200, index.text
    assert [entry["name"] for entry in index.json()] == ["iris"]
    assert post(guarded.url + "/v2/repository/index", {"authorization": f"bearer  {TOKEN} "}).status_code == 200
    assert post(guarded.url + "/v2/repository/models/iris/load", GOOD).status_code == 200


@pytest.mark.parametrize("path", ["/console/api/models", "/console/api/figures", "/seldon/ns/dep/console/api/requests"])
def test_the_consoles_data_is_part_of_the_repository_group(guarded: Any, path: str) -> None:
    response = requests.get(guarded.url + path, timeout=30)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert requests.get(guarded.url + path, headers=GOOD, timeout=30).status_code == 200


@pytest.mark.parametrize("path", ["/", "/console", "/console/static/console.js"])
def test_the_consoles_page_loads_without_the_token_to_ask_for_it(guarded: Any, path: str) -> None:
    assert requests.get(guarded.url + path, timeout=30).status_code == 200


@pytest.mark.parametrize(
    "path", ["/v2/health/live", "/v2/health/ready", "/v2/models/iris/ready", "/health/ping", "/metrics", "/v2"]
)
def test_probes_and_unguarded_groups_stay_open(guarded: Any, path: str) -> None:
    assert requests.get(guarded.url + path, timeout=30).status_code == 200


def test_inference_stays_open_by_default(guarded: Any) -> None:
    assert post(guarded.url + "/v2/models/iris/infer", None, V2_BODY).status_code == 200
    assert post(guarded.url + "/api/v1.0/predictions", None, SELDON_BODY).status_code == 200


def test_the_token_is_never_logged(guarded: Any) -> None:
    post(guarded.url + "/v2/repository/index", GOOD)
    post(guarded.url + "/v2/repository/index", {"Authorization": "Bearer a-wrong-guess-9d2c"})
    post(guarded.url + "/v2/models/iris/infer", GOOD, V2_BODY)
    channel = grpc.insecure_channel(guarded.grpc_target)
    repo_grpc.ModelRepositoryServiceStub(channel).RepositoryIndex(  # type: ignore[no-untyped-call]
        repo_pb.RepositoryIndexRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=30
    )
    channel.close()
    assert '"POST /v2/repository/index HTTP/1.1" 401' in guarded.stderr  # the access log did see the requests
    assert TOKEN not in guarded.stderr
    assert "a-wrong-guess-9d2c" not in guarded.stderr


# REST, every group guarded


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1.0/predictions", SELDON_BODY),
        ("/seldon/ns/dep/api/v1.0/predictions", SELDON_BODY),
        ("/predict", SELDON_BODY),
        ("/api/v1.0/feedback", {"request": SELDON_BODY, "reward": 1}),
    ],
)
def test_seldon_paths_refuse_in_seldons_shape(all_guarded: Any, path: str, body: Any) -> None:
    response = post(all_guarded.url + path, None, body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == {
        "code": 401,
        "info": "this endpoint needs a token: send the header Authorization: Bearer <token>",
        "reason": "UNAUTHENTICATED",
        "status": "FAILURE",
    }
    assert post(all_guarded.url + path, GOOD, body).status_code == 200


def test_every_group_guarded(all_guarded: Any) -> None:
    for path in ("/metrics", "/v2", "/v2/models/iris", "/metadata"):
        assert requests.get(all_guarded.url + path, timeout=30).status_code == 401, path
        assert requests.get(all_guarded.url + path, headers=GOOD, timeout=30).status_code == 200, path
    assert_refused_v2(post(all_guarded.url + "/v2/models/iris/infer", WRONG, V2_BODY), "not accepted")
    for path in ("/v2/health/ready", "/v2/models/iris/ready", "/health/ping"):
        assert requests.get(all_guarded.url + path, timeout=30).status_code == 200, path
    assert requests.get(all_guarded.metrics_url, timeout=30).status_code == 401  # the metrics port too
    assert requests.get(all_guarded.metrics_url, headers=GOOD, timeout=30).status_code == 200


def test_tritons_http_client_sends_the_token(all_guarded: Any, iris: Any) -> None:
    client = triton_http.InferenceServerClient(all_guarded.url.removeprefix("http://"))
    inputs = [triton_http.InferInput("x", [1, 4], "FP64")]
    inputs[0].set_data_from_numpy(np.array([ROW]))
    with pytest.raises(InferenceServerException, match="needs a token"):
        client.infer("iris", inputs)
    result = client.infer("iris", inputs, headers=GOOD)
    np.testing.assert_allclose(result.as_numpy("predict_proba"), iris.model.predict_proba([ROW]))
    client.close()


# gRPC


def test_grpc_repository_needs_the_token_by_default(guarded: Any) -> None:
    with grpc.insecure_channel(guarded.grpc_target) as channel:
        stub = repo_grpc.ModelRepositoryServiceStub(channel)  # type: ignore[no-untyped-call]
        for metadata in ((), (("authorization", "Bearer wrong"),)):
            with pytest.raises(grpc.RpcError) as refused:
                stub.RepositoryIndex(repo_pb.RepositoryIndexRequest(), metadata=metadata, timeout=30)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        found = stub.RepositoryIndex(
            repo_pb.RepositoryIndexRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=30
        )
        assert [model.name for model in found.models] == ["iris"]
        inference = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        assert inference.ServerMetadata(pb.ServerMetadataRequest(), timeout=30).name == "daneel"


def test_grpc_inference_with_every_group_guarded(all_guarded: Any, iris: Any) -> None:
    client = triton_grpc.InferenceServerClient(all_guarded.grpc_target)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("iris")  # probes: open
    inputs = [triton_grpc.InferInput("x", [1, 4], "FP64")]
    inputs[0].set_data_from_numpy(np.array([ROW]))
    with pytest.raises(InferenceServerException) as refused:
        client.infer("iris", inputs)
    assert "UNAUTHENTICATED" in str(refused.value.status())
    with pytest.raises(InferenceServerException, match="UNAUTHENTICATED"):
        client.get_model_metadata("iris")
    result = client.infer("iris", inputs, headers={"authorization": f"Bearer {TOKEN}"})
    np.testing.assert_allclose(result.as_numpy("predict_proba"), iris.model.predict_proba([ROW]))
    client.close()


# Settings


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--auth-protect", "repository"), {}, "--auth-protect: Value error, needs a token"),
        (("--auth-protect", "repository,models"), {"DANEEL_AUTH_TOKEN": TOKEN}, "expected a comma-separated list"),
        (("--auth-token-file", "TOKEN_FILE"), {"DANEEL_AUTH_TOKEN": TOKEN}, "not both"),
        (("--auth-token-file", "EMPTY_FILE"), {}, "is empty"),
        ((), {"DANEEL_AUTH_TOKEN": "two words"}, "visible ASCII characters"),
        (("--auth-token-file", "MISSING"), {}, "cannot read the token"),
    ],
)
def test_a_bad_auth_setting_stops_the_server_with_one_line(
    serve: Any, iris: Any, token_file: Path, tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    (tmp_path / "empty").write_text("\n")
    files = {"TOKEN_FILE": str(token_file), "EMPTY_FILE": str(tmp_path / "empty"), "MISSING": str(tmp_path / "no")}
    server = serve.exits(iris.path, "--no-grpc", *(files.get(a, a) for a in args), env=env)
    assert server.returncode == 2, server.stderr
    assert message in server.stderr


def test_groups_parse_by_name() -> None:
    assert auth.parse_groups("Metrics, repository") == {"metrics", "repository"}
    assert auth.parse_groups("all") == set(auth.GROUPS)
    with pytest.raises(ValueError, match="got ' , '"):
        auth.parse_groups(" , ")


@pytest.mark.parametrize(
    ("path", "group"),
    [
        ("/v2/repository/models/a/load", "repository"),
        ("/console/api/models", "repository"),
        ("/seldon/ns/dep/v2/repository/index", "repository"),
        ("/metrics", "metrics"),
        ("/send-feedback", "feedback"),
        ("/v2/models/a/versions/2/infer", "inference"),
        ("/docs", "inference"),
        ("/openapi.json", "inference"),
        ("/v2/models/a/versions/2/ready", None),
        ("/v2/health/live", None),
        ("/health/status", None),
        ("/nowhere", None),
    ],
)
def test_paths_belong_to_groups(path: str, group: str | None) -> None:
    assert auth.rest_group(path) == group
