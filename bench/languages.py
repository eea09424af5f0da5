"""The `languages` extra: the same arithmetic as a Python class, a Node.js class and a Java class.

Each answers `X * 2 + 1` for a 1x3 FP64 tensor, served by `daneel serve FOLDER`; the Node.js and Java
ones run in the child process daneel supervises, so the difference in p50 is the cost of that hop
(the frames over the Unix socket and the child's own work). Measured at c1 and c16, the three up side
by side and loaded in turns as the main tables are.
"""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import replace

import prepare
from load import Load, write_script
from measure import FAILURES, Bench, load_together
from report import Row, Section, Target
from servers import Spec

LEVELS = (1, 16)
#: The most the hop to a child process may add to the p50, over the Python class, in ms.
GOAL_MS = 0.15
PAYLOAD = b'{"inputs":[{"name":"input-0","shape":[1,3],"datatype":"FP64","data":[0.1,0.2,0.3]}]}'

PYTHON = """
class Arith:
    def predict(self, X, names):
        return X * 2 + 1
"""

NODE = """
class Arith {
  predict(X, names) {
    return X.map((row) => row.map((v) => v * 2 + 1));
  }
}
module.exports = Arith;
"""

JAVA = """
import io.daneel.Component;

public class Arith implements Component {
    @Override
    public double[][] predict(double[][] X, String[] names) {
        double[][] out = new double[X.length][];
        for (int r = 0; r < X.length; r++) {
            out[r] = new double[X[r].length];
            for (int c = 0; c < X[r].length; c++) out[r][c] = X[r][c] * 2 + 1;
        }
        return out;
    }
}
"""

#: Folder name, file, source and the program the language needs, by label.
MODELS = {
    "Python class": ("arith-python", "model.py", PYTHON, ""),
    "Node.js class": ("arith-nodejs", "MyModel.js", NODE, "node"),
    "Java class": ("arith-java", "Arith.java", JAVA, "javac"),
}


def languages(bench: Bench, rows: list[Row]) -> Section:
    title = "A Python, a Node.js and a Java class doing the same arithmetic"
    missing = [program for *_, program in MODELS.values() if program and shutil.which(program) is None]
    if missing:
        return _skipped(title, f"{' and '.join(missing)} not installed")
    specs = [_spec(bench, label, *model[:3]) for label, model in MODELS.items()]
    try:
        loads = _measured(replace(bench, script=write_script(bench.tools.work / "arith.lua", PAYLOAD)), specs)
    except FAILURES as exc:
        return _skipped(title, f"a server failed: {str(exc).splitlines()[0]}")
    return _section(title, loads)


def _spec(bench: Bench, label: str, folder: str, file: str, source: str) -> Spec:
    path = bench.tools.work / "languages" / folder
    path.mkdir(parents=True, exist_ok=True)
    (path / file).write_text(textwrap.dedent(source).lstrip())

    def launch(port: int) -> list[str]:
        return [str(bench.tools.daneel), "serve", str(path), "--http-port", str(port), *bench.tools.daneel_options]

    return Spec(folder, label, "daneel", launch, bench.tools.work, f"/v2/models/{folder}/infer")


def _measured(bench: Bench, specs: list[Spec]) -> dict[str, dict[int, Load]]:
    loads = load_together(bench, specs, LEVELS, PAYLOAD)
    return {spec.label: by_level for spec, by_level in zip(specs, loads, strict=True)}


def _section(title: str, loads: dict[str, dict[int, Load]]) -> Section:
    lines = [
        "`X * 2 + 1` for one 1x3 FP64 tensor over V2 REST, each class served by `daneel serve FOLDER`"
        " (folders in bench/.work/languages). The Node.js and Java classes run in a child process that daneel"
        " supervises and calls over a Unix socket. Server CPU counts daneel and its child together: at c16, where"
        " the cores are busy, the child's CPU per request is what the hop adds to the p50.",
        "",
        "| class | concurrency | req/s | p50 ms | p99 ms | p50 over the Python class, ms | server CPU µs/req |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    python = loads["Python class"]
    targets = []
    for level in LEVELS:
        for label, by_level in loads.items():
            load, extra = by_level[level], by_level[level].p50_ms - python[level].p50_ms
            numbers = f"{load.rps:,.0f} | {load.p50_ms:.3f} | {load.p99_ms:.3f} | {extra:+.3f} | {load.cpu_us:.0f}"
            lines.append(f"| {label} | {level} | {numbers} |")
            if label != "Python class":
                what = f"{label} p50 over the Python class at c{level}"
                targets.append(Target(what, extra, GOAL_MS, False, unit=" ms"))
    return Section(title, [*lines, ""], targets)


def _skipped(title: str, reason: str) -> Section:
    prepare.say(f"skipped {title}: {reason}")
    return Section(title, [f"Skipped: {reason}."])
