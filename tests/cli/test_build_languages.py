"""`daneel build` of Node.js and Java components: the image's runtime, npm's and javac's steps, the files.

No container engine runs here, so the Dockerfile's build steps are run as its RUN lines say, with real
npm and javac, in a copy of the context's app/ that stands in for the image's /app.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from tests.cli.test_build import build, instructions

from daneel.runtime.languages import java
from daneel.version import runtime_image

NODE_MODEL = """class MyModel {
  predict(X, names) {
    return X.map((row) => row.map((value) => value * 2));
  }
}
module.exports = MyModel;
"""
PYTHON_TRANSFORMER = """class Scale:
    def transform_input(self, X, features_names):
        return X * 10
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def run_build_steps(context: Path, tmp_path: Path, daneel_java: Path | None = None) -> Path:
    """What the image's build does after `COPY app/ /app/`: the RUN lines, in a copy of app/ standing for /app.

    `python` answers with `daneel_java` as the folder of daneel's Java sources, as the image's Python would.
    """
    app = tmp_path / "image-app"
    shutil.copytree(context / "app", app)
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "python").write_text(f"#!/bin/sh\necho {daneel_java or '/nowhere'}\n")
    (shim / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "npm_config_cache": str(tmp_path / "npm-cache")}
    for step in instructions(context):
        if step.startswith("RUN ") and "pip install" not in step:
            command = step.removeprefix("RUN ").replace("/app", str(app))
            done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=300, env=env)
            assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
    return app


def _needs(*programs: str) -> None:
    for program in programs:
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed (.ci/run installs it)")


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A Node.js package on disk, so npm installs it without a registry."""
    return write(
        tmp_path / "doubler",
        {
            "package.json": json.dumps({"name": "doubler", "version": "1.0.0", "main": "index.js"}),
            "index.js": "module.exports = (x) => 2 * x;\n",
        },
    )


def node_project(tmp_path: Path, library: Path, lock: bool = False) -> Path:
    package = {"name": "scorer", "main": "MyModel.js", "dependencies": {"doubler": f"file:{library}"}}
    files = {"MyModel.js": NODE_MODEL, "package.json": json.dumps(package), "node_modules/stale/index.js": ""}
    folder = write(tmp_path / "scorer", files)
    if lock:
        _needs("npm")
        done = subprocess.run(
            ["npm", "install", "--package-lock-only", "--no-audit", "--no-fund"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "npm_config_cache": str(tmp_path / "npm-cache")},
        )
        assert done.returncode == 0, done.stderr
    return folder


def test_a_nodejs_component_installs_its_dependencies_before_its_code(tmp_path: Path, library: Path) -> None:
    folder = node_project(tmp_path, library)
    done = build(folder, "-t", "scorer:1", "--print")
    assert done.returncode == 0, done.stderr
    context = folder / ".daneel-build"
    assert instructions(context) == [
        f"FROM {runtime_image('nodejs')}",
        'LABEL dev.daneel.implementation="MyModel.js" dev.daneel.language="nodejs" dev.daneel.version="0.1.0"'
        f' org.opencontainers.image.base.name="{runtime_image("nodejs")}" org.opencontainers.image.title="scorer"',
        "USER root",
        "COPY app/package.json /app/",
        "RUN cd /app && npm install --omit=dev --no-audit --no-fund && npm cache clean --force",
        "COPY app/ /app/",
        "WORKDIR /app",
        "USER 1000:1000",
        "EXPOSE 8080 8081",
        'ENTRYPOINT ["daneel"]',
        'CMD ["serve", "/app", "--name", "scorer"]',
    ]
    assert sorted(str(p.relative_to(context)) for p in context.rglob("*") if p.is_file()) == [
        "Dockerfile",
        "app/MyModel.js",
        "app/package.json",
    ]
    _needs("npm", "node")
    app = run_build_steps(context, tmp_path)
    script = "console.log(require('doubler')(21))"
    used = subprocess.run(["node", "-e", script], cwd=app, capture_output=True, text=True, timeout=60)
    assert used.stdout == "42\n", used.stderr


def test_a_lock_file_is_installed_with_npm_ci(tmp_path: Path, library: Path) -> None:
    folder = node_project(tmp_path, library, lock=True)
    assert build(folder, "-t", "scorer:1", "--print").returncode == 0
    steps = instructions(folder / ".daneel-build")
    assert "COPY app/package.json app/package-lock.json /app/" in steps
    assert "RUN cd /app && npm ci --omit=dev --no-audit --no-fund && npm cache clean --force" in steps
    app = run_build_steps(folder / ".daneel-build", tmp_path)
    assert (app / "node_modules" / "doubler" / "index.js").is_file()


def test_a_component_without_dependencies_has_no_install_step(daneel_cli: Any, tmp_path: Path) -> None:
    assert daneel_cli("init", "scorer", "--language", "nodejs", "--dir", str(tmp_path)).returncode == 0
    assert build(tmp_path / "scorer", "-t", "scorer:1", "--print").returncode == 0
    steps = instructions(tmp_path / "scorer" / ".daneel-build")
    assert steps[0] == f"FROM {runtime_image('nodejs')}"
    assert 'dev.daneel.implementation="Scorer.js" dev.daneel.language="nodejs" dev.daneel.type="MODEL"' in steps[1]
    assert not [step for step in steps if step.startswith(("RUN", "USER root"))]


def test_a_seldon_nodejs_s2i_project_builds_unchanged(tmp_path: Path, library: Path) -> None:
    environment = "MODEL_NAME=MyModel\nAPI_TYPE=REST\nSERVICE_TYPE=MODEL\nPERSISTENCE=0\n"
    package = {"name": "my-model", "version": "0.0.1", "dependencies": {"doubler": f"file:{library}"}}
    files = {"MyModel.js": NODE_MODEL, "package.json": json.dumps(package), ".s2i/environment": environment}
    folder = write(tmp_path / "s2i_node", files)
    done = build(folder, "-t", "s2i-node:1", "--print")
    assert done.returncode == 0, done.stderr
    context = folder / ".daneel-build"
    assert (context / "app" / ".s2i" / "environment").read_text() == environment
    steps = instructions(context)
    assert steps[0] == f"FROM {runtime_image('nodejs')}"
    assert 'dev.daneel.implementation="MyModel" dev.daneel.language="nodejs" dev.daneel.type="MODEL"' in steps[1]
    assert "RUN cd /app && npm install --omit=dev --no-audit --no-fund && npm cache clean --force" in steps
    assert steps[-1] == 'CMD ["serve", "/app", "--name", "s2i_node"]'


def test_a_java_component_is_compiled_into_a_jar(daneel_cli: Any, tmp_path: Path) -> None:
    assert daneel_cli("init", "scorer", "--language", "java", "--dir", str(tmp_path)).returncode == 0
    folder = tmp_path / "scorer"
    assert build(folder, "-t", "scorer:1", "--print").returncode == 0
    context = folder / ".daneel-build"
    steps = instructions(context)
    assert steps[0] == f"FROM {runtime_image('java')}"
    assert 'dev.daneel.implementation="Scorer" dev.daneel.language="java" dev.daneel.type="MODEL"' in steps[1]
    assert steps[2:4] == ["USER root", "COPY app/ /app/"]
    assert steps[4].startswith("RUN cd /app && javac ")
    assert steps[-1] == 'CMD ["serve", "/app", "--name", "scorer"]'
    _needs("javac", "jar")
    app = run_build_steps(context, tmp_path / "run", java.SOURCES)  # daneel's own io.daneel.Component
    with zipfile.ZipFile(app / "scorer.jar") as jar:
        classes = sorted(name for name in jar.namelist() if name.endswith(".class"))
    assert classes == ["Scorer.class"]  # neither the test nor daneel's interface, which daneel's package holds


def test_a_folder_of_folders_builds_on_its_other_languages_runtime(tmp_path: Path, library: Path) -> None:
    root = tmp_path / "graph"
    node_project(root, library)
    write(root / "scale", {"Scale.py": PYTHON_TRANSFORMER, "daneel.yaml": "type: TRANSFORMER\n"})
    write(root, {"deploy.yaml": "# the graph\n"})
    done = build(root, "-t", "graph:1", "--print")
    assert done.returncode == 0, done.stderr
    steps = instructions(root / ".daneel-build")
    assert steps[0] == f"FROM {runtime_image('nodejs')}"
    assert "COPY app/scorer/package.json /app/scorer/" in steps
    assert "RUN cd /app/scorer && npm install --omit=dev --no-audit --no-fund && npm cache clean --force" in steps
    assert steps[-1] == 'CMD ["serve", "/app"]'
    assert (root / ".daneel-build" / "app" / "scale" / "Scale.py").is_file()


def test_a_folder_of_folders_in_two_other_languages_is_refused(tmp_path: Path, library: Path) -> None:
    root = tmp_path / "graph"
    node_project(root, library)
    write(root / "ranker", {"Ranker.java": "public class Ranker {}\n"})
    done = build(root, "-t", "graph:1", "--print")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"Error: {root}: expected components in one language besides Python (an image has one runtime);"
        " got ranker (java), scorer (nodejs)"
    )
