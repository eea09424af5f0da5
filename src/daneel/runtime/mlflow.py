"""MLFLOW_SERVER: a local MLflow model folder (`MLmodel`) served through its pyfunc flavour.

Requests are shaped to the model's signature: a column signature gets a pandas
DataFrame with the signature's column names and types (from named V2 inputs, or
from rows of the right width); a tensor signature gets arrays, by name where it
names them. No environment is built from the model's conda.yaml: its pinned
requirements are compared with what is installed, and a mismatch is logged at
load, or, with parameter `strict_requirements`, fails the load.
"""

from __future__ import annotations

import asyncio
import logging
import platform
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from daneel.errors import InvalidInput, LoadError
from daneel.protocol import codecs
from daneel.protocol.payload import Payload, as_array
from daneel.protocol.v2 import Tensor
from daneel.runtime import mlflow_registry, requirements, tensors
from daneel.runtime.component import Metadata, TensorSpec
from daneel.runtime.imports import off_loop
from daneel.runtime.invoke import Invoker
from daneel.runtime.names import column_names
from daneel.runtime.prepackaged import SavedModel, needs

log = logging.getLogger("daneel.mlflow")

_COLUMN_DATATYPES = {"boolean": "BOOL", "integer": "INT32", "long": "INT64", "float": "FP32", "double": "FP64"}


class MLflowComponent(SavedModel):
    implementation = "MLFLOW_SERVER"
    PARAMETERS = ("strict_requirements",)

    def configure(self) -> None:
        self.strict = _flag(self.parameters.get("strict_requirements", False))
        self.model: Any = None
        self.schema: Any = None
        self.output_schema: Any = None
        self.output_name = "output-0"
        version = mlflow_registry.registered_version(self.path)  # set when the folder came from models:/NAME/...
        self.versions = [version] if version else []
        self._errors: tuple[type[Exception], ...] = ()

    async def load(self) -> None:
        flavour = await asyncio.to_thread(_pyfunc_flavour, self.model_file())
        unmet = await asyncio.to_thread(_unmet, self.path)
        self._report([*_python(flavour.get("python_version")), *unmet])
        pyfunc = needs("mlflow.pyfunc", "mlflow")
        self.model = await off_loop(_read, pyfunc, self.path)
        self.schema = self.model.metadata.get_input_schema()
        self.output_schema = self.model.metadata.get_output_schema()
        if self.output_schema is not None and self.output_schema.has_input_names():
            names = self.output_schema.input_names()
            self.output_name = names[0] if len(names) == 1 else self.output_name
        self._errors = (needs("mlflow.exceptions", "mlflow").MlflowException,)
        self._call = Invoker(self.model.predict, self._policy, executor=self._executor, bounded=False)

    def _report(self, unmet: list[str]) -> None:
        if not unmet:
            return
        message = f"this environment does not meet the model's requirements: {'; '.join(unmet)}"
        if self.strict:
            raise LoadError(message)
        log.warning("%s: %s (parameter strict_requirements makes this a load error)", self.name, message)

    async def predict(self, payload: Payload) -> Payload:
        assert self._call is not None, "predict called before load"
        data = self._adapt(payload)
        try:
            result = await self._call(data)
        except self._errors as exc:
            if getattr(exc, "error_code", None) == "INVALID_PARAMETER_VALUE":
                raise InvalidInput("input", _reason(str(exc))) from exc
            raise
        return self._result(result)

    def _adapt(self, payload: Payload) -> Any:
        if self.schema is None:
            return _unsigned(payload)
        if self.schema.is_tensor_spec():
            return self._tensors(payload.data)
        return self._frame(payload.data, payload.names)

    def _tensors(self, data: Any) -> Any:
        specs = self.schema.inputs
        if codecs.is_dataframe(data):
            data = {str(c): data[c].to_numpy() for c in data.columns} if len(specs) > 1 else data.to_numpy()
        if self.schema.has_input_names():
            named = tensors.named(data, self.schema.input_names())
            return {spec.name: _tensor(spec, named[spec.name], spec.name) for spec in specs}
        if isinstance(data, dict) and len(data) == 1:
            [data] = data.values()
        return _tensor(specs[0], data, "input")

    def _frame(self, data: Any, names: list[str]) -> Any:
        pd = needs("pandas", "mlflow")
        columns: list[Any] = self.schema.input_names() if self.schema.has_input_names() else []
        columns = columns or list(range(len(self.schema.inputs)))
        if isinstance(data, dict):
            data = codecs.to_dataframe([_column(str(key), value) for key, value in data.items()])
        elif isinstance(data, np.ndarray):
            data = _rows(data, columns)
            data = pd.DataFrame(data, columns=names if len(names) == data.shape[1] else columns)
        elif not codecs.is_dataframe(data):
            raise InvalidInput("input", f"expected rows or named columns, got {type(data).__name__}")
        return self._typed(data)

    def _typed(self, frame: Any) -> Any:
        """`frame` with numeric columns cast to the signature's numeric types."""
        frame = frame.copy(deep=False)
        for spec in self.schema.inputs:
            target = _numpy_type(spec.type)
            if spec.name in frame.columns and target is not None and frame[spec.name].dtype.kind in "biuf":
                frame[spec.name] = tensors.cast(frame[spec.name].to_numpy(), target, spec.name)
        return frame

    def _result(self, result: Any) -> Payload:
        if codecs.is_dataframe(result):
            return Payload(result, [str(c) for c in result.columns])
        if isinstance(result, dict):
            values = {str(k): as_array(v) for k, v in result.items()}
            return Payload(values, list(values))
        array = as_array(result.to_numpy() if type(result).__name__ == "Series" else result)
        return Payload(array, column_names(array, None), {}, output_name=self.output_name)

    def metadata(self) -> Metadata:
        columns = self.schema is not None and not self.schema.is_tensor_spec()
        custom = {"content_type": "pd"} if columns else {}
        inputs, outputs = _specs(self.schema, "input"), _specs(self.output_schema, "output")
        return Metadata(self.name, "mlflow", self.versions, inputs, outputs, custom)


def _pyfunc_flavour(path: Path) -> dict[str, Any]:
    try:
        mlmodel = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise LoadError(f"{path}: not valid YAML ({exc})") from None
    flavours = mlmodel.get("flavors") if isinstance(mlmodel, dict) else None
    flavours = flavours if isinstance(flavours, dict) else {}
    flavour = flavours.get("python_function")
    if not isinstance(flavour, dict):
        found = ", ".join(flavours) or "none"
        raise LoadError(f"{path}: no python_function flavour, which MLFLOW_SERVER serves (flavours: {found})")
    return flavour


def _unmet(folder: Path) -> list[str]:
    return requirements.unmet(requirements.read(folder))


def _python(version: Any) -> list[str]:
    """The model's Python, if its minor version differs from the running one's."""
    running = platform.python_version()
    if not version or str(version).split(".")[:2] == running.split(".")[:2]:
        return []
    return [f"python {version} (running {running})"]


def _read(pyfunc: Any, path: Path) -> Any:
    try:
        return pyfunc.load_model(str(path))
    except Exception as exc:
        # Loading unpickles the user's model: anything can go wrong, and all of it is a load failure.
        raise LoadError(f"{path}: cannot be loaded as an MLflow model ({type(exc).__name__}: {exc})") from exc


def _unsigned(payload: Payload) -> Any:
    """Without a signature, rows are passed on, as a DataFrame when Seldon's `names` name their columns."""
    data = payload.data
    if isinstance(data, np.ndarray) and data.ndim == 2 and len(payload.names) == data.shape[1]:
        return needs("pandas", "mlflow").DataFrame(data, columns=payload.names)
    return data


def _column(name: str, value: Any) -> Tensor:
    array = np.asarray(value)
    return Tensor(name, tensors.datatype(array.dtype), list(array.shape), array)


def _rows(data: np.ndarray, columns: list[Any]) -> np.ndarray:
    if data.ndim == 1:
        data = data.reshape(-1, 1) if len(columns) == 1 else data.reshape(1, -1)
    if data.ndim != 2 or data.shape[1] != len(columns):
        described = f"{len(columns)} columns ({', '.join(map(str, columns))})"
        raise InvalidInput("input", f"expected rows of {described}, got shape {list(data.shape)}")
    return data


def _tensor(spec: Any, value: Any, field: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise InvalidInput(field, f"expected an array, got {type(value).__name__}")
    array = tensors.cast(value, spec.type, field)
    return tensors.check_shape(array, [int(d) for d in spec.shape] if spec.shape is not None else None, field)


def _numpy_type(column_type: Any) -> np.dtype | None:
    if getattr(column_type, "name", None) not in _COLUMN_DATATYPES:
        return None
    dtype: np.dtype = np.dtype(column_type.to_numpy())
    return dtype


def _specs(schema: Any, prefix: str) -> list[TensorSpec]:
    if schema is None:
        return []
    return [_spec(item, f"{prefix}-{i}") for i, item in enumerate(schema.inputs)]


def _spec(item: Any, default: str) -> TensorSpec:
    name = item.name or default
    if hasattr(item, "shape"):
        return TensorSpec(name, tensors.datatype(np.dtype(item.type)), [int(d) for d in item.shape])
    return TensorSpec(name, _COLUMN_DATATYPES.get(getattr(item.type, "name", ""), "BYTES"), [-1])


def _reason(message: str) -> str:
    """MLflow's schema errors quote the whole input first; the reason comes after 'Error: '."""
    _, found, reason = message.partition(". Error: ")
    return reason.strip() if found else message.strip()


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise LoadError(f"parameter strict_requirements: expected true or false, got {value!r}")
