"""Optional measurements, each a function that returns its report section or says why it was skipped.

- graph: a 3-node in-process graph (two pass-through transformers in front of the model) against
  the single model, at concurrency 1. Needs `daneel serve deploy.yaml`.
- observability: daneel with metrics and request logging on against both off, at concurrency 16.
  Needs switches for both in `daneel serve` (looked for by name below).
- memory: the proportional set size of a ~200 MB model served by 2 workers against 1. Full runs only,
  unless named.
- large-request: what one 60 MB V2 JSON request costs (20 MB in quick runs): seconds, peak memory of
  the server and of the helper process that decodes it, against the body's size, and the longest
  health answer meanwhile (bench/big_request.py).
- pytorch: daneel's PYTORCH_SERVER against the raw ASGI baseline serving the same exported MLP
  (bench/baseline_torch.py), at concurrency 1 and 16, from bench/.venv-daneel-torch. Full runs only,
  unless named.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import big_request
import lineup
import prepare
from load import Load, write_script
from measure import FAILURES, Bench, Memory, load_pair, load_together, memory_one
from report import MIB, Row, Section, Target
from servers import Spec

# Switches the observability slot looks for in `daneel serve --help`; it is skipped while they are absent.
METRICS_OFF = "--no-metrics"
REQUEST_LOG = "--request-log"


def graph(bench: Bench, rows: list[Row]) -> Section:
    title = "3-node graph vs single model at c1"
    if not lineup.daneel_help(bench.tools.daneel, "validate"):
        return skipped(title, "this daneel has no `daneel validate`, so it serves no deployment files yet")
    deployment = prepare.write_graph(bench.tools.work / "graph", bench.tools.model.parent, lineup.GRAPH_NAME)
    specs = (lineup.lineup(bench.tools)["daneel"], lineup.graph_spec(bench.tools, deployment))
    try:
        single, chained = load_pair(bench, specs, 1)
    except FAILURES as exc:
        return skipped(title, f"daneel could not serve {deployment}: {str(exc).splitlines()[0]}")
    lines = [
        "Two pass-through Python transformers in front of the iris model, in one process"
        f" ({deployment.name} in bench/.work/graph), against the iris model served alone. Both servers run"
        " side by side and are loaded in turns, as in the tables above: single, graph, graph, single.",
        "",
        *compare([("daneel, single model", single), ("daneel, 3-node graph", chained)]),
        f"The graph's p50 is {chained.p50_ms / single.p50_ms:.2f}x the single model's;"
        f" its req/s {chained.rps / single.rps:.2f}x.",
    ]
    target = Target("3-node graph / single model, p50 at c1", chained.p50_ms / single.p50_ms, 1.15, False)
    return Section(title, lines, [target])


def observability(bench: Bench, rows: list[Row]) -> Section:
    title = "daneel with metrics and request logging on vs off, at c16"
    help_text = lineup.daneel_help(bench.tools.daneel, "serve")
    missing = [switch for switch in (METRICS_OFF, REQUEST_LOG) if switch not in help_text]
    if missing:
        return skipped(title, f"not built yet: `daneel serve` has no {' or '.join(missing)}")
    log = str(bench.tools.work / "requests.log")
    on = lineup.daneel_spec(bench.tools, "daneel-observed-on", "metrics and request logging on", [REQUEST_LOG, log])
    off = lineup.daneel_spec(bench.tools, "daneel-observed-off", "metrics and request logging off", [METRICS_OFF])
    try:
        measured = list(zip((off.label, on.label), load_pair(bench, (off, on), 16), strict=True))
    except FAILURES as exc:
        return skipped(title, f"daneel failed with the switches on: {str(exc).splitlines()[0]}")
    ratio = measured[1][1].rps / measured[0][1].rps
    return Section(title, [*compare(measured), f"With both on, daneel keeps {ratio:.2f}x of its req/s."])


def memory(bench: Bench, rows: list[Row]) -> Section:
    title = "Workers and memory: a ~200 MB model served by 1 and by 2 workers"
    try:
        model = prepare.train_large_model(bench.tools.work / "models" / lineup.LARGE_NAME)
        one, two = (memory_one(bench, lineup.large_spec(bench.tools, model, n)) for n in (1, 2))
    except (*FAILURES, subprocess.CalledProcessError) as exc:
        return skipped(title, f"it could not be measured: {str(exc).splitlines()[0]}")
    size = model.stat().st_size / MIB / MIB  # MiB
    ratio = two.pss_kib / one.pss_kib
    lines = [
        f"{model.parent.name}: an MLPClassifier on iris' four features, {size:.0f} MiB of weights saved"
        " uncompressed with joblib (bench/.work/models); every prediction reads all of them. Each server"
        " answered requests on new connections from several clients at once, so that every worker read the"
        " model, before its memory was read (summed over the supervisor and its workers).",
        "",
        "| server | processes | RSS MiB | PSS MiB | RSS MiB of each process but the supervisor |",
        "|---|---:|---:|---:|---|",
        *[_memory_row(label, m) for label, m in (("daneel --workers 1", one), ("daneel --workers 2", two))],
        "",
        f"2 workers / 1 worker PSS: {ratio:.2f}x; RSS: {two.rss_kib / one.rss_kib:.2f}x.",
    ]
    idle = [pid for m in (one, two) for pid, (rss, _) in m.workers.items() if rss < 0.9 * size * MIB]
    if idle:
        lines.append(
            f"Processes {idle} hold less than the model in memory: a worker that served no request, or a helper"
            " such as multiprocessing's resource tracker."
        )
    return Section(title, lines, [Target("2 workers / 1 worker PSS, ~200 MB model", ratio, 1.3, False)])


#: The bound docs/operations.md states: one large request's peak memory, server and helper together, over its body.
LARGE_REQUEST_BOUND = 10.0


def large_request(bench: Bench, rows: list[Row]) -> Section:
    mb = 20.0 if bench.duration < 10 else 60.0
    title = f"One large request: {mb:.0f} MB of V2 JSON"
    try:
        size, results = big_request.measure(bench.tools.daneel, mb, 3)
    except (OSError, SystemExit, subprocess.SubprocessError) as exc:
        return skipped(title, f"it could not be measured: {str(exc).splitlines()[0]}")
    worst = max((r.server_mib + r.helper_mib) / size for r in results)
    lines = [
        *big_request.table(size, results),
        "",
        f"Peak memory of the server and its helper together: at most {worst:.1f}x the body;"
        f" the longest health answer meanwhile {max(r.stall_s for r in results):.2f} s.",
    ]
    return Section(title, lines, [Target("large request peak memory / body", worst, LARGE_REQUEST_BOUND, False)])


TORCH_NAME = "mlp"
TORCH_LEVELS = (1, 16)
# One row of four features, FP32 [1, 4], to the program's one input; both servers answer output-0, [1, 3].
TORCH_PAYLOAD = b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'


def pytorch(bench: Bench, rows: list[Row]) -> Section:
    title = "PyTorch MLP: daneel's PYTORCH_SERVER vs the raw ASGI baseline, at c1 and c16"
    root = Path(__file__).resolve().parent
    try:
        daneel = prepare.ensure_daneel_torch(root / ".venv-daneel-torch", root.parent)
        model = prepare.export_mlp(daneel.parent / "python", bench.tools.work / "models" / TORCH_NAME)
    except (prepare.SetupError, OSError, subprocess.CalledProcessError) as exc:
        return skipped(title, f"torch could not be set up: {str(exc).splitlines()[0]}")
    specs = _torch_specs(bench, daneel, model)
    loaded = replace(bench, script=write_script(bench.tools.work / "post-mlp.lua", TORCH_PAYLOAD))
    try:
        loads = load_together(loaded, specs, TORCH_LEVELS, TORCH_PAYLOAD)
    except FAILURES as exc:
        return skipped(title, f"a server failed: {str(exc).splitlines()[0]}")
    lines = [
        f"An MLP of random weights (4 -> 64 -> 64 -> 3, FP32) exported with torch.export ({model.name} in"
        f" bench/.work/models/{TORCH_NAME}), one row per request. daneel serves it with PYTORCH_SERVER"
        " (batching on, its default); the baseline (bench/baseline_torch.py) runs the same program on the same"
        " stack with nothing between the socket and the module. MLServer ships no PyTorch runtime of its own:"
        " its MLflow runtime could serve the MLP as a pyfunc model, but that puts MLflow and a second torch into"
        " its virtualenv, so this section compares with the baseline only. Both run from bench/.venv-daneel-torch"
        f" ({prepare.TORCH}, on the CPU) and are loaded in turns as the tables above are.",
        "",
    ]
    for level in TORCH_LEVELS:
        ours, baseline = (by_level[level] for by_level in loads)
        measured = [(spec.label, by_level[level]) for spec, by_level in zip(specs, loads, strict=True)]
        lines += [f"At c{level}:", "", *compare(measured)]
        lines += [f"daneel's req/s is {ours.rps / baseline.rps:.2f}x the baseline's at c{level}.", ""]
    return Section(title, lines)


def _torch_specs(bench: Bench, daneel: Path, model: Path) -> tuple[Spec, Spec]:
    folder, python = model.parent, daneel.parent / "python"
    infer = f"/v2/models/{TORCH_NAME}/infer"
    baseline = Path(__file__).resolve().parent / "baseline_torch.py"

    def ours(port: int) -> list[str]:
        return [str(daneel), "serve", str(folder), "--http-port", str(port), *bench.tools.daneel_options]

    def theirs(port: int) -> list[str]:
        return [str(python), str(baseline), str(model), "--port", str(port), "--name", TORCH_NAME]

    return (
        Spec("daneel-pytorch", "daneel PYTORCH_SERVER", "daneel", ours, bench.tools.work, infer),
        Spec("raw-asgi-torch", "raw ASGI baseline (torch)", "baseline", theirs, bench.tools.work, infer),
    )


def _memory_row(label: str, memory: Memory) -> str:
    each = ", ".join(f"{rss / MIB:.0f}" for rss, _ in memory.workers.values())
    mib = f"{memory.rss_kib / MIB:.0f} | {memory.pss_kib / MIB:.0f}"
    return f"| {label} | {len(memory.processes)} | {mib} | {each} |"


def compare(measured: list[tuple[str, Load]]) -> list[str]:
    lines = ["| server | req/s | p50 ms | p99 ms | server CPU µs/req |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {label} | {m.rps:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | {m.cpu_us:.0f} |" for label, m in measured]
    return [*lines, ""]


def skipped(title: str, reason: str) -> Section:
    prepare.say(f"skipped {title}: {reason}")
    return Section(title, [f"Skipped: {reason}."])
