"""`daneel build DIR -t IMAGE`: the Dockerfile and build context it writes, and how it picks an engine.

No container engine runs on this machine (there is no Docker daemon), so no image is built here: the
tests check the context written and the command printed, and stand in for an engine with a shell
script named `docker` that records how it was called.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from conftest import daneel_command
from daneel.cli.build import ENGINES, probe
from daneel.version import RUNTIME_IMAGE

S2I_MODEL = """
class MyModel:
    def predict(self, X, features_names):
        return X * 2
"""


def build(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        daneel_command("build", str(folder), *args),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def instructions(context: Path) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    text = (context / "Dockerfile").read_text().replace("\\\n", " ")
    return [" ".join(line.split()) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def tree(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file and folder under root: content, mode and modification time."""
    return {
        str(path.relative_to(root)): (
            path.read_bytes() if path.is_file() else b"",
            path.stat().st_mode,
            path.stat().st_mtime_ns,
        )
        for path in sorted(root.rglob("*"))
    }


@pytest.fixture
def project(make_model: Callable[..., Path]) -> Path:
    """A Python model with daneel.yaml, a requirements file, and what never belongs in an image."""
    folder = make_model(
        S2I_MODEL.replace("MyModel", "Scorer"),
        name="scorer",
        filename="Scorer.py",
        files={
            "daneel.yaml": "implementation: Scorer\ntype: MODEL\nrequirements: requirements.txt\n",
            "requirements.txt": "numpy\n",
            "helpers/data.csv": "a,b\n",
            "__pycache__/Scorer.cpython-311.pyc": "compiled",
            ".git/HEAD": "ref: refs/heads/main\n",
            ".venv/bin/python": "",
            ".daneel-build/stale.txt": "from an earlier build",
            ".github/workflows/ci.yml": "on: push\n",
            ".gitignore": ".daneel-build/\n",
        },
    )
    (folder / "run.sh").write_text("#!/bin/sh\n")
    (folder / "run.sh").chmod(0o755)
    return folder


def test_print_writes_the_context_and_prints_the_command(project: Path) -> None:
    done = build(project, "-t", "registry.example.com/scorer:1.0", "--engine", "docker", "--print")
    assert done.returncode == 0, done.stderr
    context = project / ".daneel-build"
    assert done.stdout == f"docker build -t registry.example.com/scorer:1.0 {context}\n"
    assert f"wrote the build context of {project} to {context} (7 files)" in done.stderr
    files = sorted(str(p.relative_to(context)) for p in context.rglob("*") if p.is_file())
    assert files == [
        "Dockerfile",
        "app/Scorer.py",
        "app/daneel.yaml",
        "app/helpers/data.csv",
        "app/requirements.txt",
        "app/run.sh",
        "requirements.txt",
    ]
    assert (context / "requirements.txt").read_text() == "numpy\n"
    assert (context / "app" / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (context / "app" / "Scorer.py").stat().st_mode & 0o777 == 0o644


def test_the_dockerfile_installs_requirements_before_the_code_and_runs_as_a_user(project: Path) -> None:
    assert build(project, "-t", "scorer:1", "--print").returncode == 0
    assert instructions(project / ".daneel-build") == [
        f"FROM {RUNTIME_IMAGE}",
        'LABEL dev.daneel.implementation="Scorer" dev.daneel.type="MODEL" dev.daneel.version="0.1.0"'
        f' org.opencontainers.image.base.name="{RUNTIME_IMAGE}" org.opencontainers.image.title="scorer"',
        "USER root",
        "COPY requirements.txt /tmp/daneel-build/requirements.txt",
        "RUN pip install --no-cache-dir --root-user-action=ignore -r /tmp/daneel-build/requirements.txt"
        " && rm -rf /tmp/daneel-build",
        "COPY app/ /app/",
        "WORKDIR /app",
        "USER 1000:1000",
        "EXPOSE 8080 8081",
        'ENTRYPOINT ["daneel"]',
        'CMD ["serve", "/app", "--name", "scorer"]',
    ]


def test_the_same_folder_gives_the_same_context(project: Path) -> None:
    assert build(project, "-t", "scorer:1", "--print").returncode == 0
    first = tree(project / ".daneel-build")
    os.utime(project / "Scorer.py")  # touched, not changed
    assert build(project, "-t", "scorer:1", "--print").returncode == 0
    assert tree(project / ".daneel-build") == first
    assert {mtime for _, _, mtime in first.values()} == {315532800 * 10**9}


def test_source_date_epoch_dates_the_files(project: Path) -> None:
    assert build(project, "-t", "scorer:1", "--print", env={"SOURCE_DATE_EPOCH": "1700000000"}).returncode == 0
    assert {mtime for _, _, mtime in tree(project / ".daneel-build").values()} == {1700000000 * 10**9}


def test_without_requirements_no_layer_installs_them(make_model: Callable[..., Path]) -> None:
    folder = make_model(S2I_MODEL, name="bare", filename="MyModel.py")
    assert build(folder, "-t", "bare:1", "--print").returncode == 0
    steps = instructions(folder / ".daneel-build")
    assert not [step for step in steps if step.startswith(("RUN", "USER root"))]
    assert steps[-1] == 'CMD ["serve", "/app", "--name", "bare"]'


def test_a_seldon_s2i_project_builds_and_serves_unchanged(make_model: Callable[..., Path], serve: Any) -> None:
    environment = "MODEL_NAME=MyModel\nAPI_TYPE=REST\nSERVICE_TYPE=MODEL\nPERSISTENCE=0\n"
    folder = make_model(
        S2I_MODEL,
        name="s2i_project",
        filename="MyModel.py",
        files={".s2i/environment": environment, "requirements.txt": "numpy\n"},
    )
    assert build(folder, "-t", "s2i:1", "--print").returncode == 0
    context = folder / ".daneel-build"
    assert (context / "app" / ".s2i" / "environment").read_text() == environment
    assert (context / "requirements.txt").read_text() == "numpy\n"
    steps = instructions(context)
    assert 'dev.daneel.implementation="MyModel" dev.daneel.type="MODEL"' in steps[1]
    assert steps[-1] == 'CMD ["serve", "/app", "--name", "s2i_project"]'
    server = serve(folder, "--no-grpc")
    answer = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[1, 2]]}}, timeout=30)
    assert answer.json()["data"]["ndarray"] == [[2, 4]]
    assert answer.json()["meta"]["requestPath"] == {"s2i_project": "MyModel"}


def test_a_folder_of_model_folders_is_served_under_their_own_names(tmp_path: Path, iris: Any) -> None:
    shutil.copytree(iris.path, tmp_path / "models" / "iris")
    (tmp_path / "models" / "echo").mkdir()
    (tmp_path / "models" / "echo" / "MyModel.py").write_text(textwrap.dedent(S2I_MODEL))
    assert build(tmp_path / "models", "-t", "models:1", "--print").returncode == 0
    context = tmp_path / "models" / ".daneel-build"
    assert instructions(context)[-1] == 'CMD ["serve", "/app"]'
    assert (context / "app" / "echo" / "MyModel.py").is_file()
    assert (context / "app" / "iris" / "model.joblib").read_bytes() == (iris.path / "model.joblib").read_bytes()


def test_a_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    done = build(tmp_path, "-t", "x:1", "--print")
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {tmp_path}: no model found;")
    assert not (tmp_path / ".daneel-build").exists()


def fake_engine(folder: Path, info_exit: int, build_exit: int = 0) -> dict[str, str]:
    """A `docker` script (alone on PATH) whose `info` exits with `info_exit`; other calls are recorded."""
    folder.mkdir()
    script = folder / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = info ]; then echo "Cannot connect to the Docker daemon" >&2; exit {info_exit}; fi\n'
        f'printf "%s\\n" "$@" > "{folder}/called"\n'
        f"exit {build_exit}\n"
    )
    script.chmod(0o755)
    return {"PATH": str(folder)}


def test_without_a_working_engine_build_fails_saying_why(project: Path, tmp_path: Path) -> None:
    env = fake_engine(tmp_path / "bin", info_exit=1)
    done = build(project, "-t", "scorer:1", env=env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "Error: no working container engine (docker: Cannot connect to the Docker daemon; podman: not installed;"
        " buildah: not installed); run with --print to write the build context and print its build command"
    ]
    assert not (project / ".daneel-build" / "Dockerfile").exists()
    assert not (tmp_path / "bin" / "called").exists()


def test_without_a_working_engine_print_prints_the_command(project: Path, tmp_path: Path) -> None:
    env = fake_engine(tmp_path / "bin", info_exit=1)
    done = build(project, "-t", "scorer:1", "--print", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"docker build -t scorer:1 {project / '.daneel-build'}\n"
    assert not (tmp_path / "bin" / "called").exists()


def test_this_machines_engines_as_they_are(project: Path) -> None:
    """No engine works where daneel is tested, as on many a newcomer's machine: the build fails, saying why."""
    if any(probe(engine) is None for engine in ENGINES):
        pytest.skip("a container engine works here")
    done = build(project, "-t", "scorer:1")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("Error: no working container engine (docker: ")
    assert line.endswith("; run with --print to write the build context and print its build command")


def test_a_working_engine_builds_the_context(project: Path, tmp_path: Path) -> None:
    env = fake_engine(tmp_path / "bin", info_exit=0)
    done = build(project, "-t", "scorer:1", env=env)
    assert done.returncode == 0, done.stderr
    called = (tmp_path / "bin" / "called").read_text().splitlines()
    assert called == ["build", "-t", "scorer:1", str(project / ".daneel-build")]


def test_a_failed_build_fails_with_its_exit_code(project: Path, tmp_path: Path) -> None:
    env = fake_engine(tmp_path / "bin", info_exit=0, build_exit=3)
    done = build(project, "-t", "scorer:1", env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "Error: docker build failed with exit code 3"


def test_an_engine_asked_for_by_name_must_work(project: Path, tmp_path: Path) -> None:
    env = fake_engine(tmp_path / "bin", info_exit=0)
    done = build(project, "-t", "scorer:1", "--engine", "podman", env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: podman: not installed; run with --print to write the build context and print its build command"
    )
