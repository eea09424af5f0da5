"""The files the pods serve, served for real: each predictor's, then the router's in front of them.

On a cluster the router reaches each predictor at its Service; here each runs as a `daneel serve`
on a loopback port, and the router's file is pointed there.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import yaml
from tests.conftest import Servers

from daneel.k8s.manifests import Options, render
from daneel.spec import load

ROOT = Path(__file__).resolve().parents[2]


def test_a_request_flows_through_the_router_to_a_predictor_and_back(
    tmp_path: Path, serve: Servers, daneel_cli: Callable[..., subprocess.CompletedProcess[str]], iris: Any
) -> None:
    """The example's model folder is trained by `make run`, not in a clone: the test's own iris model stands in."""
    objects = render(load(ROOT / "examples" / "deployments" / "abtest.yaml"), Options(workdir=ROOT))
    files = {obj["metadata"]["name"]: obj["data"]["deployment.yaml"] for obj in objects if obj["kind"] == "ConfigMap"}
    ports = {}
    for predictor in ("main", "candidate"):
        path = tmp_path / f"{predictor}.yaml"
        served = files[f"iris-abtest-{predictor}"].replace("/app/examples/iris", str(iris.path))
        path.write_text(served.replace("/app/", f"{ROOT}/"))
        ports[predictor] = serve(path, "--no-grpc").port
    router = yaml.safe_load(files["iris-abtest"])
    for predictor in router["spec"]["predictors"]:
        predictor["graph"]["endpoint"] |= {"service_host": "127.0.0.1", "service_port": ports[predictor["name"]]}
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(router))
    checked = daneel_cli("validate", str(path))
    assert checked.returncode == 0, checked.stderr
    server = serve(path, "--no-grpc")
    seen = set()
    for _ in range(40):
        answer = requests.post(
            f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [[5.1, 3.5, 1.4, 0.2]]}}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen.add(body["meta"]["predictor"])
        if body["meta"]["predictor"] == "candidate":
            assert body["data"]["ndarray"] == [0]  # the candidate answers with class indices
        else:
            assert len(body["data"]["ndarray"][0]) == 3  # main with a probability per class
    assert seen == {"main", "candidate"}
    v2 = requests.post(
        f"{server.url}/v2/models/iris-abtest/infer",
        json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]},
        timeout=10,
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["parameters"]["predictor"] in ("main", "candidate")
