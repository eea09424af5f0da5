"""`make bench`: daneel against MLServer and a raw ASGI baseline, same model, same payload, same run.

Run: .venv/bin/python bench/run.py [--quick] [--duration S] [--concurrency 1,16,64] [--servers a,b]
(or `make bench [QUICK=1] [BENCH_ARGS="..."]`). Every option also reads a BENCH_* variable; see
--help and docs/performance.md. The report goes to stdout and to bench/results/latest.md.

Each server is started alone (cold start is timed then), checked with one request, warmed up and
its memory read; all stay up while wrk loads them in turn at each concurrency, so that a change in
the machine's background load falls on every server alike. Then all stop, and the further cold
starts go in rounds, one start of each server per round, for the same reason. Every server is
stopped at the end, also on an error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TypeVar

import extras
import languages
import lineup
import prepare
import report
import streaming
from load import write_script
from measure import Bench, run_all
from report import Row, Section
from servers import Fleet

T = TypeVar("T")
BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
QUICK = {"duration": 4.0, "warmup": 1.0, "cold_starts": 1}
FULL = {"duration": 20.0, "warmup": 5.0, "cold_starts": 3}
EXTRAS: dict[str, Callable[[Bench, list[Row]], Section]] = {
    "graph": extras.graph,
    "observability": extras.observability,
    "memory": extras.memory,
    "large-request": extras.large_request,
    "languages": languages.languages,
    "streaming": lambda bench, rows: streaming.section(bench.tools.daneel, bench.tools.work, bench.duration),
    "pytorch": extras.pytorch,
}
FULL_ONLY = ("memory", "pytorch")  # extras a quick run leaves out unless --extras names them


def options(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add(
        "--quick",
        action="store_true",
        default=env("BENCH_QUICK", "") not in ("", "0"),
        help="short loads and one cold start, for a run of under 3 minutes (BENCH_QUICK=1)",
    )
    add(
        "--duration",
        type=float,
        default=env("BENCH_DURATION"),
        help=f"seconds of load per server and concurrency (BENCH_DURATION; {_modes('duration')})",
    )
    add(
        "--warmup",
        type=float,
        default=env("BENCH_WARMUP"),
        help=f"seconds of load at c16 before measuring (BENCH_WARMUP; {_modes('warmup')})",
    )
    add(
        "--cold-starts",
        type=int,
        default=env("BENCH_COLD_STARTS"),
        help=f"starts per server; the median is reported (BENCH_COLD_STARTS; {_modes('cold_starts')})",
    )
    add(
        "--concurrency",
        default=env("BENCH_CONCURRENCY", "1,16,64"),
        help="wrk connections, comma-separated (BENCH_CONCURRENCY; default 1,16,64)",
    )
    add(
        "--servers",
        default=env("BENCH_SERVERS", ""),
        help=f"servers to load, comma-separated, from {', '.join(lineup.NAMES)} (BENCH_SERVERS; default all)",
    )
    add(
        "--extras",
        default=env("BENCH_EXTRAS"),
        help=(
            f"optional measurements, from {', '.join(EXTRAS)} (BENCH_EXTRAS; default all, but"
            f" {', '.join(FULL_ONLY)} only in full runs; '' for none)"
        ),
    )
    add(
        "--mlserver-version",
        default=env("BENCH_MLSERVER_VERSION", "1.7.1"),
        help="MLServer release in bench/.venv-mlserver, '' for the newest (BENCH_MLSERVER_VERSION; default 1.7.1)",
    )
    add(
        "--batch-size",
        type=int,
        default=env("BENCH_BATCH_SIZE", "32"),
        help="max_batch_size of MLServer's adaptive batching row (BENCH_BATCH_SIZE; default 32)",
    )
    add(
        "--batch-time",
        type=float,
        default=env("BENCH_BATCH_TIME", "0.002"),
        help="max_batch_time in seconds of that row (BENCH_BATCH_TIME; default 0.002)",
    )
    add(
        "--out",
        type=Path,
        default=env("BENCH_OUT", str(BENCH / "results" / "latest.md")),
        help="where the report is written besides stdout (BENCH_OUT; default bench/results/latest.md)",
    )
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        setattr(args, key, type(value)(getattr(args, key) or value))
    args.levels = _list(args.concurrency, int)
    args.names = _list(args.servers, str) or list(lineup.NAMES)
    if args.extras is None:
        args.extras = ",".join(name for name in EXTRAS if not (args.quick and name in FULL_ONLY))
    args.extra_names = _list(args.extras, str)
    unknown = set(args.names) - set(lineup.NAMES) | set(args.extra_names) - set(EXTRAS)
    if unknown:
        parser.error(f"unknown server or extra: {', '.join(sorted(unknown))}")
    return args


def _modes(key: str) -> str:
    return f"quick {QUICK[key]:g}, full {FULL[key]:g}"


def _list(text: str, kind: Callable[[str], T]) -> list[T]:
    return [kind(item.strip()) for item in text.split(",") if item.strip()]


def main(argv: list[str]) -> int:
    args = options(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    work = BENCH / ".work"
    try:
        wrk = prepare.ensure_wrk()
        mlserver_version = "not run"
        if any(name.startswith("mlserver") for name in args.names):
            mlserver_version = prepare.ensure_mlserver(BENCH / ".venv-mlserver", args.mlserver_version)
        daneel = prepare.ensure_daneel(BENCH / ".venv-daneel", ROOT)
        tools = make_tools(work, args, daneel)
    except (prepare.SetupError, OSError, subprocess.CalledProcessError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    header = [*report.machine(ROOT, mlserver_version, wrk), f"- mode: {describe(args)}"]
    rows, sections = measure_all(args, tools, wrk)
    text = report.render(header, rows, sections, args.levels, args.duration)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    prepare.say(f"wrote {args.out}")
    return 0


def measure_all(args: argparse.Namespace, tools: lineup.Tools, wrk: str) -> tuple[list[Row], list[Section]]:
    """The servers' rows, then the optional sections; every server is stopped on the way out."""
    specs = lineup.lineup(tools)
    script = write_script(tools.work / "post.lua")
    with Fleet(tools.work / "logs") as fleet:
        bench = Bench(fleet, tools, wrk, script, args.warmup, args.duration, tuple(args.levels), args.cold_starts)
        rows = run_all(bench, [specs[name] for name in lineup.NAMES if name in args.names])
        return rows, [EXTRAS[name](bench, rows) for name in args.extra_names]


def make_tools(work: Path, args: argparse.Namespace, daneel: Path) -> lineup.Tools:
    return lineup.Tools(
        python=daneel.parent / "python",
        daneel=daneel,
        mlserver=BENCH / ".venv-mlserver" / "bin" / "mlserver",
        baseline=BENCH / "baseline.py",
        work=work,
        model=prepare.train_model(work / "models" / lineup.MODEL_NAME),
        batch_size=args.batch_size,
        batch_time=args.batch_time,
        daneel_options=lineup.daneel_options(daneel),
    )


def describe(args: argparse.Namespace) -> str:
    mode = "quick" if args.quick else "full"
    return (
        f"{mode}; {args.duration:g} s of load per server and concurrency after {args.warmup:g} s of warm-up;"
        f" cold start median of {args.cold_starts}"
    )


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds through the Fleet's `with`, which stops every server.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("bench: interrupted; every server it started is stopped", file=sys.stderr)
        sys.exit(130)
