"""Optional measurements, each a function that returns its report section or says why it was skipped.

- graph: a 3-node in-process graph (two pass-through transformers in front of the model) against
  the single model, at concurrency 1. Needs `daneel serve deploy.yaml`.
- observability: daneel with metrics and request logging on against both off, at concurrency 16.
  Needs switches for both in `daneel serve` (looked for by name below).
"""

from __future__ import annotations

import lineup
import prepare
from load import Load
from measure import FAILURES, Bench, load_one
from report import Row, Section

# Switches the observability slot looks for in `daneel serve --help`; it is skipped while they are absent.
METRICS_OFF = "--no-metrics"
REQUEST_LOG = "--request-log"


def graph(bench: Bench, rows: list[Row]) -> Section:
    title = "3-node graph vs single model at c1"
    if not lineup.daneel_help(bench.tools.daneel, "validate"):
        return skipped(title, "this daneel has no `daneel validate`, so it serves no deployment files yet")
    single = next((r.loads[1] for r in rows if r.name == "daneel" and 1 in r.loads), None)
    if single is None:
        return skipped(title, "the single-model row (daneel at c1) was not measured in this run")
    deployment = prepare.write_graph(bench.tools.work / "graph", bench.tools.model.parent, lineup.GRAPH_NAME)
    try:
        chained = load_one(bench, lineup.graph_spec(bench.tools, deployment), 1)
    except FAILURES as exc:
        return skipped(title, f"daneel could not serve {deployment}: {str(exc).splitlines()[0]}")
    lines = [
        "Two pass-through Python transformers in front of the iris model, in one process"
        f" ({deployment.name} in bench/.work/graph), against the daneel row above.",
        "",
        *compare([("daneel, single model", single), ("daneel, 3-node graph", chained)]),
        f"The graph's p50 is {chained.p50_ms / single.p50_ms:.2f}x the single model's;"
        f" its req/s {chained.rps / single.rps:.2f}x.",
    ]
    return Section(title, lines)


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
        measured = [(spec.label, load_one(bench, spec, 16)) for spec in (off, on)]
    except FAILURES as exc:
        return skipped(title, f"daneel failed with the switches on: {str(exc).splitlines()[0]}")
    ratio = measured[1][1].rps / measured[0][1].rps
    return Section(title, [*compare(measured), f"With both on, daneel keeps {ratio:.2f}x of its req/s."])


def compare(measured: list[tuple[str, Load]]) -> list[str]:
    lines = ["| server | req/s | p50 ms | p99 ms | server CPU µs/req |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {label} | {m.rps:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | {m.cpu_us:.0f} |" for label, m in measured]
    return [*lines, ""]


def skipped(title: str, reason: str) -> Section:
    prepare.say(f"skipped {title}: {reason}")
    return Section(title, [f"Skipped: {reason}."])
