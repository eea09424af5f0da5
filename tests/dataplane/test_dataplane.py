import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest

from daneel.dataplane.dataplane import DataPlane, Ids
from daneel.errors import InvalidInput, ModelError, NotFound, NotImplementedByModel, NotReady
from daneel.runtime.batching import Batched
from daneel.runtime.python import PythonComponent
from daneel.runtime.sklearn import SKLearnComponent
from daneel.version import __version__

Serving = Callable[..., DataPlane]
Python = Callable[..., PythonComponent]

SCORER = """
class Model:
    def __init__(self, healthy=True):
        self.healthy = healthy
        self.rewards = []

    def predict(self, X, names, meta):
        if isinstance(X, str):
            return X.upper()
        if isinstance(X, dict) and "fail" in X:
            raise RuntimeError("cannot score")
        return X

    def transform_input(self, X, names):
        return X + 1

    def tags(self):
        return {"scorer": "v1"}

    def send_feedback(self, features, feature_names, reward, truth, routing=None):
        self.rewards.append(reward)

    def health_status(self):
        if not self.healthy:
            raise RuntimeError("lost the database")
        return "fine"

    def init_metadata(self):
        return {"versions": ["1"], "custom": {"team": "fraud"}}
"""

ROUTER = """
class Model:
    def route(self, X, names):
        return 1 if X[0][0] > 0 else 0

    def aggregate(self, features_list, names_list):
        return [[sum(row[0][0] for row in features_list)]]
"""

RAW = """
class Model:
    def predict_raw(self, message):
        return {"echo": message}
"""


def wire(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY))


def infer(dataplane: DataPlane, body: Any, model: str = "iris", version: str | None = None) -> Any:
    return wire(asyncio.run(dataplane.infer(model, version, body)))


def seldon(dataplane: DataPlane, method: str, body: Any) -> Any:
    return wire(asyncio.run(dataplane.seldon(method, body)))


def rows(iris: Any, n: int = 2) -> list[list[float]]:
    return list(iris.X[:n].tolist())


def v2_body(data: Any, shape: list[int], datatype: str = "FP64", **extra: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": data}], **extra}


def test_infer_runs_an_sklearn_model(serving: Serving, iris_model: SKLearnComponent, iris: Any) -> None:
    dataplane = serving(iris_model)
    response = infer(dataplane, v2_body(rows(iris), [2, 4], id="r1"))
    assert (response["model_name"], response["id"]) == ("iris", "r1")
    [output] = response["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("predict_proba", "FP64", [2, 3])
    expected = iris.model.predict_proba(iris.X[:2])
    np.testing.assert_allclose(np.reshape(output["data"], (2, 3)), expected)


def test_infer_gives_each_response_an_id(serving: Serving, iris_model: SKLearnComponent, iris: Any) -> None:
    response = infer(serving(iris_model), v2_body(rows(iris, 1), [1, 4]))
    assert uuid.UUID(response["id"])


def test_ids_are_unique_within_a_data_plane_and_across_data_planes() -> None:
    first, second = Ids(), Ids()
    uuids = [ids.uuid() for ids in (first, second) for _ in range(1000)]
    puids = [ids.puid() for ids in (first, second) for _ in range(1000)]
    assert len(set(uuids)) == len(set(puids)) == 2000
    assert all(str(uuid.UUID(value)) == value for value in uuids)
    assert all(len(value) == 26 and int(value, 16) >= 0 for value in puids)


def test_infer_honours_requested_outputs(serving: Serving, iris_model: SKLearnComponent, iris: Any) -> None:
    dataplane = serving(iris_model)
    body = v2_body(rows(iris, 1), [1, 4], outputs=[{"name": "predict_proba"}])
    assert [o["name"] for o in infer(dataplane, body)["outputs"]] == ["predict_proba"]
    with pytest.raises(InvalidInput, match="unknown output 'label'"):
        infer(dataplane, v2_body(rows(iris, 1), [1, 4], outputs=[{"name": "label"}]))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (v2_body([1.0, 2.0, 3.0], [1, 4]), "inputs[0].data"),
        (v2_body([1.0, 2.0, 3.0], [1, 3]), "input"),
        (v2_body([1.0], [1], "FP8"), "inputs[0].datatype"),
    ],
)
def test_infer_rejects_bad_input(serving: Serving, iris_model: SKLearnComponent, body: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        infer(serving(iris_model), body)
    assert caught.value.field == field


def test_infer_names_the_unknown_model(serving: Serving, iris_model: SKLearnComponent) -> None:
    with pytest.raises(NotFound, match="model 'wine' not found; served models: iris"):
        infer(serving(iris_model), v2_body([1.0], [1]), model="wine")


def test_versions_are_checked_when_the_model_has_some(serving: Serving, python_model: Python) -> None:
    dataplane = serving(python_model(SCORER, "scorer"))
    assert infer(dataplane, v2_body([1.0], [1]), "scorer", "1")["model_version"] == "1"
    with pytest.raises(NotFound, match="no version '2'; it has 1"):
        infer(dataplane, v2_body([1.0], [1]), "scorer", "2")


def test_infer_returns_tags_as_parameters(serving: Serving, python_model: Python) -> None:
    response = infer(serving(python_model(SCORER, "scorer")), v2_body([1, 2], [2], "INT32"), "scorer")
    assert response["parameters"] == {"tags": {"scorer": "v1"}}
    assert response["outputs"][0] == {"name": "output-0", "shape": [2], "datatype": "INT32", "data": [1, 2]}


def test_user_errors_are_model_errors_naming_the_model(serving: Serving, python_model: Python) -> None:
    dataplane = serving(python_model(SCORER, "scorer"))
    body = {"inputs": [{"name": "fail", "shape": [1], "datatype": "FP32", "data": [1]}, v2_body([1], [1])["inputs"][0]]}
    with pytest.raises(ModelError, match=r"scorer\.predict raised RuntimeError: cannot score"):
        infer(dataplane, body, "scorer")


BATCHABLE = """
import numpy as np


class Model:
    batchable = True

    def predict(self, X, names, meta):
        if (np.asarray(X) < 0).any():
            raise ValueError("negative rows")
        return X
"""


def test_a_model_error_is_logged_once_per_request_when_its_batch_is_retried(
    serving: Serving, python_model: Python, caplog: pytest.LogCaptureFixture
) -> None:
    component = Batched(python_model(BATCHABLE, "batched"))
    dataplane = serving(component)

    async def together() -> list[Any]:
        calls = [asyncio.ensure_future(dataplane.infer("batched", None, v2_body([v], [1, 1]))) for v in (1, -1, 2)]
        return await asyncio.gather(*calls, return_exceptions=True)

    with caplog.at_level(logging.ERROR, "daneel"):
        results = asyncio.run(together())
    assert [isinstance(result, ModelError) for result in results] == [False, True, False]
    assert component.stats.retried == 1
    [record] = caplog.records
    assert "ValueError: negative rows" in record.getMessage()
    assert record.exc_info is not None


def test_metadata_for_both_protocols(serving: Serving, python_model: Python) -> None:
    dataplane = serving(python_model(SCORER, "scorer"))
    assert dataplane.model_metadata("scorer", None)["parameters"] == {"team": "fraud"}
    assert dataplane.seldon_metadata()["custom"] == {"team": "fraud"}
    assert dataplane.server_metadata() == {
        "name": "daneel",
        "version": __version__,
        "extensions": ["binary_tensor_data", "model_repository"],
    }


def test_a_failed_model_makes_the_server_not_ready(serving: Serving, python_model: Python, iris_model: Any) -> None:
    dataplane = serving(
        python_model("class Model:\n    def predict(self, X):\n        return X\n", healthy=False), iris_model
    )
    with pytest.raises(NotReady, match=r"not ready: model 'py': .*Model\(healthy=False\) failed"):
        dataplane.ready()
    with pytest.raises(NotReady, match="model 'py' is not ready"):
        dataplane.model_ready("py", None)
    dataplane.model_ready("iris", None)


def test_seldon_predictions_keep_the_ndarray_form(serving: Serving, iris_model: SKLearnComponent, iris: Any) -> None:
    response = seldon(serving(iris_model), "predictions", {"data": {"ndarray": rows(iris)}, "meta": {"puid": "p1"}})
    assert response["data"]["names"] == ["t:0", "t:1", "t:2"]
    np.testing.assert_allclose(response["data"]["ndarray"], iris.model.predict_proba(iris.X[:2]))
    assert response["meta"] == {"puid": "p1", "tags": {}, "requestPath": {"iris": "SKLEARN_SERVER"}}


def test_seldon_predictions_keep_the_tensor_form(serving: Serving, iris_model: SKLearnComponent, iris: Any) -> None:
    body = {"data": {"tensor": {"shape": [1, 4], "values": rows(iris, 1)[0]}}}
    response = seldon(serving(iris_model), "predictions", body)
    assert response["data"]["tensor"]["shape"] == [1, 3]
    assert len(response["meta"]["puid"]) == 26


def test_seldon_text_and_tags(serving: Serving, python_model: Python) -> None:
    response = seldon(serving(python_model(SCORER, "scorer")), "predict", {"strData": "hi", "meta": {"tags": {"a": 1}}})
    assert response["strData"] == "HI"
    assert response["meta"]["tags"] == {"a": 1, "scorer": "v1"}


def test_seldon_transform_input(serving: Serving, python_model: Python) -> None:
    response = seldon(serving(python_model(SCORER, "scorer")), "transform-input", {"data": {"ndarray": [[1, 2]]}})
    assert response["data"]["ndarray"] == [[2, 3]]


def test_seldon_route_and_aggregate(serving: Serving, python_model: Python) -> None:
    dataplane = serving(python_model(ROUTER, "router"))
    assert seldon(dataplane, "route", {"data": {"ndarray": [[5]]}})["data"]["ndarray"] == [[1]]
    messages = {"seldonMessages": [{"data": {"ndarray": [[1.5]]}}, {"data": {"ndarray": [[2.0]]}}]}
    assert seldon(dataplane, "aggregate", messages)["data"]["ndarray"] == [[3.5]]
    with pytest.raises(NotImplementedByModel, match="router is a ROUTER"):
        seldon(dataplane, "predictions", {"data": {"ndarray": [[5]]}})


def test_seldon_feedback_reaches_the_model(serving: Serving, python_model: Python) -> None:
    component = python_model(SCORER, "scorer")
    body = {"request": {"data": {"ndarray": [[1]]}}, "truth": {"data": {"ndarray": [[0]]}}, "reward": 0.5}
    response = seldon(serving(component), "send-feedback", body)
    assert component.obj.rewards == [0.5]
    assert response["data"]["ndarray"] == []


def test_raw_methods_get_the_body_in_both_protocols(serving: Serving, python_model: Python) -> None:
    dataplane = serving(python_model(RAW, "raw"))
    assert seldon(dataplane, "predictions", {"jsonData": 1}) == {"echo": {"jsonData": 1}}
    assert infer(dataplane, {"anything": True}, "raw") == {"echo": {"anything": True}}


RAW_TRANSFORMER = """
class Model:
    def transform_input_raw(self, message):
        return {"jsonData": {"raw": message}}
"""


def test_a_raw_transformer_serves_predictions_in_both_protocols(serving: Serving, python_model: Python) -> None:
    dataplane = serving(python_model(RAW_TRANSFORMER, "rawt"))
    assert seldon(dataplane, "predictions", {"strData": "x"}) == {"jsonData": {"raw": {"strData": "x"}}}
    assert infer(dataplane, {"inputs": []}, "rawt") == {"jsonData": {"raw": {"inputs": []}}}


def test_seldon_paths_need_a_single_model(serving: Serving, python_model: Python, iris_model: Any) -> None:
    dataplane = serving(python_model(RAW, "raw"), iris_model)
    with pytest.raises(NotFound, match="2 are served"):
        seldon(dataplane, "predictions", {"jsonData": 1})


def test_health_status_reports_the_models_health(serving: Serving, python_model: Python) -> None:
    assert wire(asyncio.run(serving(python_model(SCORER, "scorer")).health_status()))["strData"] == "fine"
    unhealthy = serving(python_model(SCORER, "scorer", healthy=False))
    with pytest.raises(
        NotReady, match=r"scorer is unhealthy: scorer\.health_status raised RuntimeError: lost the database"
    ):
        asyncio.run(unhealthy.health_status())


RAGGED = """
class Model:
    def predict(self, X, names):
        return [[1, 2], [3]]
"""


def test_a_result_that_cannot_be_encoded_is_the_models_error(serving: Serving, python_model: Python) -> None:
    dataplane = serving(python_model(RAGGED, "ragged"))
    with pytest.raises(ModelError, match="ragged returned a result that cannot be encoded"):
        seldon(dataplane, "predictions", {"data": {"ndarray": [[1]]}})
    with pytest.raises(ModelError, match="ragged returned a result that cannot be encoded"):
        infer(dataplane, v2_body([1], [1], "INT64"), "ragged")
