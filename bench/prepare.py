"""What a benchmark run needs before any server starts: wrk, the servers' virtualenvs, the model, the graph.

Each server runs from a virtualenv of its own holding what a user installs for it: MLServer with its
sklearn runtime in bench/.venv-mlserver, daneel with its sklearn extra (editable, so the working
tree is what runs) in bench/.venv-daneel; the raw ASGI baseline runs in daneel's. The project's
development virtualenv holds far more (MLflow, pandas, pyarrow, ...), which scikit-learn would import
at start, inflating start-up time and memory. Everything lands under bench/ (gitignored) and is
reused by the next run; a virtualenv is rebuilt when the requirements it was built with change.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

# MLServer 1.7.1's workers die at start with uvloop 0.22 and later.
MLSERVER_EXTRAS = ("uvloop<0.22",)

TRAIN = """
import sys
import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), sys.argv[1])
"""

# About 191 MB of float64 weights (4 -> 5000 -> 5000 -> 3), every one of them read by each prediction. One
# lbfgs iteration is enough: only the size matters. scikit-learn also keeps a copy of the initial weights
# (_best_coefs), used while fitting with early stopping only; dropping it leaves the weights once in the file.
TRAIN_LARGE = """
import sys
import warnings
import joblib
from sklearn.datasets import load_iris
from sklearn.neural_network import MLPClassifier

X, y = load_iris(return_X_y=True)
warnings.simplefilter("ignore")
model = MLPClassifier(hidden_layer_sizes=(5000, 5000), solver="lbfgs", max_iter=1, random_state=0).fit(X, y)
del model._best_coefs, model._best_intercepts
joblib.dump(model, sys.argv[1])
"""

PASS_THROUGH = '''
class PassThrough:
    """A transformer that hands its input on unchanged: the cost of a graph node and nothing else."""

    def transform_input(self, X, names, meta=None):
        return X
'''

DEPLOYMENT = """
apiVersion: daneel.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: {name}
spec:
  predictors:
  - name: default
    graph:
      name: first
      type: TRANSFORMER
      implementation: passthrough:PassThrough
      children:
      - name: second
        type: TRANSFORMER
        implementation: passthrough:PassThrough
        children:
        - name: iris
          type: MODEL
          implementation: SKLEARN_SERVER
          modelUri: {model}
"""


# A multilayer perceptron of random weights (4 -> 64 -> 64 -> 3) exported with a dynamic batch dimension:
# the PyTorch row's model, for daneel's PYTORCH_SERVER and the torch baseline alike. Nothing is trained.
EXPORT_MLP = """
import sys
import torch

torch.manual_seed(0)
mlp = torch.nn.Sequential(
    torch.nn.Linear(4, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3)
).eval()
program = torch.export.export(mlp, (torch.zeros(2, 4),), dynamic_shapes=({0: torch.export.Dim("batch")},))
torch.export.save(program, sys.argv[1])
"""

#: The torch the PyTorch row installs: the CPU build this kind of machine keeps on disk, as `make test` does.
TORCH = os.environ.get("TORCH", "torch==2.13.0")


class SetupError(Exception):
    """Something the benchmark needs is missing and cannot be installed from here."""


def ensure_wrk() -> str:
    """The path of wrk, installed from Debian's packages when missing and this process may."""
    found = shutil.which("wrk")
    if found:
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        raise SetupError("wrk is not installed; install it (Debian/Ubuntu: sudo apt-get install -y wrk) and rerun")
    say("installing wrk with apt-get")
    if _quiet(["apt-get", "install", "-y", "wrk"]) != 0:
        _quiet(["apt-get", "update"])
        if _quiet(["apt-get", "install", "-y", "wrk"]) != 0:
            raise SetupError("apt-get install -y wrk failed; install wrk by hand and rerun")
    return shutil.which("wrk") or "wrk"


def ensure_mlserver(venv: Path, version: str) -> str:
    """MLServer's own virtualenv at venv with the sklearn runtime; returns the MLServer version inside."""
    ensure_venv(venv, mlserver_requirements(version))
    return _version_in(venv, "mlserver")


def ensure_daneel(venv: Path, root: Path) -> Path:
    """daneel's own virtualenv at venv: the working tree installed editable with the sklearn extra; its daneel."""
    ours = importlib.metadata.version("scikit-learn")
    ensure_venv(venv, ["-e", f"{root}[sklearn]", f"scikit-learn=={ours}"])
    return venv / "bin" / "daneel"


def ensure_daneel_torch(venv: Path, root: Path) -> Path:
    """daneel with its pytorch extra in a virtualenv of its own (torch pinned as TORCH says); its daneel."""
    ensure_venv(venv, [TORCH, "-e", f"{root}[pytorch]"])
    return venv / "bin" / "daneel"


def export_mlp(python: Path, folder: Path) -> Path:
    """The MLP exported as folder/model.pt2 by `python` (which has torch), once; kept for later runs."""
    model = folder / "model.pt2"
    if not model.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(python), "-c", EXPORT_MLP, str(model)], check=True)
    return model


def ensure_venv(venv: Path, wanted: list[str]) -> None:
    """A virtualenv at venv holding `wanted` (pip arguments), made again only when they change."""
    marker = venv / "bench-requirements.txt"
    if marker.exists() and marker.read_text().splitlines() == wanted:
        return
    say(f"creating {venv} with {' '.join(wanted)}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if _quiet([*pip, *wanted]) != 0:
        raise SetupError(f"pip could not install {' '.join(wanted)} into {venv}; see the lines above")
    marker.write_text("\n".join(wanted) + "\n")


def mlserver_requirements(version: str) -> list[str]:
    """MLServer pinned, and the scikit-learn of this interpreter so that both servers load the same pickle."""
    pin = f"=={version}" if version else ""
    ours = importlib.metadata.version("scikit-learn")
    return [f"mlserver{pin}", f"mlserver-sklearn{pin}", *MLSERVER_EXTRAS, f"scikit-learn=={ours}"]


def train_model(folder: Path) -> Path:
    """The iris LogisticRegression in folder/model.joblib, trained once and kept for later runs."""
    model = folder / "model.joblib"
    if not model.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-c", TRAIN, str(model)], check=True)
    return model


def train_large_model(folder: Path) -> Path:
    """An MLP of about 200 MB on iris' four features in folder/model.joblib (uncompressed), kept for later runs."""
    model = folder / "model.joblib"
    if not model.exists():
        say(f"training a model of about 200 MB into {folder} (once)")
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / "model.joblib.partial"
        subprocess.run([sys.executable, "-c", TRAIN_LARGE, str(partial)], check=True)
        partial.rename(model)
    return model


def write_graph(folder: Path, model_folder: Path, name: str) -> Path:
    """A deployment of two pass-through transformers in front of the iris model, all in one process."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "passthrough.py").write_text(textwrap.dedent(PASS_THROUGH).lstrip())
    path = folder / "deploy.yaml"
    path.write_text(DEPLOYMENT.format(name=name, model=model_folder.resolve()).lstrip())
    return path


def _version_in(venv: Path, package: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    done = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _quiet(command: list[str]) -> int:
    """Runs command, showing its output only when it fails."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
    return done.returncode


def say(line: str) -> None:
    print(f"bench: {line}", file=sys.stderr, flush=True)
