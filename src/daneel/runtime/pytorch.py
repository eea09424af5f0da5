"""PYTORCH_SERVER: a TorchScript module saved as `model.pt`, or a `torch.export` program saved as `model.pt2`.

Inputs are matched by name, as ONNX_SERVER matches them: an exported program names its inputs
and fixes their datatypes and ranks; a TorchScript module names its inputs (its `forward`'s
arguments) but not their datatypes, which are FP32 unless parameter `inputs` says otherwise.
Outputs are `output-0`, `output-1`, ... (one per tensor the model returns, or the keys of a dict
it returns) unless parameter `outputs` names them.

Parameter `device` (`cpu`, `cuda`, `cuda:N`) places the model; inputs go to that device and
outputs come back to the CPU. Parameter `threads` sets torch's intra-op threads for the process.
Calls run under `torch.inference_mode`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from daneel.errors import LoadError, ModelError
from daneel.protocol import codecs
from daneel.protocol.payload import Payload
from daneel.runtime import tensors
from daneel.runtime.component import Metadata
from daneel.runtime.imports import off_loop
from daneel.runtime.invoke import Invoker
from daneel.runtime.names import column_names
from daneel.runtime.onnx import Node
from daneel.runtime.prepackaged import SavedModel, needs
from daneel.runtime.tensorspecs import declared, merge

#: torch dtypes by name (str(torch.float32) is "torch.float32"), to V2 datatypes.
_DATATYPES = {
    "torch.float32": "FP32",
    "torch.float64": "FP64",
    "torch.float16": "FP16",
    "torch.bool": "BOOL",
    "torch.uint8": "UINT8",
    "torch.int8": "INT8",
    "torch.int16": "INT16",
    "torch.int32": "INT32",
    "torch.int64": "INT64",
}


class PyTorchComponent(SavedModel):
    implementation = "PYTORCH_SERVER"
    PARAMETERS = ("device", "threads", "inputs", "outputs")

    def configure(self) -> None:
        self.device = _device(self.parameters.get("device", "cpu"))
        self.threads = _threads(self.parameters.get("threads"))
        self.declared_inputs = declared("inputs", self.parameters.get("inputs"))
        self.declared_outputs = declared("outputs", self.parameters.get("outputs"))
        self.module: Any = None
        self.inputs: list[Node] = []
        self.outputs: list[Node] = []
        self._errors: tuple[type[Exception], ...] = (ValueError,)

    async def load(self) -> None:
        torch = needs("torch", "pytorch")
        _check_device(torch, self.device)
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        path = self.model_file()
        self.module, found, returned = await off_loop(_load, torch, path, self.device)
        self.inputs = merge("inputs", self.declared_inputs, found)
        if not self.inputs:
            raise LoadError(f"{path}: the model takes no inputs")
        self.outputs = merge("outputs", self.declared_outputs, returned)
        # RuntimeError is what torch raises for a shape or type its operators refuse: the request's fault.
        self._errors = (ValueError, RuntimeError, TypeError)
        self._call = Invoker(self._forward, self._policy, executor=self._executor)

    def _forward(self, feeds: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
        import torch

        try:
            with torch.inference_mode():
                args = [_tensor(torch, feeds[node.name]).to(self.device) for node in self.inputs]
                result = self.module(*args)
        except torch.cuda.OutOfMemoryError as exc:
            # A RuntimeError, but the server's trouble rather than the request's: a 500, not a 400.
            raise ModelError(f"{self.device} is out of memory ({str(exc).splitlines()[0]})") from exc
        return self._named(result)

    def _named(self, result: Any) -> list[tuple[str, np.ndarray]]:
        if isinstance(result, dict):
            pairs = [(str(key), value) for key, value in result.items()]
        else:
            values = list(result) if isinstance(result, (tuple, list)) else [result]
            names = [node.name for node in self.outputs] or [f"output-{i}" for i in range(len(values))]
            if len(names) != len(values):
                raise ModelError(f"the model returned {len(values)} tensors, but parameter outputs names {len(names)}")
            pairs = list(zip(names, values, strict=True))
        return [(name, _numpy(name, value)) for name, value in pairs]

    async def predict(self, payload: Payload) -> Payload:
        results = await self.call(self._feeds(payload.data), self._errors)
        if len(results) == 1:
            [(name, value)] = results
            return Payload(value, column_names(value, None), {}, output_name=name)
        values = dict(results)
        return Payload(values, list(values))

    def _feeds(self, data: Any) -> dict[str, np.ndarray]:
        if codecs.is_dataframe(data):
            data = data.to_numpy()
        data = tensors.named(data, [node.name for node in self.inputs])
        return {node.name: np.ascontiguousarray(node.check(data[node.name])) for node in self.inputs}

    def metadata(self) -> Metadata:
        inputs = [node.spec() for node in self.inputs]
        outputs = [node.spec() for node in self.outputs]
        return Metadata(self.name, "pytorch", [], inputs, outputs, {"device": self.device})


def _device(value: Any) -> str:
    text = str(value)
    kind, _, index = text.partition(":")
    if (kind == "cpu" and not index) or (kind == "cuda" and (not index or index.isdigit())):
        return text
    raise LoadError(f"parameter device: expected cpu, cuda or cuda:N, got {value!r}")


def _check_device(torch: Any, device: str) -> None:
    if not device.startswith("cuda"):
        return
    if not torch.cuda.is_available():
        raise LoadError(
            f"parameter device: {device} asked for, but this torch ({torch.__version__}) sees no CUDA device;"
            " use device: cpu, or install a CUDA build of torch on a machine with a GPU"
        )
    _, _, index = device.partition(":")
    count = torch.cuda.device_count()
    if index and int(index) >= count:
        raise LoadError(f"parameter device: {device} asked for, but there are {count} CUDA device(s)")


def _threads(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < 1:
        raise LoadError(f"parameter threads: expected a positive integer, got {value!r}")
    return int(value)


def _load(torch: Any, path: Path, device: str) -> tuple[Any, list[Node], list[Node]]:
    """The callable module, and the inputs and outputs its file declares."""
    try:
        if path.suffix == ".pt2":
            program = torch.export.load(str(path))
            return program.module().to(device), _exported_inputs(program), _exported_outputs(program)
        module = torch.jit.load(str(path), map_location=device)
    except Exception as exc:
        # torch raises RuntimeError, ValueError, pickle's and zipfile's errors for a file it cannot read.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LoadError(f"{path}: cannot be loaded by torch ({first})") from exc
    module.eval()
    return module, _scripted_inputs(module), []


def _scripted_inputs(module: Any) -> list[Node]:
    """A TorchScript forward's arguments, after self: names only (FP32, any shape) unless annotated otherwise."""
    arguments = module.forward.schema.arguments[1:]
    return [Node(argument.name, "FP32", None) for argument in arguments]


def _exported_inputs(program: Any) -> list[Node]:
    """An exported program's user inputs, with their datatypes and shapes (-1 where symbolic)."""
    from torch.export.graph_signature import InputKind

    names = [spec.arg.name for spec in program.graph_signature.input_specs if spec.kind == InputKind.USER_INPUT]
    placeholders = {node.name: node for node in program.graph.nodes if node.op == "placeholder"}
    return [_traced(name, placeholders[name].meta.get("val")) for name in names]


def _exported_outputs(program: Any) -> list[Node]:
    """An exported program's outputs as `output-0`, `output-1`, ..., with their datatypes and shapes."""
    [output] = [node for node in program.graph.nodes if node.op == "output"]
    values = output.args[0] if isinstance(output.args[0], (tuple, list)) else [output.args[0]]
    user = len(program.graph_signature.user_outputs)
    # The last outputs are the user's; those before them are buffers the program mutates.
    return [_traced(f"output-{i}", getattr(value, "meta", {}).get("val")) for i, value in enumerate(values[-user:])]


def _traced(name: str, value: Any) -> Node:
    """A Node for a tensor torch.export traced: its dtype, and its shape with -1 for a symbolic size."""
    if value is None or not hasattr(value, "dtype"):
        return Node(name, "FP32", None)
    datatype = _DATATYPES.get(str(value.dtype))
    if datatype is None:
        raise LoadError(f"{name}: torch dtype {value.dtype} has no Open Inference Protocol datatype")
    return Node(name, datatype, [int(dim) if str(dim).isdigit() else -1 for dim in value.shape])


def _tensor(torch: Any, array: np.ndarray) -> Any:
    """The array as a tensor, sharing its memory unless it is read-only (binary tensor data is), which torch
    would share with a warning."""
    return torch.from_numpy(array) if array.flags.writeable else torch.tensor(array)


def _numpy(name: str, value: Any) -> np.ndarray:
    import torch

    if not isinstance(value, torch.Tensor):
        raise ModelError(f"output {name}: the model returned {type(value).__name__}, not a tensor")
    if str(value.dtype) not in _DATATYPES:
        value = value.float() if value.is_floating_point() else value
    return np.asarray(value.detach().to("cpu").numpy())
