"""Load from wrk: one thread, N connections, the same V2 request body on every connection.

The Lua script's done() prints one line that starts with BENCH, holding wrk's own counts and
latency percentiles (microseconds), so nothing depends on wrk's human-readable summary.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# One row of iris, FP64 [1, 4]; predict_proba asked for by name, which MLServer's sklearn runtime needs.
PAYLOAD = (
    b'{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP64","data":[5.1,3.5,1.4,0.2]}],'
    b'"outputs":[{"name":"predict_proba"}]}'
)

SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{body}]]

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass(frozen=True)
class Load:
    """What one wrk run measured; latencies in milliseconds."""

    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    failed: int
    cpu_us: float = float("nan")


def write_script(path: Path, payload: bytes = PAYLOAD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SCRIPT.format(body=payload.decode()).lstrip())
    return path


def run_wrk(wrk: str, script: Path, url: str, connections: int, seconds: float) -> Load:
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script)]
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}) against {url}: {done.stdout[-500:]}{done.stderr[-500:]}")
    return parse(line)


def parse(line: str) -> Load:
    fields = dict(item.split("=") for item in line.split()[1:])
    count, seconds = int(fields["requests"]), int(fields["duration_us"]) / 1e6
    failed = int(fields["non2xx"]) + int(fields["socket_errors"])
    return Load(count, count / seconds, int(fields["p50_us"]) / 1000, int(fields["p99_us"]) / 1000, failed)
