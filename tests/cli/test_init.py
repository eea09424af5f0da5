"""`daneel init`: each component type scaffolds a project that serves, and passes its own test, unchanged.

The CI files are checked for their shape only: GitHub Actions and GitLab cannot run here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from daneel.cli.init import LANGUAGE_KINDS, registry, scaffold
from daneel.runtime.component import Kind
from daneel.spec.languages import language_of
from daneel.version import runtime_image

EXAMPLES_CI = Path(__file__).resolve().parents[2] / "examples" / "ci"
ROW = {"data": {"ndarray": [[7.0, 2.0]]}}
PREDICT = "/api/v1.0/predictions"
#: What each type answers served alone: the path called, the body sent, the answer's data.ndarray.
ALONE = {
    Kind.MODEL: (PREDICT, ROW, [[9.0]]),
    Kind.TRANSFORMER: (PREDICT, ROW, [[70.0, 20.0]]),
    Kind.OUTPUT_TRANSFORMER: (PREDICT, ROW, [0]),
    Kind.ROUTER: ("/route", ROW, [[1]]),
    Kind.COMBINER: ("/aggregate", {"seldonMessages": [ROW, {"data": {"ndarray": [[1.0, 4.0]]}}]}, [[4.0, 3.0]]),
}
#: What deploy.yaml answers to ROW: a router sends it to its second child (3), a combiner averages both (1, 3).
DEPLOYED = {Kind.ROUTER: [[3.0]], Kind.COMBINER: [[2.0]]}


def _init(daneel_cli: Any, tmp_path: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return daneel_cli("init", name, "--dir", str(tmp_path), *args)


@pytest.mark.parametrize("kind", list(Kind), ids=lambda kind: kind.value)
def test_each_type_serves_and_passes_its_own_test(daneel_cli: Any, serve: Any, tmp_path: Path, kind: Kind) -> None:
    name = f"my_{kind.value.lower()}"
    done = _init(daneel_cli, tmp_path, name, "--type", kind.value)
    assert done.returncode == 0, done.stderr
    project = tmp_path / name
    own_test = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
    )
    assert own_test.returncode == 0, own_test.stdout + own_test.stderr
    path, body, expected = ALONE[kind]
    server = serve(project, "--no-grpc")
    answer = requests.post(server.url + path, json=body, timeout=30)
    assert answer.json()["data"]["ndarray"] == expected, answer.text
    server = serve(project / "deploy.yaml", "--no-grpc")
    answer = requests.post(server.url + PREDICT, json=ROW, timeout=30)
    assert answer.json()["data"]["ndarray"] == DEPLOYED.get(kind, ALONE[kind][2]), answer.text


@pytest.mark.parametrize("kind", list(Kind), ids=lambda kind: kind.value)
def test_the_deployment_validates_and_serves_the_folder(daneel_cli: Any, tmp_path: Path, kind: Kind) -> None:
    done = _init(daneel_cli, tmp_path, "fraud_score", "--type", kind.value)
    assert done.returncode == 0, done.stderr
    project = tmp_path / "fraud_score"
    checked = daneel_cli("validate", str(project / "deploy.yaml"))
    assert checked.returncode == 0, checked.stderr
    deployment = yaml.safe_load((project / "deploy.yaml").read_text())
    assert deployment["metadata"] == {"name": "fraud-score"}
    [predictor] = deployment["spec"]["predictors"]
    graph = predictor["graph"]
    assert (graph["name"], graph["type"], graph["modelUri"]) == ("fraud-score", kind.value, ".")
    assert len(graph.get("children", [])) == (2 if kind in (Kind.ROUTER, Kind.COMBINER) else 0)
    config = yaml.safe_load((project / "daneel.yaml").read_text())
    assert config == {
        "name": "fraud_score",
        "implementation": "FraudScore",
        "type": kind.value,
        "requirements": "requirements.txt",
    }


def test_the_manifests_ci_renders_run_the_image_it_built(daneel_cli: Any, tmp_path: Path) -> None:
    """CI's deploy step, `daneel manifest deploy.yaml --image IMAGE:TAG` in the project folder: the pods run the
    commit's image, and the graph's folder is the image's /app, where `daneel build` put the project."""
    assert _init(daneel_cli, tmp_path, "fraud_score", "--type", "ROUTER").returncode == 0
    project = tmp_path / "fraud_score"
    done = daneel_cli("manifest", "deploy.yaml", "--image", "ghcr.io/acme/fraud-score:0123abc", cwd=project)
    assert done.returncode == 0, done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    pods = [o["spec"]["template"]["spec"] for o in objects if o["kind"] == "Deployment"]
    assert pods
    assert {c["image"] for pod in pods for c in pod["containers"]} == {"ghcr.io/acme/fraud-score:0123abc"}
    served = [yaml.safe_load(text) for o in objects if o["kind"] == "ConfigMap" for text in o.get("data", {}).values()]
    graphs = [p["graph"] for d in served for p in d["spec"]["predictors"] if "modelUri" in p["graph"]]
    assert [[graph["modelUri"]] + [c["modelUri"] for c in graph["children"]] for graph in graphs] == [["/app"] * 3]


def test_ci_files_test_build_push_and_bump_the_gitops_repository(tmp_path: Path) -> None:
    files = scaffold("iris", Kind.MODEL, "ghcr.io/acme/iris")
    github = yaml.safe_load(files[".github/workflows/daneel.yml"])
    jobs = github["jobs"]
    assert list(jobs) == ["test", "image", "deploy"]
    assert (jobs["image"]["needs"], jobs["deploy"]["needs"]) == ("test", "image")
    steps = " ".join(str(step.get("run", "")) for step in jobs["image"]["steps"] + jobs["deploy"]["steps"])
    for command in ("build . -t", "docker build", "docker push", "manifest deploy.yaml --image", "git push"):
        assert command in steps
    assert github["env"]["IMAGE"] == "ghcr.io/acme/iris"
    assert github["env"]["REGISTRY"] == "ghcr.io"
    gitlab = yaml.safe_load(files[".gitlab-ci.yml"])
    assert gitlab["stages"] == ["test", "build", "push", "deploy"]
    assert [gitlab[job]["stage"] for job in ("test", "build", "push", "deploy")] == gitlab["stages"]
    assert gitlab["variables"]["IMAGE"] == "ghcr.io/acme/iris"
    script = " ".join(line for job in ("build", "push", "deploy") for line in gitlab[job]["script"])
    for command in (
        "daneel build . -t",
        "docker build",
        "docker push",
        "daneel manifest deploy.yaml --image",
        "git push",
    ):
        assert command in script


def _schema_check(schema: str, file: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema against the schema GitHub or GitLab publishes, as it vendors them (no network needed)."""
    checker = Path(sys.executable).with_name("check-jsonschema")
    if not checker.exists():
        pytest.skip("check-jsonschema is not installed (pip install 'daneel[dev]')")
    command = [str(checker), "--builtin-schema", f"vendor.{schema}", str(file)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("language", ["python", "nodejs", "java"])
@pytest.mark.parametrize(
    ("path", "schema"), [(".github/workflows/daneel.yml", "github-workflows"), (".gitlab-ci.yml", "gitlab-ci")]
)
def test_ci_files_follow_the_services_schemas(tmp_path: Path, path: str, schema: str, language: Any) -> None:
    file = tmp_path / Path(path).name
    file.write_text(scaffold("iris", Kind.MODEL, "ghcr.io/acme/iris", language)[path])
    done = _schema_check(schema, file)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("name", "schema"), [("github-actions-mlflow.yml", "github-workflows"), ("gitlab-ci-mlflow.yml", "gitlab-ci")]
)
def test_the_mlflow_ci_templates_follow_the_services_schemas(name: str, schema: str) -> None:
    done = _schema_check(schema, EXAMPLES_CI / name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_documented_ci_templates_are_what_init_writes() -> None:
    files = scaffold("my_model", Kind.MODEL, "ghcr.io/my-org/my-model")
    assert (EXAMPLES_CI / "github-actions.yml").read_text() == files[".github/workflows/daneel.yml"]
    assert (EXAMPLES_CI / "gitlab-ci.yml").read_text() == files[".gitlab-ci.yml"]


def test_the_readme_says_what_build_print_prints(daneel_cli: Any, tmp_path: Path) -> None:
    assert _init(daneel_cli, tmp_path, "scorer").returncode == 0
    project = tmp_path / "scorer"
    readme = (project / "README.md").read_text()
    [line] = [line for line in readme.splitlines() if line.startswith("daneel build ")]
    _, build, folder, *options = shlex.split(line.partition("#")[0])
    done = daneel_cli(build, folder, *options, "--print", cwd=project)
    assert done.returncode == 0, done.stderr
    context = Path(folder) / ".daneel-build"
    [printed] = done.stdout.splitlines()
    assert shlex.split(printed)[2:] == ["-t", options[options.index("-t") + 1], str(context)]
    assert (project / context / "Dockerfile").is_file()
    assert "`.daneel-build/`" in readme and re.search(r"prints? the command", readme)
    assert not re.search(r"print\w*\W+(for\s+)?(the\s+)?Dockerfile", readme), "--print prints no Dockerfile"


def test_a_non_empty_folder_is_never_overwritten(daneel_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "iris").mkdir()
    (tmp_path / "iris" / "notes.txt").write_text("mine")
    done = _init(daneel_cli, tmp_path, "iris")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'iris'} already exists and is not empty; choose another NAME or --dir"
    ]
    assert [p.name for p in (tmp_path / "iris").iterdir()] == ["notes.txt"]


def test_an_empty_folder_is_filled(daneel_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "iris").mkdir()
    assert _init(daneel_cli, tmp_path, "iris").returncode == 0
    assert (tmp_path / "iris" / "Iris.py").is_file()


@pytest.mark.parametrize(
    ("name", "reason"), [("2fast", "expected a letter"), ("my-model", "expected a letter"), ("a_b", "AB")]
)
def test_names_that_cannot_name_a_class_are_refused(daneel_cli: Any, tmp_path: Path, name: str, reason: str) -> None:
    done = _init(daneel_cli, tmp_path, name)
    assert done.returncode == 2
    assert reason in done.stderr
    assert not (tmp_path / name).exists()


def test_an_unknown_type_is_refused(daneel_cli: Any, tmp_path: Path) -> None:
    done = _init(daneel_cli, tmp_path, "iris", "--type", "PREDICTOR")
    assert done.returncode == 2
    assert "'PREDICTOR' is not one of" in done.stderr


@pytest.mark.parametrize(
    ("image", "host"),
    [("ghcr.io/acme/iris", "ghcr.io"), ("localhost:5000/iris", "localhost:5000"), ("acme/iris", "docker.io")],
)
def test_the_registry_is_the_image_repositorys_host(image: str, host: str) -> None:
    assert registry(image) == host


#: A stand-in for the io.daneel.Component that daneel's package ships, as the scaffold's class uses it.


def _needs(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        pytest.skip(f"{program} is not installed (.ci/run installs it)")
    return found


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


@pytest.mark.parametrize("kind", LANGUAGE_KINDS["nodejs"], ids=lambda kind: kind.value)
def test_a_nodejs_project_passes_its_own_test_with_node(daneel_cli: Any, tmp_path: Path, kind: Kind) -> None:
    node = _needs("node")
    done = _init(daneel_cli, tmp_path, "scorer", "--language", "nodejs", "--type", kind.value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"next: cd {tmp_path / 'scorer'} && npm test && daneel serve ."
    project = tmp_path / "scorer"
    assert language_of(project) == "nodejs"
    package = json.loads((project / "package.json").read_text())
    assert (package["main"], package["scripts"]["test"]) == ("Scorer.js", "node --test")
    own_test = _run([node, "--test"], project)
    assert own_test.returncode == 0, own_test.stdout + own_test.stderr
    assert re.search(r"^# fail 0$", own_test.stdout, re.MULTILINE), own_test.stdout


def test_the_nodejs_test_fails_when_the_class_answers_wrong(daneel_cli: Any, tmp_path: Path) -> None:
    node = _needs("node")
    assert _init(daneel_cli, tmp_path, "scorer", "--language", "nodejs").returncode == 0
    source = tmp_path / "scorer" / "Scorer.js"
    source.write_text(source.read_text().replace("* this.scale", "* this.scale + 1"))
    own_test = _run([node, "--test"], tmp_path / "scorer")
    assert own_test.returncode != 0
    assert "predict answers each row with its sum" in own_test.stdout


def _java_test(project: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    _needs("javac")
    return _run(["sh", "test.sh"], project, {"PYTHON": sys.executable})  # daneel's own io.daneel.Component


def test_a_java_project_passes_its_own_test_with_javac_and_java(daneel_cli: Any, tmp_path: Path) -> None:
    done = _init(daneel_cli, tmp_path, "scorer", "--language", "java")
    assert done.returncode == 0, done.stderr
    project = tmp_path / "scorer"
    assert language_of(project) == "java"
    assert (project / "test.sh").stat().st_mode & 0o111
    assert "class Scorer implements Component" in (project / "src/main/java/Scorer.java").read_text()
    own_test = _java_test(project, tmp_path)
    assert own_test.returncode == 0, own_test.stdout + own_test.stderr
    assert own_test.stdout.splitlines() == ["ok: ScorerTest"]


def test_the_java_test_fails_when_the_class_answers_wrong(daneel_cli: Any, tmp_path: Path) -> None:
    assert _init(daneel_cli, tmp_path, "scorer", "--language", "java").returncode == 0
    source = tmp_path / "scorer" / "src/main/java/Scorer.java"
    source.write_text(source.read_text().replace("answer[i][0] = sum;", "answer[i][0] = sum + 1;"))
    own_test = _java_test(tmp_path / "scorer", tmp_path)
    assert own_test.returncode != 0
    assert "AssertionError: predict answers each row with its sum" in own_test.stderr


@pytest.mark.parametrize("language", ["nodejs", "java"])
def test_other_languages_test_in_their_runtime_image_and_deploy_the_folder(
    daneel_cli: Any, tmp_path: Path, language: Any
) -> None:
    done = _init(daneel_cli, tmp_path, "scorer", "--language", language)
    assert done.returncode == 0, done.stderr
    project = tmp_path / "scorer"
    github = yaml.safe_load((project / ".github/workflows/daneel.yml").read_text())
    assert github["env"]["DANEEL_IMAGE"] == runtime_image(language) != runtime_image("python")
    assert github["jobs"]["test"]["container"]["image"] == runtime_image(language)
    test_steps = [step["run"] for step in github["jobs"]["test"]["steps"] if "run" in step]
    gitlab = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    expected = {"nodejs": "npm test", "java": "sh test.sh"}[language]
    assert test_steps[-1] == expected == gitlab["test"]["script"][-1]
    assert not (project / "requirements.txt").exists()
    checked = daneel_cli("validate", str(project / "deploy.yaml"))
    assert checked.returncode == 0, checked.stderr
    graph = yaml.safe_load((project / "deploy.yaml").read_text())["spec"]["predictors"][0]["graph"]
    assert (graph["name"], graph["type"], graph["modelUri"]) == ("scorer", "MODEL", ".")


@pytest.mark.parametrize(("language", "kind"), [("java", "TRANSFORMER"), ("nodejs", "ROUTER"), ("nodejs", "COMBINER")])
def test_types_a_language_does_not_scaffold_are_refused(
    daneel_cli: Any, tmp_path: Path, language: str, kind: str
) -> None:
    done = _init(daneel_cli, tmp_path, "scorer", "--language", language, "--type", kind)
    assert done.returncode == 2
    assert f"Invalid value for --type: a {language} component is one of MODEL" in done.stderr
    assert not (tmp_path / "scorer").exists()
