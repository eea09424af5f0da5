#!/usr/bin/env bash
# Regenerate daneel's gRPC modules from the .proto files in src/daneel/protocol/proto/.
#
# Usage: scripts/gen_protos.sh   (from anywhere; needs grpcio-tools, in daneel's dev extra)
#
# Two fixes are applied to what protoc writes:
# - imports between the generated modules become absolute (daneel.protocol.proto...), since
#   protoc writes them as top-level modules;
# - the messages go into a descriptor pool of daneel's own instead of protobuf's default one, so
#   that daneel can be imported beside Triton's or KServe's clients, which define the same
#   `inference.*` messages in the default pool.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
proto_dir="$root/src/daneel/protocol/proto"
python="${PYTHON:-$root/.venv/bin/python}"

cd "$proto_dir"
"$python" -m grpc_tools.protoc -I . \
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
echo "generated: $(ls ./*_pb2*.py* | xargs -n1 basename | tr '\n' ' ')"
