"""Serve a saved model with `daneel serve` and check it answers as its framework does, over every protocol.

One server answers Triton's HTTP and gRPC clients (named inputs, V2 metadata) and Seldon's
protocol; a second serves a deployment file whose graph puts a Python transformer (doubling
the input) in front of the model as a node.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import requests
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import np_to_triton_dtype

DOUBLER = """
class Double:
    def transform_input(self, X, names=None, meta=None):
        return X * 2
"""


def _inputs(module: Any, inputs: dict[str, np.ndarray]) -> list[Any]:
    tensors = []
    for name, array in inputs.items():
        tensor = module.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    return tensors


def check_triton(
    server: Any, model: str, inputs: dict[str, np.ndarray], expected: dict[str, np.ndarray], rtol: float = 1e-5
) -> dict[str, Any]:
    """Infer over Triton's HTTP and gRPC clients; both answer `expected`. Returns the HTTP metadata."""
    with triton_http.InferenceServerClient(server.url.removeprefix("http://")) as client:
        result = client.infer(model, _inputs(triton_http, inputs))
        for name, value in expected.items():
            np.testing.assert_allclose(result.as_numpy(name), value, rtol=rtol, atol=1e-6)
        metadata: dict[str, Any] = client.get_model_metadata(model)
    with triton_grpc.InferenceServerClient(server.grpc_target) as client:
        result = client.infer(model, _inputs(triton_grpc, inputs))
        for name, value in expected.items():
            np.testing.assert_allclose(result.as_numpy(name), value, rtol=rtol, atol=1e-6)
        # protobuf's JSON writes int64 shapes as strings
        inputs = client.get_model_metadata(model, as_json=True)["inputs"]
        assert [{**spec, "shape": [int(dim) for dim in spec["shape"]]} for spec in inputs] == metadata["inputs"]
    return metadata


def check_seldon(server: Any, rows: np.ndarray, expected: np.ndarray, rtol: float = 1e-5) -> None:
    response = requests.post(
        f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": rows.tolist()}}, timeout=30
    )
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(np.array(response.json()["data"]["ndarray"]), expected, rtol=rtol, atol=1e-6)


def check_graph_node(
    serve: Callable[..., Any],
    tmp_path: Path,
    implementation: str,
    folder: Path,
    rows: np.ndarray,
    predict: Callable[[np.ndarray], np.ndarray],
    rtol: float = 1e-5,
) -> None:
    """A deployment whose graph is transformer -> model answers `predict(2 * rows)`."""
    components = tmp_path / "components"
    components.mkdir()
    (components / "steps.py").write_text(textwrap.dedent(DOUBLER))
    deployment = components / "deploy.yaml"
    deployment.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: daneel.dev/v1alpha1
            kind: ModelDeployment
            metadata:
              name: dl
            spec:
              predictors:
              - name: default
                graph:
                  name: double
                  type: TRANSFORMER
                  implementation: steps:Double
                  children:
                  - name: model
                    implementation: {implementation}
                    modelUri: {folder}
            """
        )
    )
    server = serve(deployment, cwd=components)
    response = requests.post(
        f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": rows.tolist()}}, timeout=60
    )
    assert response.status_code == 200, response.text
    body = response.json()
    np.testing.assert_allclose(np.array(body["data"]["ndarray"]), predict(2 * rows), rtol=rtol, atol=1e-6)
    assert body["meta"]["requestPath"]["model"] == implementation
