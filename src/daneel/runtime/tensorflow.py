"""TENSORFLOW_SERVER: a TensorFlow SavedModel folder (`saved_model.pb` beside `variables/`).

The folder's signature `serving_default` (parameter `signature` picks another) is the model's
V2 metadata: its inputs and outputs by name, with their datatypes and shapes (-1 where any
size). Requests are matched to the signature's inputs by name, as ONNX_SERVER matches them;
every output of the signature comes back by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from daneel.errors import LoadError
from daneel.protocol import codecs
from daneel.protocol.payload import Payload
from daneel.runtime import tensors
from daneel.runtime.component import Metadata
from daneel.runtime.imports import off_loop
from daneel.runtime.invoke import Invoker
from daneel.runtime.names import column_names
from daneel.runtime.onnx import Node
from daneel.runtime.prepackaged import SavedModel, needs

_DATATYPES = {
    "float32": "FP32",
    "float64": "FP64",
    "float16": "FP16",
    "bool": "BOOL",
    "string": "BYTES",
    **{f"{sign}int{bits}": f"{sign.upper()}INT{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)},
}


class TensorFlowComponent(SavedModel):
    implementation = "TENSORFLOW_SERVER"
    PARAMETERS = ("signature",)

    def configure(self) -> None:
        signature = self.parameters.get("signature", "serving_default")
        if not isinstance(signature, str) or not signature:
            raise LoadError(f"parameter signature: expected a signature's name, got {signature!r}")
        self.signature = signature
        self.inputs: list[Node] = []
        self.outputs: list[Node] = []
        self._errors: tuple[type[Exception], ...] = (ValueError,)

    async def load(self) -> None:
        tf = needs("tensorflow", "tensorflow")
        function = await off_loop(_signature, tf, self.path, self.signature)
        _, by_name = function.structured_input_signature
        self.inputs = [_node(name, spec) for name, spec in sorted(by_name.items())]
        self.outputs = [_node(name, spec) for name, spec in sorted(function.structured_outputs.items())]
        # A value the graph's kernels refuse (a shape no op takes) fails the request, not the server.
        self._errors = (ValueError, TypeError, tf.errors.InvalidArgumentError)

        def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            results = function(**{name: tf.constant(value) for name, value in feeds.items()})
            return {node.name: np.asarray(results[node.name].numpy()) for node in self.outputs}

        self._call = Invoker(run, self._policy, executor=self._executor)

    async def predict(self, payload: Payload) -> Payload:
        results = await self.call(self._feeds(payload.data), self._errors)
        if len(results) == 1:
            [(name, value)] = results.items()
            return Payload(value, column_names(value, None), {}, output_name=name)
        return Payload(results, list(results))

    def _feeds(self, data: Any) -> dict[str, np.ndarray]:
        if codecs.is_dataframe(data):
            data = data.to_numpy()
        data = tensors.named(data, [node.name for node in self.inputs])
        return {node.name: node.check(data[node.name]) for node in self.inputs}

    def metadata(self) -> Metadata:
        inputs = [node.spec() for node in self.inputs]
        outputs = [node.spec() for node in self.outputs]
        return Metadata(self.name, "tensorflow", [], inputs, outputs, {"signature": self.signature})


def _signature(tf: Any, path: Path, name: str) -> Any:
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        # TensorFlow raises OSError, IOError and its own errors for a folder it cannot read.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LoadError(f"{path}: cannot be loaded as a TensorFlow SavedModel ({first})") from exc
    signatures = loaded.signatures
    if name not in signatures:
        known = ", ".join(signatures) or "none"
        raise LoadError(f"parameter signature: {name} is not in the SavedModel; it has {known}")
    return signatures[name]


def _node(name: str, spec: Any) -> Node:
    datatype = _DATATYPES.get(spec.dtype.name)
    if datatype is None:
        raise LoadError(f"{name}: TensorFlow dtype {spec.dtype.name} has no Open Inference Protocol datatype")
    if spec.shape.rank is None:
        return Node(name, datatype, None)
    return Node(name, datatype, [-1 if dim is None else int(dim) for dim in spec.shape.as_list()])
