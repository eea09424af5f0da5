"""XGBOOST_SERVER: an XGBoost model saved as `model.json`, `model.ubj` or `model.bst`.

The file is read as a Booster, as Seldon and MLServer read it: `XGBClassifier.save_model`
writes the same format as `Booster.save_model`. Parameter `method`: `predict` (the
default) answers with the Booster's own output; `predict_proba` with one probability
per class, as `XGBClassifier.predict_proba` does, for classification objectives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from daneel.errors import LoadError
from daneel.protocol import codecs
from daneel.protocol.payload import Payload
from daneel.runtime import tensors
from daneel.runtime.component import Metadata, TensorSpec
from daneel.runtime.imports import off_loop
from daneel.runtime.invoke import Invoker
from daneel.runtime.names import column_names
from daneel.runtime.prepackaged import SavedModel, needs

METHODS = ("predict", "predict_proba")
#: The objectives whose output predict_proba turns into per-class probabilities.
CLASSIFIERS = ("binary:logistic", "multi:softprob", "multi:softmax")


class XGBoostComponent(SavedModel):
    implementation = "XGBOOST_SERVER"
    PARAMETERS = ("method",)

    def configure(self) -> None:
        self.method: str = self.choice("method", METHODS, "predict") or "predict"
        self.booster: Any = None
        self.objective = ""
        self._params: dict[str, str] = {}

    async def load(self) -> None:
        self.booster = await off_loop(_read, self.model_file())
        learner = json.loads(self.booster.save_config())["learner"]
        self.objective = learner["objective"]["name"]
        self._params = learner["learner_model_param"]
        if self.method == "predict_proba" and self.objective not in CLASSIFIERS:
            raise LoadError(
                f"parameter method: predict_proba needs a classification objective ({', '.join(CLASSIFIERS)});"
                f" this model's is {self.objective}"
            )
        fn = self._predict_proba if self.method == "predict_proba" else self.booster.inplace_predict
        self._call = Invoker(fn, self._policy, executor=self._executor)

    async def predict(self, payload: Payload) -> Payload:
        # XGBoost rejects data (feature names, types) with ValueError; XGBoostError is one too.
        result = await self.call(self._check(payload.data))
        return Payload(result, column_names(result, None), {}, output_name=self.method)

    def _check(self, X: Any) -> Any:
        if codecs.is_dataframe(X):
            names = self.booster.feature_names
            if names:
                return tensors.columns(X, names)
            X = X.to_numpy()
        return tensors.rows(X, self.booster.num_features())

    def _predict_proba(self, X: Any) -> np.ndarray:
        if self.objective == "multi:softmax":
            # softmax keeps only the winning class; its margins still hold every class's score.
            return _softmax(self.booster.inplace_predict(X, predict_type="margin"))
        p = self.booster.inplace_predict(X)
        if self.objective == "binary:logistic":
            return np.column_stack([1 - p, p])
        return np.asarray(p)

    def metadata(self) -> Metadata:
        features = self.booster.num_features() if self.booster is not None else -1
        inputs = [TensorSpec("input-0", "FP32", [-1, features])]
        return Metadata(self.name, "xgboost", [], inputs, [TensorSpec(self.method, "FP32", self._output_shape())])

    def _output_shape(self) -> list[int]:
        classes = int(self._params.get("num_class", "0"))
        targets = int(self._params.get("num_target", "1"))
        if self.method == "predict_proba":
            return [-1, max(classes, 2)]
        if self.objective == "multi:softprob":
            return [-1, classes]
        return [-1, targets] if targets > 1 else [-1]


def _read(path: Path) -> Any:
    xgboost = needs("xgboost", "xgboost")
    booster = xgboost.Booster()
    try:
        booster.load_model(path)
    except xgboost.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0]
        raise LoadError(f"{path}: cannot be read as an XGBoost model ({first})") from exc
    return booster


def _softmax(margins: np.ndarray) -> np.ndarray:
    exp = np.exp(margins - margins.max(axis=1, keepdims=True))
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))
