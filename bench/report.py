"""The run's results as Markdown: the machine, one table per concurrency, start-up and memory, targets."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from load import Load

MIB = 1024


@dataclass
class Row:
    """Everything measured for one server; error says why a server has no numbers."""

    name: str
    label: str
    kind: str
    loads: dict[int, Load] = field(default_factory=dict)
    cold_starts: list[float] = field(default_factory=list)
    rss_kib: int = 0
    pss_kib: int = 0
    error: str = ""

    @property
    def cold_start(self) -> float:
        return statistics.median(self.cold_starts) if self.cold_starts else float("nan")


@dataclass
class Section:
    """A titled part of the report added by an optional measurement, or the reason it was skipped.

    Its targets join the targets table.
    """

    title: str
    lines: list[str]
    targets: list[Target] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    what: str
    value: float
    goal: float
    higher_is_better: bool
    note: str = ""
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.value >= self.goal if self.higher_is_better else self.value <= self.goal


def machine(root: Path, mlserver_version: str, wrk: str) -> list[str]:
    """Lines describing where and when the numbers were taken."""
    return [
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores; RAM {_mem_total_gib():.1f} GiB",
        f"- OS: {platform.system()} {platform.release()}; Python {platform.python_version()}",
        f"- daneel commit {_git(root, 'rev-parse', '--short', 'HEAD')}{_dirty(root)}; MLServer {mlserver_version}",
        f"- {_first_line([wrk, '-v'])}",
        f"- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average at start {_loadavg()}",
    ]


def load_table(rows: list[Row], concurrency: int, seconds: float) -> list[str]:
    measured = [r for r in rows if concurrency in r.loads]
    best = _best_mlserver(measured, concurrency)
    raw = next((r.loads[concurrency] for r in measured if r.kind == "baseline"), None)
    lines = [
        f"### Concurrency {concurrency} (wrk -t1 -c{concurrency}, {seconds:g} s)",
        "",
        "| server | req/s | p50 ms | p99 ms | server CPU µs/req | req/s vs MLServer best | req/s vs raw ASGI |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in measured:
        load = row.loads[concurrency]
        failed = f" ({load.failed} failed)" if load.failed else ""
        lines.append(
            f"| {row.label} | {load.rps:,.0f}{failed} | {load.p50_ms:.2f} | {load.p99_ms:.2f} | {load.cpu_us:.0f}"
            f" | {_ratio(load.rps, best.loads[concurrency].rps if best else None)}"
            f" | {_ratio(load.rps, raw.rps if raw else None)} |"
        )
    return [*lines, ""]


def startup_table(rows: list[Row]) -> list[str]:
    started = [r for r in rows if r.cold_starts]
    runs = max((len(r.cold_starts) for r in started), default=0)
    lines = [
        "### Cold start and memory",
        "",
        f"Cold start: command to the first 200 on /v2/health/ready, median of {runs}. Memory: after warm-up,"
        " summed over the server's process tree (RSS counts pages shared between workers once per process; PSS"
        " splits them).",
        "",
        "| server | cold start s | RSS MiB | PSS MiB |",
        "|---|---:|---:|---:|",
    ]
    for row in started:
        lines.append(f"| {row.label} | {row.cold_start:.2f} | {row.rss_kib / MIB:.0f} | {row.pss_kib / MIB:.0f} |")
    return [*lines, ""]


def failures(rows: list[Row]) -> list[str]:
    failed = [r for r in rows if r.error]
    return ["### Servers that failed", "", *[f"- {r.label}: {r.error}" for r in failed], ""] if failed else []


def targets(rows: list[Row]) -> list[Target]:
    """The issue's targets for the single-process daneel row, each where both of its sides were measured."""
    by_name = {r.name: r for r in rows if not r.error}
    daneel, raw = by_name.get("daneel"), by_name.get("raw-asgi")
    if daneel is None:
        return []
    mlservers = [r for r in by_name.values() if r.kind == "mlserver"]
    best = _best_mlserver(mlservers, 64)
    quickest = min(mlservers, key=lambda r: r.cold_start, default=None)
    smallest = min(mlservers, key=lambda r: r.rss_kib, default=None)
    default = by_name.get("mlserver-workers")
    candidates = [
        ("daneel / MLServer best, req/s at c64", 5.0, True, _rps(daneel, best, 64), best),
        (
            "daneel / MLServer in-process, req/s at c16",
            4.0,
            True,
            _rps(daneel, by_name.get("mlserver-inproc"), 16),
            None,
        ),
        ("daneel / raw ASGI, req/s at c16", 0.8, True, _rps(daneel, raw, 16), None),
        ("daneel p50 / raw ASGI p50 at c1", 1.2, False, _p50(daneel, raw, 1), None),
        ("daneel / quickest MLServer, cold start", 0.5, False, _cold(daneel, quickest), quickest),
        ("daneel / MLServer default, cold start", 0.5, False, _cold(daneel, default), None),
        ("daneel / smallest MLServer, RSS", 0.6, False, _rss(daneel, smallest), smallest),
        ("daneel / MLServer default, RSS", 0.6, False, _rss(daneel, default), None),
    ]
    return [
        Target(what, value, goal, higher, f"{other.label}" if other else "")
        for what, goal, higher, value, other in candidates
        if value is not None
    ]


def target_table(found: list[Target]) -> list[str]:
    lines = ["### Targets", "", "| measure | value | target | result |", "|---|---:|---:|---|"]
    for t in found:
        goal = f"{'≥' if t.higher_is_better else '≤'} {t.goal:g}{t.unit}"
        note = f" (against {t.note})" if t.note else ""
        lines.append(f"| {t.what}{note} | {t.value:.2f}{t.unit} | {goal} | {'PASS' if t.met else 'MISS'} |")
    return [*lines, ""]


def _rps(a: Row, b: Row | None, c: int) -> float | None:
    return _over(a.loads[c].rps, b.loads[c].rps) if b and c in a.loads and c in b.loads else None


def _p50(a: Row, b: Row | None, c: int) -> float | None:
    return _over(a.loads[c].p50_ms, b.loads[c].p50_ms) if b and c in a.loads and c in b.loads else None


def _cold(a: Row, b: Row | None) -> float | None:
    return _over(a.cold_start, b.cold_start) if b else None


def _rss(a: Row, b: Row | None) -> float | None:
    return _over(a.rss_kib, b.rss_kib) if b else None


def _over(value: float, other: float) -> float | None:
    """value / other where both were measured (a NaN or zero means not measured)."""
    return value / other if value > 0 and other > 0 else None


def _best_mlserver(rows: list[Row], c: int) -> Row | None:
    candidates = [r for r in rows if r.kind == "mlserver" and c in r.loads]
    return max(candidates, key=lambda r: r.loads[c].rps, default=None)


def _ratio(value: float, other: float | None) -> str:
    return f"{value / other:.2f}x" if other else "-"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _mem_total_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / MIB / MIB
    return 0.0


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def _dirty(root: Path) -> str:
    changed = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
    return " with uncommitted changes" if changed.strip() else ""


def _first_line(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else command[0]


def render(header: list[str], rows: list[Row], sections: list[Section], levels: list[int], seconds: float) -> str:
    lines = ["# daneel benchmark", "", *header, "", "## Results", ""]
    for level in levels:
        lines += load_table(rows, level, seconds)
    found = targets(rows) + [target for section in sections for target in section.targets]
    lines += startup_table(rows) + target_table(found) + failures(rows)
    for section in sections:
        lines += [f"### {section.title}", "", *section.lines, ""]
    return "\n".join(lines)
