import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml

torch = pytest.importorskip("torch", reason="PYTORCH_SERVER needs torch: pip install 'daneel[pytorch]'")

from daneel.errors import InvalidInput, LoadError, ModelError  # noqa: E402
from daneel.protocol.payload import Payload  # noqa: E402
from daneel.runtime import loader, prepackaged  # noqa: E402
from daneel.runtime.batching import Batched  # noqa: E402
from daneel.runtime.pytorch import PyTorchComponent  # noqa: E402

from .served import check_graph_node, check_seldon, check_triton  # noqa: E402

X = np.random.default_rng(0).normal(size=(5, 4))


class MLP(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TwoByTwo(torch.nn.Module):  # type: ignore[misc]
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return a + b.float(), b * 2


class Named(torch.nn.Module):  # type: ignore[misc]
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"double": x * 2, "total": x.sum(dim=1)}


def mlp() -> Any:
    torch.manual_seed(0)  # random weights: nothing is trained, but torch's own answer is known
    return MLP().eval()


def scripted(module: Any, folder: Path, parameters: dict[str, Any] | None = None) -> Path:
    folder.mkdir()
    torch.jit.script(module).save(str(folder / "model.pt"))
    if parameters:
        (folder / "daneel.yaml").write_text(yaml.safe_dump({"parameters": parameters}))
    return folder


def exported(module: Any, folder: Path, *example: Any) -> Path:
    folder.mkdir()
    batch = torch.export.Dim("batch")
    shapes = tuple({0: batch} for _ in example)
    torch.export.save(torch.export.export(module, example, dynamic_shapes=shapes), str(folder / "model.pt2"))
    return folder


def own(module: Any, *arrays: np.ndarray) -> Any:
    """torch's own answer."""
    with torch.no_grad():
        return module(*(torch.from_numpy(array) for array in arrays))


def loaded(folder: Path, **parameters: Any) -> PyTorchComponent:
    spec = loader.resolve(str(folder), extra=parameters)
    component = PyTorchComponent("m", folder, spec.parameters)
    asyncio.run(component.load())
    return component


def predict(component: PyTorchComponent, data: Any) -> Payload:
    return asyncio.run(component.predict(Payload(data)))


@pytest.mark.parametrize("form", ["scripted", "exported"])
def test_predictions_are_torchs_own(tmp_path: Path, form: str) -> None:
    module = mlp()
    if form == "scripted":
        folder = scripted(module, tmp_path / "m")
    else:
        folder = exported(module, tmp_path / "m", torch.zeros(2, 4))
    assert prepackaged.recognise(folder) == "PYTORCH_SERVER"
    # Seldon's ndarray arrives as FP64; the MLP's weights are FP32, to which the rows are cast.
    result = predict(loaded(folder), X)
    assert result.output_name == "output-0"
    assert result.data.dtype == np.float32
    np.testing.assert_allclose(result.data, own(module, X.astype(np.float32)).numpy(), rtol=1e-6)


def test_an_exported_program_gives_its_datatypes_and_shapes(tmp_path: Path) -> None:
    component = loaded(exported(mlp(), tmp_path / "m", torch.zeros(2, 4)))
    assert component.metadata().v2() == {
        "name": "m",
        "versions": [],
        "platform": "pytorch",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "output-0", "datatype": "FP32", "shape": [-1, 3]}],
        "parameters": {"device": "cpu"},
    }
    with pytest.raises(InvalidInput, match=r"expected shape \[-1, 4\], got \[2, 3\]") as caught:
        predict(component, X[:2, :3])
    assert caught.value.field == "x"


def test_named_inputs_and_outputs_of_an_exported_program(tmp_path: Path) -> None:
    a = np.array([[0.5, 1.5], [2.0, -1.0]], dtype=np.float32)
    b = np.array([[1, 2], [3, 4]], dtype=np.int64)
    folder = exported(TwoByTwo(), tmp_path / "m", torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.int64))
    component = loaded(folder, outputs=["sum", "twice"])
    result = predict(component, {"b": b.astype(np.int32), "a": a.astype(np.float64)})
    assert result.names == ["sum", "twice"]
    np.testing.assert_array_equal(result.data["sum"], a + b)
    np.testing.assert_array_equal(result.data["twice"], 2 * b)
    assert result.data["twice"].dtype == np.int64
    metadata = component.metadata().v2()
    assert metadata["inputs"] == [
        {"name": "a", "datatype": "FP32", "shape": [-1, 2]},
        {"name": "b", "datatype": "INT64", "shape": [-1, 2]},
    ]
    assert metadata["outputs"] == [
        {"name": "sum", "datatype": "FP32", "shape": [-1, 2]},
        {"name": "twice", "datatype": "INT64", "shape": [-1, 2]},
    ]
    with pytest.raises(InvalidInput, match="expected datatype INT64, got FP64") as caught:
        predict(component, {"a": a, "b": b.astype(np.float64)})
    assert caught.value.field == "b"
    with pytest.raises(InvalidInput, match="c: not an input of this model; its inputs are a, b"):
        predict(component, {"a": a, "b": b, "c": b})


def test_a_scripted_module_names_its_inputs_and_daneel_yaml_types_them(tmp_path: Path) -> None:
    declared = [{"name": "a", "datatype": "FP32", "shape": [-1, 2]}, {"name": "b", "datatype": "INT64"}]
    folder = scripted(TwoByTwo(), tmp_path / "m", {"inputs": declared, "outputs": "sum, twice"})
    component = loaded(folder)
    metadata = component.metadata().v2()
    assert metadata["inputs"] == [
        {"name": "a", "datatype": "FP32", "shape": [-1, 2]},
        {"name": "b", "datatype": "INT64", "shape": [-1]},
    ]
    assert [output["name"] for output in metadata["outputs"]] == ["sum", "twice"]
    result = predict(component, {"a": np.ones((1, 2)), "b": np.array([[3, 4]])})
    np.testing.assert_array_equal(result.data["twice"], [[6, 8]])
    # Without daneel.yaml, the names come from forward's arguments, FP32 and any shape.
    bare = loaded(scripted(TwoByTwo(), tmp_path / "bare"))
    assert bare.metadata().v2()["inputs"] == [
        {"name": "a", "datatype": "FP32", "shape": [-1]},
        {"name": "b", "datatype": "FP32", "shape": [-1]},
    ]


def test_a_dict_of_tensors_comes_back_by_key(tmp_path: Path) -> None:
    result = predict(loaded(scripted(Named(), tmp_path / "m")), X[:2])
    assert result.names == ["double", "total"]
    np.testing.assert_allclose(result.data["total"], X[:2].sum(axis=1), rtol=1e-6)


def test_what_torch_refuses_is_bad_input(tmp_path: Path) -> None:
    component = loaded(scripted(mlp(), tmp_path / "m"))
    with pytest.raises(InvalidInput, match="mat1 and mat2 shapes cannot be multiplied"):
        predict(component, X[:, :3])
    with pytest.raises(InvalidInput, match="expected datatype FP32, got BYTES"):
        predict(component, np.array([["a", "b"]], dtype=object))


def test_threads_sets_torchs_intra_op_threads(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    try:
        loaded(scripted(mlp(), tmp_path / "m"), threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_is_a_load_error(tmp_path: Path, device: str) -> None:
    with pytest.raises(LoadError, match=f"parameter device: {device} asked for, but this torch .* sees no CUDA"):
        loaded(scripted(mlp(), tmp_path / "m"), device=device)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_outputs_come_back_to_the_cpu(tmp_path: Path) -> None:
    module = mlp()
    result = predict(loaded(scripted(module, tmp_path / "m"), device="cuda"), X)
    np.testing.assert_allclose(result.data, own(module, X.astype(np.float32)).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"device": "gpu"}, "parameter device: expected cpu, cuda or cuda:N, got 'gpu'"),
        ({"device": "cuda:x"}, "parameter device: expected cpu, cuda or cuda:N"),
        ({"threads": 0}, "parameter threads: expected a positive integer, got 0"),
        ({"inputs": 3}, "parameter inputs: expected a list of names"),
        ({"inputs": [{"name": "x", "datatype": "FP33"}]}, "parameter inputs: x: datatype 'FP33' is not a numeric"),
        ({"inputs": [{"name": "x", "size": 3}]}, r"parameter inputs: x: unknown field\(s\) size"),
        ({"method": "predict"}, r"unknown parameter\(s\) method for PYTORCH_SERVER; expected device, threads"),
    ],
)
def test_bad_parameters_are_load_errors(tmp_path: Path, parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(LoadError, match=message):
        PyTorchComponent("m", tmp_path, parameters)


def test_inputs_declared_unlike_the_program_are_a_load_error(tmp_path: Path) -> None:
    folder = exported(mlp(), tmp_path / "m", torch.zeros(2, 4))
    with pytest.raises(LoadError, match=r"parameter inputs: 2 given, but the model has 1 \(x\)"):
        loaded(folder, inputs=["a", "b"])


def test_outputs_named_unlike_what_a_scripted_module_returns_is_the_models_error(tmp_path: Path) -> None:
    component = loaded(scripted(mlp(), tmp_path / "m"), outputs=["scores", "extra"])
    with pytest.raises(ModelError, match="the model returned 1 tensors, but parameter outputs names 2"):
        predict(component, X)


def test_an_unreadable_model_file_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_text("not a module")
    with pytest.raises(LoadError, match=r"model\.pt: cannot be loaded by torch"):
        loaded(tmp_path)


def test_requests_are_batched_by_default(tmp_path: Path) -> None:
    folder = scripted(mlp(), tmp_path / "m")
    assert isinstance(loader.build(loader.resolve(str(folder))), Batched)


def test_served_to_triton_seldon_and_a_graph(tmp_path: Path, serve: Any) -> None:
    module = mlp()
    folder = exported(module, tmp_path / "mlp", torch.zeros(2, 4))
    server = serve(folder)
    rows = X.astype(np.float32)
    metadata = check_triton(server, "mlp", {"x": rows}, {"output-0": own(module, rows).numpy()})
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    check_seldon(server, X, own(module, rows).numpy())
    bad = requests.post(
        f"{server.url}/v2/models/mlp/infer",
        json={"inputs": [{"name": "x", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
        timeout=30,
    )
    assert (bad.status_code, bad.json()) == (400, {"error": "x: expected shape [-1, 4], got [4]"})
    check_graph_node(
        serve, tmp_path, "PYTORCH_SERVER", folder, X, lambda rows: own(module, rows.astype(np.float32)).numpy()
    )
