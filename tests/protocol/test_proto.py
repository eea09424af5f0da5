"""The generated gRPC modules load beside the protobuf and grpcio that other V2 clients pin.

tritonclient and KServe cap protobuf below 7 while the newest MLflow and OpenTelemetry allow 7:
modules that demand the generator's own runtime would break one side or the other. `.ci/run`
imports them under each protobuf major; these tests hold the modules to what makes that possible.
"""

import re
from pathlib import Path

import pytest

import daneel.protocol.proto as proto_package
from daneel.protocol.proto import grpc_predict_v2_pb2 as pb
from daneel.protocol.proto import model_repository_pb2 as repository_pb

PROTO_DIR = Path(proto_package.__file__).parent
OLDEST_PROTOBUF = (4, 25, 1)


def _project_floor(name: str) -> tuple[int, ...]:
    pyproject = (PROTO_DIR.parents[3] / "pyproject.toml").read_text()
    found = re.search(rf'"{name}>=([0-9.]+)"', pyproject)
    assert found, f"pyproject.toml declares no lower bound for {name}"
    return tuple(int(part) for part in found.group(1).split("."))


@pytest.mark.parametrize("module", sorted(PROTO_DIR.glob("*_pb2.py")), ids=lambda path: path.name)
def test_message_modules_check_no_runtime_version(module: Path) -> None:
    text = module.read_text()
    generated = re.search(r"# Protobuf Python Version: ([0-9.]+)", text)
    assert generated, f"{module.name} does not say which protobuf generated it"
    assert tuple(int(part) for part in generated.group(1).split(".")) <= OLDEST_PROTOBUF
    assert "ValidateProtobufRuntimeVersion" not in text


@pytest.mark.parametrize("module", sorted(PROTO_DIR.glob("*_pb2_grpc.py")), ids=lambda path: path.name)
def test_service_modules_check_no_grpcio_version(module: Path) -> None:
    assert "GRPC_GENERATED_VERSION" not in module.read_text()


def test_declared_floors_match_the_generator() -> None:
    assert _project_floor("protobuf") <= OLDEST_PROTOBUF
    assert _project_floor("grpcio") <= (1, 62)


def test_messages_round_trip_in_daneels_own_pool() -> None:
    request = pb.ModelInferRequest(model_name="iris", id="1")
    tensor = request.inputs.add(name="x", datatype="FP32", shape=[1, 2])
    tensor.contents.fp32_contents.extend([1.0, 2.0])
    tensor.parameters["content_type"].string_param = "np"

    again = pb.ModelInferRequest.FromString(request.SerializeToString())

    assert list(again.inputs[0].contents.fp32_contents) == [1.0, 2.0]
    assert again.inputs[0].parameters["content_type"].string_param == "np"
    assert repository_pb.RepositoryIndexRequest(ready=True).ready
