"""Seconds to send a large FP32 tensor through an echo model and back, per transport.

    .venv/bin/python bench/large_tensor.py [--mb 20] [--repeat 5]

Starts `daneel serve` on an echo class, then times tritonclient over REST with JSON
tensors, REST with Triton's binary extension, and gRPC with raw contents.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from big_request import started
from servers import free_port

ECHO = "class Echo:\n    def predict(self, X, names, meta):\n        return X\n"


def serve(folder: Path, http: int, grpc: int) -> subprocess.Popen[bytes]:
    daneel = Path(sys.executable).with_name("daneel")
    args = [str(daneel), "serve", str(folder), "--host", "127.0.0.1", "--http-port", str(http)]
    # JSON text of a large tensor is several times its size: lift the 64 MiB body limit for that row.
    args += ["--grpc-port", str(grpc), "--max-body-bytes", str(2**30)]
    return started(args, http)


def rest(port: int, data: np.ndarray, binary: bool) -> Callable[[], None]:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{port}", network_timeout=600, connection_timeout=600)

    def call() -> None:
        tensor = httpclient.InferInput("x", list(data.shape), "FP32")
        tensor.set_data_from_numpy(data, binary_data=binary)
        wanted = [httpclient.InferRequestedOutput("output-0", binary_data=binary)]
        result = client.infer("echo", [tensor], outputs=wanted).as_numpy("output-0")
        assert result is not None and result.shape == data.shape

    return call


def grpc(port: int, data: np.ndarray) -> Callable[[], None]:
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")

    def call() -> None:
        tensor = grpcclient.InferInput("x", list(data.shape), "FP32")
        tensor.set_data_from_numpy(data)
        result = client.infer("echo", [tensor]).as_numpy("output-0")
        assert result is not None and result.shape == data.shape

    return call


def timed(call: Callable[[], None], repeat: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=20.0, help="tensor size in MB (default 20)")
    parser.add_argument("--repeat", type=int, default=5, help="timed round trips per transport (default 5)")
    options = parser.parse_args()
    data = np.random.default_rng(0).random(int(options.mb * 1e6 / 4), dtype=np.float32).reshape(1, -1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "echo"
        folder.mkdir()
        (folder / "Echo.py").write_text(ECHO)
        http_port, grpc_port = free_port(), free_port()
        proc = serve(folder, http_port, grpc_port)
        try:
            print(f"{options.mb:g} MB FP32 tensor, echo model, median of {options.repeat} round trips")
            for label, call in (
                ("REST, JSON tensors", rest(http_port, data, binary=False)),
                ("REST, binary tensor extension", rest(http_port, data, binary=True)),
                ("gRPC, raw contents", grpc(grpc_port, data)),
            ):
                print(f"  {label:32} {timed(call, options.repeat):7.3f} s")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
