"""The Open Inference Protocol over gRPC, against real `daneel serve` processes and Triton's client."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from daneel.dataplane.dataplane import DataPlane
from daneel.dataplane.repository import Repository
from daneel.errors import Overloaded
from daneel.protocol import context, v2grpc
from daneel.protocol.payload import Payload
from daneel.protocol.proto import grpc_predict_v2_pb2 as pb
from daneel.protocol.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from daneel.protocol.proto import model_repository_pb2 as repo_pb
from daneel.protocol.proto import model_repository_pb2_grpc as repo_grpc
from daneel.runtime.component import Component
from daneel.server import grpc as grpc_edge

from . import tensors
from .components import FAILING

ECHO = """
    class Echo:
        def predict(self, X, names, meta):
            return X
"""

SLOW_LOAD = """
    import time
    from pathlib import Path


    class Slow:
        def __init__(self, marker):
            self.marker = marker

        def load(self):
            while not Path(self.marker).exists():
                time.sleep(0.05)

        def predict(self, X, names, meta):
            return X
"""

ARRAYS = tensors.ARRAYS


@pytest.fixture(scope="module")
def echo(module_serve: Any, make_model: Any) -> Any:
    return module_serve(make_model(ECHO, "echo"))


@pytest.fixture(scope="module")
def client(echo: Any) -> Iterator[triton.InferenceServerClient]:
    with triton.InferenceServerClient(echo.grpc_target) as client:
        yield client


@pytest.fixture
def stub(echo: Any) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(echo.grpc_target) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def triton_input(name: str, array: np.ndarray, datatype: str | None = None) -> triton.InferInput:
    tensor = triton.InferInput(name, list(array.shape), datatype or triton_datatype(array))
    tensor.set_data_from_numpy(array)
    return tensor


def triton_datatype(array: np.ndarray) -> str:
    from tritonclient.utils import np_to_triton_dtype

    return str(np_to_triton_dtype(array.dtype))


def failure(call: Any) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value


def test_health_and_server_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("echo")
    metadata = client.get_server_metadata(as_json=True)
    assert metadata["name"] == "daneel"
    assert "binary_tensor_data" in metadata["extensions"]


def test_iris_answers_with_its_probabilities(module_serve: Any, iris: Any) -> None:
    server = module_serve(iris.path)
    with triton.InferenceServerClient(server.grpc_target) as client:
        metadata = client.get_model_metadata("iris", as_json=True)
        assert metadata["name"] == "iris"
        result = client.infer("iris", [triton_input("x", iris.X)], request_id="iris-1")
    np.testing.assert_allclose(result.as_numpy("predict_proba"), iris.model.predict_proba(iris.X))
    assert result.get_response().id == "iris-1"
    assert result.get_response().model_name == "iris"


@pytest.mark.parametrize("datatype", list(ARRAYS))
def test_every_datatype_round_trips_in_raw_contents(client: triton.InferenceServerClient, datatype: str) -> None:
    array = ARRAYS[datatype]
    result = client.infer("echo", [triton_input("x", array, datatype)])
    output = result.get_response().outputs[0]
    assert (output.datatype, list(output.shape)) == (datatype, [2, 2])
    assert len(result.get_response().raw_output_contents) == 1  # raw in, raw out, as Triton answers
    echoed = result.as_numpy(output.name)
    assert echoed.dtype == array.dtype
    np.testing.assert_array_equal(echoed, array)


@pytest.mark.parametrize("datatype", [d for d in ARRAYS if d != "FP16"])
def test_every_datatype_round_trips_in_typed_contents(stub: pb_grpc.GRPCInferenceServiceStub, datatype: str) -> None:
    array = ARRAYS[datatype]
    tensor = {"name": "x", "datatype": datatype, "shape": [2, 2], "data": array}
    response = stub.ModelInfer(v2grpc.encode_request("echo", [tensor], raw=False))
    assert not response.raw_output_contents
    (output,) = v2grpc.decode_response(response)["outputs"]
    assert output["datatype"] == datatype
    assert output["data"].dtype == array.dtype
    np.testing.assert_array_equal(output["data"], array)


def test_fp16_in_typed_contents_is_an_invalid_argument_naming_the_field(
    stub: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    request = pb.ModelInferRequest(model_name="echo")
    request.inputs.add(name="x", datatype="FP16", shape=[1]).contents.fp32_contents.append(1.0)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "inputs[0].contents: FP16 data can only be sent in raw_input_contents"


def test_several_inputs_come_back_by_name(client: triton.InferenceServerClient) -> None:
    a = np.array([1, 2], dtype=np.int64)
    b = np.array([b"x"], dtype=object)
    result = client.infer("echo", [triton_input("a", a), triton_input("b", b, "BYTES")])
    np.testing.assert_array_equal(result.as_numpy("a"), a)
    assert result.as_numpy("b").tolist() == [b"x"]


def test_a_20_megabyte_tensor_round_trips(client: triton.InferenceServerClient) -> None:
    array = np.random.default_rng(0).random((5_000, 1_000), dtype=np.float32)  # 20 MB
    result = client.infer("echo", [triton_input("x", array)])
    np.testing.assert_array_equal(result.as_numpy("output-0"), array)


@pytest.mark.parametrize(
    ("field", "value", "code", "message"),
    [
        ("model_name", "nope", grpc.StatusCode.NOT_FOUND, "nope"),
        ("datatype", "FP128", grpc.StatusCode.INVALID_ARGUMENT, "inputs[0].datatype: unknown datatype 'FP128'"),
        ("shape", [3], grpc.StatusCode.INVALID_ARGUMENT, "raw_input_contents[0]: has 8 bytes but shape [3] of FP32"),
    ],
)
def test_errors_carry_the_status_code_and_name_the_field(
    stub: pb_grpc.GRPCInferenceServiceStub, field: str, value: Any, code: grpc.StatusCode, message: str
) -> None:
    request = v2grpc.encode_request("echo", [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1.0, 2.0]}])
    if field == "model_name":
        request.model_name = value
    elif field == "datatype":
        request.inputs[0].datatype = value
    else:
        request.inputs[0].shape[:] = value
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request)
    assert caught.value.code() == code
    assert message in caught.value.details()


def test_an_unknown_model_is_not_found_for_metadata_and_readiness(client: triton.InferenceServerClient) -> None:
    assert failure(lambda: client.get_model_metadata("nope")).status() == "StatusCode.NOT_FOUND"
    assert failure(lambda: client.is_model_ready("nope")).status() == "StatusCode.NOT_FOUND"


def test_a_model_that_raises_is_internal_with_its_message(module_serve: Any, make_model: Any) -> None:
    server = module_serve(make_model(FAILING, "failing"))
    with triton.InferenceServerClient(server.grpc_target) as client:
        error = failure(lambda: client.infer("failing", [triton_input("x", np.ones(2))]))
        assert error.status() == "StatusCode.INTERNAL"
        assert "the sensor column is missing" in error.message()
        assert client.is_server_live()  # the server keeps serving


def test_messages_over_the_limit_are_resource_exhausted(serve: Any, make_model: Any) -> None:
    server = serve(make_model(ECHO, "echo"), "--grpc-max-message-bytes", "1000000")
    with triton.InferenceServerClient(server.grpc_target) as client:
        small = np.zeros(1_000, dtype=np.float32)
        np.testing.assert_array_equal(client.infer("echo", [triton_input("x", small)]).as_numpy("output-0"), small)
        error = failure(lambda: client.infer("echo", [triton_input("x", np.zeros(500_000, dtype=np.float32))]))
    assert error.status() == "StatusCode.RESOURCE_EXHAUSTED"


def test_health_answers_while_the_model_loads(serve: Any, make_model: Any, tmp_path: Path, wait_for: Any) -> None:
    marker = tmp_path / "loaded"
    server = serve(make_model(SLOW_LOAD, "slow"), "--parameters", f'{{"marker": "{marker}"}}', ready=False)
    with triton.InferenceServerClient(server.grpc_target) as client:
        wait_for(lambda: _answers(client), "gRPC to answer")
        assert client.is_server_live()
        assert not client.is_server_ready()
        assert not client.is_model_ready("slow")
        marker.touch()
        wait_for(client.is_server_ready, "the model to load")
        assert client.is_model_ready("slow")


def _answers(client: triton.InferenceServerClient) -> bool:
    try:
        return bool(client.is_server_live())
    except InferenceServerException:
        return False


def test_with_two_workers_grpc_answers(serve: Any, make_model: Any, wait_for: Any) -> None:
    server = serve(make_model(ECHO, "echo"), "--workers", "2")
    array = np.arange(4, dtype=np.int32)

    def answers() -> bool:
        # A worker that started late may still be loading after the other answered ready: UNAVAILABLE, asked again.
        with triton.InferenceServerClient(server.grpc_target) as client:
            try:
                result = client.infer("echo", [triton_input("x", array)]).as_numpy("output-0")
            except InferenceServerException as exc:
                assert "UNAVAILABLE" in str(exc.status()), exc
                return False
        np.testing.assert_array_equal(result, array)
        return True

    for _ in range(4):  # a fresh connection each time, so that the kernel may hand it to either worker
        wait_for(answers, "a gRPC answer")


def test_port_zero_picks_a_free_port_and_logs_it(serve: Any, make_model: Any, wait_for: Any) -> None:
    server = serve(make_model(ECHO, "echo"), "--grpc-port", "0")
    wait_for(lambda: re.search(r"gRPC on 127\.0\.0\.1:(\d+)", server.stderr), "the gRPC port in the log")
    port = re.search(r"gRPC on 127\.0\.0\.1:(\d+)", server.stderr)
    assert port is not None
    with triton.InferenceServerClient(f"127.0.0.1:{port.group(1)}") as client:
        assert client.is_server_ready()


def test_a_grpc_port_in_use_fails_fast_with_one_line(serve: Any, make_model: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = serve.exits(make_model(ECHO, "echo"), "--grpc-port", str(port))
    assert server.returncode == 1
    assert server.stderr.strip().splitlines()[-1] == (
        f"daneel: cannot listen for gRPC on 127.0.0.1:{port}: Address already in use;"
        " choose another port with --grpc-port"
    )


def test_no_grpc_leaves_grpc_off(serve: Any, make_model: Any) -> None:
    server = serve(make_model(ECHO, "echo"), "--no-grpc")
    assert "gRPC on" not in server.stderr
    assert server.grpc_port is None


def test_sigterm_stops_grpc_and_http_cleanly(serve: Any, make_model: Any) -> None:
    server = serve(make_model(ECHO, "echo"))
    with triton.InferenceServerClient(server.grpc_target) as client:
        assert client.is_server_ready()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0


def test_the_repository_service_lists_unloads_and_loads(serve: Any, make_model: Any) -> None:
    server = serve(make_model(ECHO, "echo"))
    with grpc.insecure_channel(server.grpc_target) as channel:
        repository = repo_grpc.ModelRepositoryServiceStub(channel)
        inference = pb_grpc.GRPCInferenceServiceStub(channel)
        (entry,) = repository.RepositoryIndex(repo_pb.RepositoryIndexRequest()).models
        assert (entry.name, entry.state) == ("echo", "READY")

        repository.RepositoryModelUnload(repo_pb.RepositoryModelUnloadRequest(model_name="echo"))
        assert not repository.RepositoryIndex(repo_pb.RepositoryIndexRequest(ready=True)).models
        assert not inference.ModelReady(pb.ModelReadyRequest(name="echo")).ready

        repository.RepositoryModelLoad(repo_pb.RepositoryModelLoadRequest(model_name="echo"))
        assert inference.ModelReady(pb.ModelReadyRequest(name="echo")).ready

        with pytest.raises(grpc.RpcError) as caught:
            repository.RepositoryModelLoad(repo_pb.RepositoryModelLoadRequest(model_name="nope"))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


class Headers(Component):
    """Answers with the request's `x-sticky` header as a response header, or refuses when asked to."""

    name = "headers"

    async def predict(self, payload: Payload) -> Payload:
        request = context.current()
        if request.header("x-busy"):
            raise Overloaded("queue is full", retry_after=3)
        request.response_headers["X-Daneel-Predictor"] = request.header("x-sticky") or "none"
        return payload


async def call_in_process(
    metadata: tuple[tuple[str, str], ...],
) -> tuple[grpc.StatusCode, str, dict[str, Any], dict[str, Any]]:
    """One ModelInfer call to the gRPC edge run in this process over a loopback port.

    Returns the status code, its details, and the initial and trailing metadata.
    """
    repository = Repository([Headers()])
    await repository.load_all()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = await grpc_edge.start(DataPlane(repository), "127.0.0.1", port, 1 << 20)
    request = v2grpc.encode_request("headers", [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, metadata=metadata)
            with contextlib.suppress(grpc.aio.AioRpcError):
                await call
            initial, trailing = await call.initial_metadata(), await call.trailing_metadata()
            # pairs, as iterating gives them: before grpcio 1.63 Metadata.keys() gave pairs too, so dict() failed
            return await call.code(), await call.details(), dict(list(initial or ())), dict(list(trailing or ()))
    finally:
        await server.stop(None)


def test_metadata_reaches_the_layers_below_and_their_headers_come_back() -> None:
    code, _, initial, _ = asyncio.run(call_in_process((("x-sticky", "blue"),)))
    assert code == grpc.StatusCode.OK
    assert initial["x-daneel-predictor"] == "blue"


def test_overloaded_is_unavailable_with_retry_after() -> None:
    code, details, _, trailing = asyncio.run(call_in_process((("x-busy", "1"),)))
    assert (code, details) == (grpc.StatusCode.UNAVAILABLE, "queue is full")
    assert trailing["retry-after"] == "3"


def test_the_request_id_comes_back_in_the_trailing_metadata_made_or_as_sent() -> None:
    code, _, _, trailing = asyncio.run(call_in_process(()))
    assert code == grpc.StatusCode.OK
    assert len(trailing["x-request-id"]) == 32
    _, _, _, trailing = asyncio.run(call_in_process((("x-request-id", "abc"), ("x-busy", "1"))))
    assert trailing["x-request-id"] == "abc"


def test_an_internal_error_tells_the_client_only_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("ERROR", logger="daneel.grpc"):
        try:
            raise RuntimeError("cannot read /srv/secret/models")
        except RuntimeError as exc:
            failure = grpc_edge._failure(exc, "ModelInfer", "rid-1")
    message = "internal error; the server log has the detail under request id rid-1"
    assert failure == (grpc.StatusCode.INTERNAL, message, ())
    assert "rid-1" in caplog.text and "cannot read /srv/secret/models" in caplog.text
