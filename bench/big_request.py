"""What one large V2 JSON request costs the server: seconds, peak memory, and how long the loop stalls.

    .venv/bin/python bench/big_request.py [--mb 60] [--repeat 3]

Starts `daneel serve` on a model that sums each row of an FP32 tensor (a small answer, so that the
request's decoding is what is measured), sends a JSON body of about `--mb` MB, and reports for each
request: its seconds; the peak resident memory above what it held before, of the server process
and of its helper processes (the one that decodes large bodies) apart, each also as a multiple of
the body's size (peaks are reset before each request through /proc/PID/clear_refs, so this needs
Linux and processes this user may write to); and the longest wait for
/v2/health/live, polled every 10 ms by another thread meanwhile, which is how long the event loop
was held.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import requests
from servers import free_port

MODEL = "class Sums:\n    def predict(self, X, names, meta):\n        return X.sum(axis=1)\n"
MIB = 1024 * 1024


def serve(daneel: Path, folder: Path, port: int, pythonpath: str | None) -> subprocess.Popen[bytes]:
    args = [str(daneel), "serve", str(folder), "--host", "127.0.0.1", "--http-port", str(port), "--no-grpc"]
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else None
    return started([*args, "--max-body-bytes", str(2**30)], port, env)


def started(args: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`daneel serve` run with `args`, once ready on `port`; killed, and SystemExit, if not ready within 60 s."""
    proc = subprocess.Popen(args, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("daneel serve did not become ready")


def body_of(mb: float) -> bytes:
    """A V2 request of [rows, 4] FP32 values whose JSON text is about `mb` MB."""
    sample = np.random.default_rng(0).random((1000, 4), dtype=np.float32)
    per_row = len(orjson.dumps(sample.tolist())) / 1000
    rows = max(1, int(mb * 1e6 / per_row))
    data = np.random.default_rng(1).random((rows, 4), dtype=np.float32)
    tensor = {"name": "x", "datatype": "FP32", "shape": [rows, 4], "data": data.tolist()}
    return orjson.dumps({"inputs": [tensor]})


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/{pid}/status")


@dataclass
class Watch:
    """Polls /v2/health/live and keeps the longest answer time while it runs."""

    url: str
    longest: float = 0.0
    stop: bool = False

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stop:
                start = time.perf_counter()
                session.get(self.url, timeout=600)
                self.longest = max(self.longest, time.perf_counter() - start)
                time.sleep(0.01)


def children(pid: int) -> list[int]:
    """The server's child processes: the helper that decodes large bodies (and multiprocessing's tracker)."""
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def one_request(port: int, pid: int, body: bytes) -> tuple[float, float, float, float]:
    """Seconds, the server's and its helpers' peak memory above the start in MiB, and the longest health answer."""
    helpers = children(pid)
    before = {}
    for process in (pid, *helpers):
        Path(f"/proc/{process}/clear_refs").write_text("5")  # resets VmHWM, the peak resident set, to the current one
        before[process] = memory_kib(process, "VmRSS")
    watch = Watch(f"http://127.0.0.1:{port}/v2/health/live")
    thread = threading.Thread(target=watch.run)
    thread.start()
    time.sleep(0.1)
    start = time.perf_counter()
    response = requests.post(f"http://127.0.0.1:{port}/v2/models/sums/infer", data=body, timeout=600)
    seconds = time.perf_counter() - start
    watch.stop = True
    thread.join()
    response.raise_for_status()
    peaks = {process: (memory_kib(process, "VmHWM") - start) / 1024 for process, start in before.items()}
    return seconds, peaks.pop(pid), sum(peaks.values()), watch.longest


@dataclass(frozen=True)
class Result:
    """One large request: its seconds, the server's and its helpers' peak MiB above the start, the longest
    health answer in seconds."""

    seconds: float
    server_mib: float
    helper_mib: float
    stall_s: float


def measure(daneel: Path, mb: float, repeat: int, pythonpath: str | None = None) -> tuple[float, list[Result]]:
    """The body's size in MiB and `repeat` requests' results, after one warm-up, against `daneel serve`."""
    body = body_of(mb)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sums"
        folder.mkdir()
        (folder / "Sums.py").write_text(MODEL)
        port = free_port()
        proc = serve(daneel, folder, port, pythonpath)
        try:
            one_request(port, proc.pid, body)  # warm-up
            return len(body) / MIB, [Result(*one_request(port, proc.pid, body)) for _ in range(repeat)]
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def table(size: float, results: list[Result]) -> list[str]:
    lines = [
        f"V2 JSON request of {size:.1f} MiB, FP32 [rows, 4], a model that sums rows",
        "",
        "| request | seconds | server peak MiB | / body | helper peak MiB | / body | longest health s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(results, 1):
        shares = f"{r.server_mib:.0f} | {r.server_mib / size:.1f}x | {r.helper_mib:.0f} | {r.helper_mib / size:.1f}x"
        lines.append(f"| {i} | {r.seconds:.2f} | {shares} | {r.stall_s:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=60.0, help="JSON body size in MB (default 60)")
    parser.add_argument("--repeat", type=int, default=3, help="requests, after one warm-up (default 3)")
    parser.add_argument("--pythonpath", help="PYTHONPATH for the server: another checkout's src, to compare")
    options = parser.parse_args()
    daneel = Path(sys.executable).with_name("daneel")
    print("\n".join(table(*measure(daneel, options.mb, options.repeat, options.pythonpath))))


if __name__ == "__main__":
    main()
