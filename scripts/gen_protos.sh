#!/usr/bin/env bash
# Regenerate daneel's gRPC modules from the .proto files in src/daneel/protocol/proto/.
#
# Usage: scripts/gen_protos.sh   (from anywhere; needs python3 and access to PyPI)
#
# The generator is pinned on purpose, and old: grpcio-tools 1.62.3 bundles protoc 25.1, whose
# Python modules carry no runtime version check, and whose *_pb2_grpc modules carry no grpcio
# version check. They load with every protobuf runtime from 4.25 to 7.x and every grpcio from 1.62,
# so daneel installs beside tritonclient (protobuf<7), KServe (protobuf 6) and the newest
# OpenTelemetry and MLflow alike. A newer generator would force its own protobuf floor on every
# user. It runs in a throwaway virtualenv, so the project's own environment is left as it is.
#
# Two fixes are applied to what protoc writes:
# - imports between the generated modules become absolute (daneel.protocol.proto...), since
#   protoc writes them as top-level modules;
# - the messages go into a descriptor pool of daneel's own instead of protobuf's default one, so
#   that daneel can be imported beside Triton's or KServe's clients, which define the same
#   `inference.*` messages in the default pool.
set -euo pipefail

GENERATOR="grpcio-tools==1.62.3"
root="$(cd "$(dirname "$0")/.." && pwd)"
proto_dir="$root/src/daneel/protocol/proto"
venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT

python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet "$GENERATOR"

cd "$proto_dir"
"$venv/bin/python" -m grpc_tools.protoc -I . \
    --python_out=. --pyi_out=. --grpc_python_out=. \
    grpc_predict_v2.proto model_repository.proto

for module in *_pb2.py *_pb2_grpc.py; do
    sed -i -E \
        -e 's/^import ([a-z_0-9]+_pb2) as /from daneel.protocol.proto import \1 as /' \
        -e 's/_descriptor_pool\.Default\(\)\.AddSerializedFile/_pool.POOL.AddSerializedFile/' \
        "$module"
    if grep -q '_pool.POOL' "$module"; then
        sed -i -E 's/^(from google\.protobuf import descriptor_pool as _descriptor_pool)$/\1\nfrom daneel.protocol.proto import _pool/' "$module"
    fi
done
echo "generated with $GENERATOR: $(ls ./*_pb2*.py* | xargs -n1 basename | tr '\n' ' ')"
