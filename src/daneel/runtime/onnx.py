"""ONNX_SERVER: an ONNX graph saved as `model.onnx`, run by onnxruntime.

Request inputs are matched to the graph's inputs by name; a single unnamed
array feeds a graph's only input. Values are cast to the declared type where
no value changes kind (FP64 to FP32, INT32 to INT64), and checked against the
declared shape. Every output the graph declares is returned, by name, unless
parameter `outputs` picks some; sequences of maps (scikit-learn converters'
ZipMap) come back as one row of values per map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from daneel.errors import InvalidInput, LoadError
from daneel.protocol import codecs
from daneel.protocol.datatypes import to_numpy
from daneel.protocol.payload import Payload
from daneel.runtime import tensors
from daneel.runtime.component import Metadata, TensorSpec
from daneel.runtime.imports import off_loop
from daneel.runtime.invoke import Invoker
from daneel.runtime.names import column_names
from daneel.runtime.prepackaged import SavedModel, needs

_DATATYPES = {
    "float": "FP32",
    "double": "FP64",
    "float16": "FP16",
    "bool": "BOOL",
    "string": "BYTES",
    **{f"{sign}int{bits}": f"{sign.upper()}INT{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)},
}
_THREADS = {"intra_op_threads": "intra_op_num_threads", "inter_op_threads": "inter_op_num_threads"}


@dataclass(frozen=True, slots=True)
class Node:
    """A graph input or output: its V2 datatype and shape (-1 where symbolic; None where unknown)."""

    name: str
    datatype: str
    shape: list[int] | None
    symbols: tuple[str | None, ...] = ()
    zipmap: bool = False

    def spec(self) -> TensorSpec:
        return TensorSpec(self.name, self.datatype, self.shape if self.shape is not None else [-1])

    def check(self, value: Any) -> np.ndarray:
        if not isinstance(value, np.ndarray):
            raise InvalidInput(self.name, f"expected an array, got {type(value).__name__}")
        array = tensors.cast(value, to_numpy(self.datatype, self.name), self.name)
        return tensors.check_shape(array, self.shape, self.name)


class ONNXComponent(SavedModel):
    implementation = "ONNX_SERVER"
    PARAMETERS = ("intra_op_threads", "inter_op_threads", "outputs", "providers")

    def configure(self) -> None:
        self.threads = {key: _count(key, self.parameters[key]) for key in _THREADS if key in self.parameters}
        self.requested = _names("outputs", self.parameters.get("outputs"))
        self.providers = _names("providers", self.parameters.get("providers")) or ["CPUExecutionProvider"]
        self.session: Any = None
        self.inputs: list[Node] = []
        self.outputs: list[Node] = []

    async def load(self) -> None:
        ort = needs("onnxruntime", "onnx")
        self._check_providers(ort.get_available_providers())
        self.session = session = await off_loop(self._session, ort)
        self.inputs = [_node(arg) for arg in session.get_inputs()]
        self.outputs = self._pick([_node(arg) for arg in session.get_outputs()])
        names = [node.name for node in self.outputs]
        self._call = Invoker(lambda feeds: session.run(names, feeds), self._policy, executor=self._executor)

    def _check_providers(self, available: list[str]) -> None:
        unknown = [name for name in self.providers if name not in available]
        if unknown:
            raise LoadError(
                f"parameter providers: {', '.join(unknown)} not available; this onnxruntime has {', '.join(available)}"
            )

    def _session(self, ort: Any) -> Any:
        options = ort.SessionOptions()
        for key, value in self.threads.items():
            setattr(options, _THREADS[key], value)
        try:
            return ort.InferenceSession(str(self.model_file()), options, providers=self.providers)
        except Exception as exc:
            # onnxruntime's errors (InvalidProtobuf, Fail, ...) share no base class but Exception.
            raise LoadError(f"{self.model_file()}: cannot be loaded by onnxruntime ({exc})") from exc

    def _pick(self, outputs: list[Node]) -> list[Node]:
        if not self.requested:
            return outputs
        by_name = {node.name: node for node in outputs}
        unknown = [name for name in self.requested if name not in by_name]
        if unknown:
            raise LoadError(f"parameter outputs: {', '.join(unknown)} not in the model; it has {', '.join(by_name)}")
        return [by_name[name] for name in self.requested]

    async def predict(self, payload: Payload) -> Payload:
        assert self._call is not None, "predict called before load"
        # Inputs are checked against the graph first, so that an error onnxruntime raises is the model's own.
        results = await self._call(self._feeds(payload.data))
        values = {node.name: _value(node, result) for node, result in zip(self.outputs, results, strict=True)}
        if len(values) == 1:
            [(name, value)] = values.items()
            return Payload(value, column_names(value, _labels(results[0])), {}, output_name=name)
        return Payload(values, list(values))

    def _feeds(self, data: Any) -> dict[str, np.ndarray]:
        names = [node.name for node in self.inputs]
        if codecs.is_dataframe(data):
            data = data.to_numpy() if len(names) == 1 else self._columns(data)
        data = tensors.named(data, names)
        feeds = {node.name: node.check(data[node.name]) for node in self.inputs}
        _same_sizes(self.inputs, feeds)
        return feeds

    def _columns(self, frame: Any) -> dict[str, np.ndarray]:
        """A DataFrame's columns by name, each shaped [n, 1] for an input of rank 2."""
        ranks = {node.name: len(node.shape) if node.shape is not None else None for node in self.inputs}
        columns = {str(column): frame[column].to_numpy() for column in frame.columns}
        return {name: value.reshape(-1, 1) if ranks.get(name) == 2 else value for name, value in columns.items()}

    def metadata(self) -> Metadata:
        inputs = [node.spec() for node in self.inputs]
        return Metadata(self.name, "onnx", [], inputs, [node.spec() for node in self.outputs])


def _node(arg: Any) -> Node:
    """A Node for onnxruntime's NodeArg: type 'tensor(float)', or 'seq(map(int64,tensor(float)))'."""
    kind = arg.type
    if kind.startswith("seq(map(") and kind.endswith(",tensor(float)))"):
        return Node(arg.name, "FP32", [-1, -1], zipmap=True)
    element = kind.removeprefix("tensor(").removesuffix(")")
    datatype = _DATATYPES.get(element) if kind.startswith("tensor(") else None
    if datatype is None:
        raise LoadError(f"{arg.name}: onnxruntime type {kind} has no Open Inference Protocol datatype")
    if arg.shape is None:
        return Node(arg.name, datatype, None)
    shape = [dim if isinstance(dim, int) else -1 for dim in arg.shape]
    return Node(arg.name, datatype, shape, tuple(dim if isinstance(dim, str) else None for dim in arg.shape))


def _same_sizes(inputs: list[Node], feeds: dict[str, np.ndarray]) -> None:
    """Dimensions that share a symbolic name ('batch') must have one size, which onnxruntime leaves to the ops."""
    seen: dict[str, tuple[int, str]] = {}
    for node in inputs:
        for symbol, size in zip(node.symbols, feeds[node.name].shape, strict=False):
            if symbol is None:
                continue
            first = seen.setdefault(symbol, (size, node.name))
            if first[0] != size:
                raise InvalidInput(node.name, f"dimension {symbol!r} is {size}, but {first[0]} in input {first[1]!r}")


def _value(node: Node, result: Any) -> Any:
    if not node.zipmap:
        return result
    if not result:
        return np.zeros((0, 0), dtype=np.float32)
    keys = list(result[0])
    return np.array([[row[key] for key in keys] for row in result], dtype=np.float32)


def _labels(result: Any) -> list[str] | None:
    """The map keys (class labels) of a sequence-of-maps output, else None."""
    if isinstance(result, list) and result and isinstance(result[0], dict):
        return [str(key) for key in result[0]]
    return None


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise LoadError(f"parameter {key}: expected a non-negative integer (0 lets onnxruntime choose), got {value!r}")
    return int(value)


def _names(key: str, value: Any) -> list[str]:
    """A list parameter given as a JSON list or as a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise LoadError(f"parameter {key}: expected a list of names or a comma-separated string, got {value!r}")
