"""CATBOOST_SERVER: a CatBoost model saved as `model.cbm` (CatBoost's own binary format).

Parameter `method`: `predict` (the default) answers as `CatBoost.predict` does with
prediction_type `RawFormulaVal` for regression and `Class` for classification;
`predict_proba` with one probability per class (prediction_type `Probability`), for
classifiers only. A model trained on
named features takes a DataFrame by name; rows of numbers are taken by position.
"""

from __future__ import annotations

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
#: Loss functions of classifiers, whose predict_proba gives per-class probabilities.
CLASSIFIERS = ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll")


class CatBoostComponent(SavedModel):
    implementation = "CATBOOST_SERVER"
    PARAMETERS = ("method",)

    def configure(self) -> None:
        self.method: str = self.choice("method", METHODS, "predict") or "predict"
        self.model: Any = None
        self.loss = ""
        self.features: list[str] = []
        self.classes: list[str] = []
        self._errors: tuple[type[Exception], ...] = (ValueError,)

    async def load(self) -> None:
        catboost = needs("catboost", "catboost")
        self.model = await off_loop(_read, catboost, self.model_file())
        self.loss = str(self.model.get_all_params().get("loss_function", ""))
        classifier = self.loss in CLASSIFIERS
        if self.method == "predict_proba" and not classifier:
            raise LoadError(
                f"parameter method: predict_proba needs a classifier ({', '.join(CLASSIFIERS)});"
                f" this model's loss function is {self.loss or 'unknown'}"
            )
        self.features = list(self.model.feature_names_)
        self.classes = [str(label) for label in (self.model.classes_ if classifier else [])]
        self._errors = (ValueError, TypeError, catboost.CatBoostError)
        kind = "Probability" if self.method == "predict_proba" else "Class" if classifier else "RawFormulaVal"
        model = self.model
        self._call = Invoker(lambda X: model.predict(X, prediction_type=kind), self._policy, executor=self._executor)

    async def predict(self, payload: Payload) -> Payload:
        result = np.asarray(await self.call(self._check(payload.data), self._errors))
        if self.method == "predict" and self.classes and result.ndim == 2:
            result = result[:, 0]  # one label per row, which CatBoost gives as a column for several classes
        names = self.classes if self.method == "predict_proba" else None
        return Payload(result, column_names(result, names), {}, output_name=self.method)

    def _check(self, X: Any) -> Any:
        if codecs.is_dataframe(X) and set(X.columns) >= set(self.features):
            return tensors.columns(X, self.features)
        if codecs.is_dataframe(X):
            X = X.to_numpy()
        return tensors.rows(X, len(self.features))

    def metadata(self) -> Metadata:
        inputs = [TensorSpec("input-0", "FP64", [-1, len(self.features) or -1])]
        if self.method == "predict_proba":
            output = TensorSpec("predict_proba", "FP64", [-1, len(self.classes)])
        elif self.classes:
            output = TensorSpec("predict", "BYTES" if _labels_are_text(self.model) else "INT64", [-1])
        else:
            output = TensorSpec("predict", "FP64", [-1, -1] if self.loss.startswith("Multi") else [-1])
        return Metadata(self.name, "catboost", [], inputs, [output])


def _labels_are_text(model: Any) -> bool:
    return any(isinstance(label, str) for label in model.classes_)


def _read(catboost: Any, path: Path) -> Any:
    model = catboost.CatBoost()
    try:
        model.load_model(str(path), format="cbm")
    except catboost.CatBoostError as exc:
        first = str(exc).strip().splitlines()[0]
        raise LoadError(f"{path}: cannot be read as a CatBoost model ({first})") from exc
    return model
