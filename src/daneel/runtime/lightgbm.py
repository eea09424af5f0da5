"""LIGHTGBM_SERVER: a LightGBM Booster saved as `model.txt`.

Predictions are the Booster's own: values for regression, the probability of
the positive class for binary objectives, one probability per class for
multiclass ones. A model trained on named columns takes a DataFrame by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daneel.errors import LoadError
from daneel.protocol import codecs
from daneel.protocol.payload import Payload
from daneel.runtime import tensors
from daneel.runtime.component import Metadata, TensorSpec
from daneel.runtime.imports import off_loop
from daneel.runtime.invoke import Invoker
from daneel.runtime.names import column_names
from daneel.runtime.prepackaged import SavedModel, needs


class LightGBMComponent(SavedModel):
    implementation = "LIGHTGBM_SERVER"

    def configure(self) -> None:
        self.booster: Any = None
        self.feature_names: list[str] = []
        self._errors: tuple[type[Exception], ...] = (ValueError,)

    async def load(self) -> None:
        lightgbm = needs("lightgbm", "lightgbm")
        self.booster = await off_loop(_read, lightgbm, self.model_file())
        names = self.booster.feature_name()
        # LightGBM names the columns of unnamed training data Column_0, Column_1, ...
        if names != [f"Column_{i}" for i in range(len(names))]:
            self.feature_names = names
        self._errors = (ValueError, lightgbm.basic.LightGBMError)
        self._call = Invoker(self.booster.predict, self._policy, executor=self._executor)

    async def predict(self, payload: Payload) -> Payload:
        result = await self.call(self._check(payload.data), self._errors)
        return Payload(result, column_names(result, None), {}, output_name="predict")

    def _check(self, X: Any) -> Any:
        if codecs.is_dataframe(X):
            if self.feature_names:
                return tensors.columns(X, self.feature_names)
            X = X.to_numpy()
        return tensors.rows(X, self.booster.num_feature())

    def metadata(self) -> Metadata:
        features, per_row = -1, 1
        if self.booster is not None:
            features, per_row = self.booster.num_feature(), self.booster.num_model_per_iteration()
        inputs = [TensorSpec("input-0", "FP64", [-1, features])]
        output = TensorSpec("predict", "FP64", [-1, per_row] if per_row > 1 else [-1])
        return Metadata(self.name, "lightgbm", [], inputs, [output])


def _read(lightgbm: Any, path: Path) -> Any:
    try:
        return lightgbm.Booster(model_file=str(path))
    except lightgbm.basic.LightGBMError as exc:
        raise LoadError(f"{path}: cannot be read as a LightGBM model ({exc})") from exc
