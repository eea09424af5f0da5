"""`daneel serve --tls-cert --tls-key [--tls-client-ca]`: TLS and mutual TLS on every port, with real clients."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from tests.conftest import STARTUP_TIMEOUT_S, free_port
from tritonclient.utils import InferenceServerException

from daneel.protocol.proto import grpc_predict_v2_pb2 as pb
from daneel.protocol.proto import grpc_predict_v2_pb2_grpc as pb_grpc

from .certs import Certs, Pair, make_certs

TOKEN = "tls-test-token-51e0"
ROW = [5.1, 3.5, 1.4, 0.2]
V2_BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def trusting(certs: Certs, client: Pair | None = None) -> ssl.SSLContext:
    """A client's TLS settings: trust the test CA; present `client`'s certificate if given."""
    context = ssl.create_default_context(cafile=certs.ca)
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    return context


def https(server: Any) -> str:
    return str(server.url).replace("http://", "https://")


def wait_ready(server: Any, context: ssl.SSLContext) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert server.returncode is None, server.stderr
        try:
            if httpx.get(https(server) + "/v2/health/ready", verify=context, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"no answer over TLS:\n{server.stderr}")


@pytest.fixture(scope="module")
def tls(module_serve: Any, iris: Any, certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """TLS on the HTTP, gRPC and metrics ports; inference guarded by a token, for `daneel predict`."""
    token = tmp_path_factory.mktemp("token") / "token"
    token.write_text(TOKEN)
    server = module_serve.start(
        iris.path,
        *("--tls-cert", str(certs.server.cert), "--tls-key", str(certs.server.key)),
        *("--auth-token-file", str(token), "--auth-protect", "inference"),
        *("--metrics-port", str(free_port())),
    )
    wait_ready(server, trusting(certs))
    return server


@pytest.fixture(scope="module")
def mutual(module_serve: Any, iris: Any, certs: Certs) -> Any:
    server = module_serve.start(
        iris.path,
        *("--tls-cert", str(certs.server.cert), "--tls-key", str(certs.server.key)),
        *("--tls-client-ca", str(certs.ca)),
    )
    wait_ready(server, trusting(certs, certs.client))
    return server


# TLS


def test_https_with_the_servers_ca(tls: Any, certs: Certs, iris: Any) -> None:
    with httpx.Client(verify=trusting(certs), timeout=30) as client:
        response = client.post(
            https(tls) + "/v2/models/iris/infer", json=V2_BODY, headers={"authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["outputs"][0]["data"], iris.model.predict_proba([ROW]).ravel())


def test_an_unknown_ca_and_plain_http_are_refused(tls: Any) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(https(tls) + "/v2/health/live", timeout=30)  # the system's CAs never signed the test CA
    with pytest.raises(httpx.TransportError):
        httpx.get(tls.url + "/v2/health/live", timeout=30)
    assert httpx.get(https(tls) + "/v2/health/live", verify=False, timeout=30).status_code == 200  # still serving


def test_the_metrics_port_speaks_tls_too(tls: Any, certs: Certs) -> None:
    args = list(tls.proc.args)
    port = int(args[args.index("--metrics-port") + 1])
    response = httpx.get(f"https://127.0.0.1:{port}/metrics", verify=trusting(certs), timeout=30)
    assert response.status_code == 200
    assert "# TYPE" in response.text


def test_grpc_over_tls(tls: Any, certs: Certs, iris: Any) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes())
    with grpc.secure_channel(tls.grpc_target, credentials) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready
    with grpc.insecure_channel(tls.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as refused:
            stub.ServerReady(pb.ServerReadyRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    client = triton_grpc.InferenceServerClient(tls.grpc_target, ssl=True, root_certificates=str(certs.ca))
    inputs = [triton_grpc.InferInput("x", [1, 4], "FP64")]
    inputs[0].set_data_from_numpy(np.array([ROW]))
    result = client.infer("iris", inputs, headers={"authorization": f"Bearer {TOKEN}"})
    np.testing.assert_allclose(result.as_numpy("predict_proba"), iris.model.predict_proba([ROW]))
    client.close()


def test_daneel_predict_over_https_with_a_token(daneel_cli: Any, tls: Any, certs: Certs, tmp_path: Path) -> None:
    args = ("predict", https(tls), "--model", "iris", "--data", json.dumps([ROW]), "--ca-cert", str(certs.ca))
    refused = daneel_cli(*args)
    assert refused.returncode == 1
    assert "answered 401" in refused.stderr and "needs a token" in refused.stderr
    untrusted = daneel_cli("predict", https(tls), "--model", "iris", "--data", json.dumps([ROW]), "--token", TOKEN)
    assert untrusted.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    answered = daneel_cli(*args, "--token-file", str(token))
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["outputs"][0]["name"] == "predict_proba"


# Mutual TLS


def test_mutual_tls_needs_a_client_certificate_from_the_ca(mutual: Any, certs: Certs) -> None:
    url = https(mutual) + "/v2/health/ready"
    assert httpx.get(url, verify=trusting(certs, certs.client), timeout=30).status_code == 200
    for client in (None, certs.stranger):
        with pytest.raises(httpx.TransportError):
            httpx.get(url, verify=trusting(certs, client), timeout=30)


def test_mutual_tls_over_grpc(mutual: Any, certs: Certs) -> None:
    ca = certs.ca.read_bytes()
    given = grpc.ssl_channel_credentials(ca, certs.client.key.read_bytes(), certs.client.cert.read_bytes())
    with grpc.secure_channel(mutual.grpc_target, given) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=30).live
    with grpc.secure_channel(mutual.grpc_target, grpc.ssl_channel_credentials(ca)) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as refused:
            stub.ServerLive(pb.ServerLiveRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_daneel_predict_with_a_client_certificate(daneel_cli: Any, mutual: Any, certs: Certs) -> None:
    args = ("predict", https(mutual), "--data", json.dumps([ROW]), "--ca-cert", str(certs.ca))
    assert daneel_cli(*args).returncode == 1
    answered = daneel_cli(*args, "--cert", str(certs.client.cert), "--key", str(certs.client.key))
    assert answered.returncode == 0, answered.stderr
    assert len(json.loads(answered.stdout)["data"]["ndarray"][0]) == 3


# Settings


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tls-cert", "SERVER_CERT"), "--tls-key: Value error, --tls-cert and --tls-key go together"),
        (("--tls-cert", "SERVER_CERT", "--tls-key", "CLIENT_KEY"), "cannot use"),
        (("--tls-client-ca", "CA"), "needs the server's own --tls-cert and --tls-key"),
        (("--tls-cert", "SERVER_CERT", "--tls-key", "SERVER_KEY", "--tls-client-ca", "SERVER_KEY"), "cannot read CA"),
    ],
)
def test_bad_tls_files_stop_the_server_with_one_line(
    serve: Any, iris: Any, certs: Certs, args: tuple[str, ...], message: str
) -> None:
    files = {
        "SERVER_CERT": certs.server.cert,
        "SERVER_KEY": certs.server.key,
        "CLIENT_KEY": certs.client.key,
        "CA": certs.ca,
    }
    server = serve.exits(iris.path, "--no-grpc", *(str(files.get(a, a)) for a in args))
    assert server.returncode == 2, server.stderr
    assert message in server.stderr


def test_triton_refuses_without_the_ca(tls: Any) -> None:
    client = triton_grpc.InferenceServerClient(tls.grpc_target)
    with pytest.raises(InferenceServerException):
        client.is_server_live(client_timeout=10)
    client.close()
