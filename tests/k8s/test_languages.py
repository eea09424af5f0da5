"""Nodes in Node.js or Java on Kubernetes: the predictor's pod runs daneel's runtime image for their language.

`daneel manifest` reads a local folder's language; the operator, which reads no files, goes by
NODEJS_SERVER and JAVA_SERVER.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.k8s.fakes import FakeCluster
from tests.k8s.test_manifests import by_kind, served_file
from tests.k8s.test_reconcile import resource, run

from daneel.errors import InvalidInput
from daneel.k8s.manifests import Options, render
from daneel.k8s.reconcile import reconcile
from daneel.spec import load
from daneel.version import RUNTIME_IMAGE, runtime_image

GRAPH = """
apiVersion: daneel.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: scoring
spec:
  predictors:
  - name: main
    graph:
      name: scale
      type: TRANSFORMER
      modelUri: scale
      children:
      - name: scorer
        modelUri: scorer
"""


def project(tmp_path: Path, scorer: dict[str, str], graph: str = GRAPH) -> Path:
    """A project folder: a Python transformer, the `scorer` folder's files, and deploy.yaml."""
    files = {"scale/Scale.py": "class Scale:\n    def transform_input(self, X, names):\n        return X\n"}
    files |= {f"scorer/{name}": text for name, text in scorer.items()} | {"deploy.yaml": graph}
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    return tmp_path / "deploy.yaml"


NODEJS = {"package.json": json.dumps({"main": "MyModel.js"}), "MyModel.js": "module.exports = class {};\n"}
JAVA = {"src/main/java/Scorer.java": "public class Scorer {}\n"}


def images(objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each Deployment's containers' and init containers' images."""
    out = {}
    for name, deployment in by_kind(objects, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        out[name] = [c["image"] for c in pod.get("initContainers", []) + pod["containers"]]
    return out


@pytest.mark.parametrize(("files", "language"), [(NODEJS, "nodejs"), (JAVA, "java")])
def test_a_local_folder_in_another_language_runs_its_runtime_image(
    tmp_path: Path, files: dict[str, str], language: str
) -> None:
    objects = render(load(project(tmp_path, files)), Options(workdir=tmp_path))
    assert images(objects) == {"scoring-main": [runtime_image(language)], "scoring": [RUNTIME_IMAGE]}
    graph = served_file(objects, "scoring-main")["spec"]["predictors"][0]["graph"]
    assert (graph["modelUri"], graph["children"][0]["modelUri"]) == ("/app/scale", "/app/scorer")


def test_a_python_graph_keeps_the_runtime_image(tmp_path: Path) -> None:
    objects = render(load(project(tmp_path, {"Scorer.py": "class Scorer: ...\n"})), Options(workdir=tmp_path))
    assert images(objects)["scoring-main"] == [RUNTIME_IMAGE]


def test_an_image_given_is_run_as_it_is(tmp_path: Path) -> None:
    """CI passes the image `daneel build` made of the project, which holds the runtime it needs."""
    objects = render(load(project(tmp_path, NODEJS)), Options(workdir=tmp_path, image="ghcr.io/acme/scoring:1"))
    assert set(images(objects)["scoring-main"]) == {"ghcr.io/acme/scoring:1"}


def test_a_remote_folder_says_its_language_by_implementation(tmp_path: Path) -> None:
    graph = GRAPH.replace("modelUri: scorer", "implementation: JAVA_SERVER\n        modelUri: s3://models/scorer")
    objects = render(load(project(tmp_path, {}, graph)), Options(workdir=tmp_path))
    assert images(objects)["scoring-main"] == [runtime_image("java")] * 2  # the fetch, then the server
    child = served_file(objects, "scoring-main")["spec"]["predictors"][0]["graph"]["children"][0]
    assert child == {"name": "scorer", "implementation": "JAVA_SERVER", "modelUri": "/mnt/models/scorer"}


def test_node_js_and_java_in_one_predictor_need_an_image_with_both(tmp_path: Path) -> None:
    graph = GRAPH + "        children:\n        - {name: ranker, implementation: JAVA_SERVER, modelUri: s3://m/r}\n"
    deployment = load(project(tmp_path, NODEJS, graph))
    with pytest.raises(InvalidInput) as caught:
        render(deployment, Options(workdir=tmp_path))
    assert caught.value.message == (
        "spec.predictors[0].graph: expected nodes in one language besides Python (the predictor's pod runs one"
        " image) or an --image that holds both; got ranker (java), scorer (nodejs)"
    )
    assert (
        images(render(deployment, Options(workdir=tmp_path, image="acme/both:1")))["scoring-main"]
        == ["acme/both:1"] * 2
    )


def test_the_operator_runs_a_language_servers_predictor_in_its_image() -> None:
    cluster = FakeCluster()
    body = resource(implementation="NODEJS_SERVER", modelUri="gs://models/scorer")
    run(reconcile(body, cluster, Options()))
    deployments = {o["metadata"]["name"]: o for o in cluster.applied if o["kind"] == "Deployment"}
    for name in ("iris-main", "iris-canary"):
        pod = deployments[name]["spec"]["template"]["spec"]
        assert {c["image"] for c in pod["initContainers"] + pod["containers"]} == {runtime_image("nodejs")}
    assert {c["image"] for c in deployments["iris"]["spec"]["template"]["spec"]["containers"]} == {RUNTIME_IMAGE}


def test_manifest_renders_an_initialised_nodejs_project(daneel_cli: Any, tmp_path: Path) -> None:
    assert daneel_cli("init", "scorer", "--language", "nodejs", "--dir", str(tmp_path)).returncode == 0
    done = daneel_cli("manifest", "deploy.yaml", cwd=tmp_path / "scorer")
    assert done.returncode == 0, done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    assert images(objects) == {"scorer-default": [runtime_image("nodejs")], "scorer": [RUNTIME_IMAGE]}
