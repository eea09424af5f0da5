import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daneel.errors import LoadError, ModelError, NotImplementedByModel
from daneel.protocol.payload import Payload
from daneel.protocol.v1 import Feedback
from daneel.runtime.component import Kind
from daneel.runtime.python import PythonComponent

Make = Callable[..., PythonComponent]

X = np.array([[1.0, 2.0]])
ECHO = "class Model:\n    def predict(self, X):\n        return X\n"


def request(data: Any = X, names: list[str] | None = None, meta: dict[str, Any] | None = None) -> Payload:
    return Payload(data, names or ["a", "b"], meta or {"puid": "p1"})


def predict(component: PythonComponent, payload: Payload | None = None) -> Payload:
    return asyncio.run(component.predict(payload or request()))


@pytest.mark.parametrize(
    ("signature", "names", "meta"),
    [
        ("def predict(self, X, names, meta):", "names", "meta"),
        ("def predict(self, X, feature_names):", "feature_names", "None"),
        ("def predict(self, X):", "None", "None"),
        ("def predict(self, X, feature_names, **kwargs):", "feature_names", "kwargs['meta']"),
        ("def predict(self, X, **kwargs):", "None", "kwargs['meta']"),
        ("def predict(self, X, feature_names, *, meta):", "feature_names", "meta"),
        ("def predict(self, X, feature_names=None, meta=None):", "feature_names", "meta"),
        ("def predict(self, X, meta=None):", "None", "meta"),
        ("async def predict(self, X, feature_names):", "feature_names", "None"),
        ("async def predict(self, X, **kwargs):", "None", "kwargs['meta']"),
    ],
)
def test_predict_gets_the_arguments_it_declares(python_component: Make, signature: str, names: str, meta: str) -> None:
    component = python_component(
        f"""
        class Model:
            {signature}
                return {{"X": X.tolist(), "names": {names}, "meta": {meta}}}
        """
    )
    result = predict(component).data
    assert result["X"] == [[1.0, 2.0]]
    assert result["names"] == (None if names == "None" else ["a", "b"])
    assert result["meta"] == (None if meta == "None" else {"puid": "p1"})


def test_variadic_predict_gets_all_three(python_component: Make) -> None:
    component = python_component("class Model:\n    def predict(self, *args):\n        return len(args)\n")
    assert predict(component).data == 3


def test_results_without_class_names_are_unnamed(python_component: Make) -> None:
    component = python_component("class Model:\n    def predict(self, X, names):\n        return X * 2\n")
    result = predict(component)
    np.testing.assert_array_equal(result.data, [[2.0, 4.0]])
    assert result.names == []  # a Seldon response names them t:0, t:1 (protocol.v1)
    assert result.meta == {"puid": "p1"}


@pytest.mark.parametrize(
    "declaration",
    ["class_names = ['no', 'yes']", "def class_names(self): return ('no', 'yes')"],
)
def test_class_names_name_the_columns(python_component: Make, declaration: str) -> None:
    component = python_component(
        f"""
        class Model:
            {declaration}

            def predict(self, X, names):
                return [[0.1, 0.9]]
        """
    )
    assert predict(component).names == ["no", "yes"]


def test_dataframe_results_are_named_by_their_columns(python_component: Make) -> None:
    component = python_component(
        """
        import pandas as pd

        class Model:
            def predict(self, X, names):
                return pd.DataFrame({"label": ["a"], "score": [0.5]})
        """
    )
    assert predict(component).names == ["label", "score"]


def test_one_dimensional_results_have_no_names(python_component: Make) -> None:
    component = python_component("class Model:\n    def predict(self, X, names):\n        return X[0]\n")
    assert predict(component).names == []


def test_transforms_pass_data_through_by_default(python_component: Make) -> None:
    component = python_component("class Model:\n    def predict(self, X, names):\n        return X\n")
    payload = request()
    assert asyncio.run(component.transform_input(payload)) is payload
    assert asyncio.run(component.transform_output(payload)) is payload


def test_transforms_change_data_when_implemented(python_component: Make) -> None:
    component = python_component(
        """
        class Model:
            def transform_input(self, X, names):
                return X + 1

            async def transform_output(self, X, names):
                return X * 10
        """
    )
    assert component.kind is Kind.TRANSFORMER
    np.testing.assert_array_equal(asyncio.run(component.transform_input(request())).data, [[2.0, 3.0]])
    np.testing.assert_array_equal(asyncio.run(component.transform_output(request())).data, [[10.0, 20.0]])


NOT_IMPLEMENTED = """
class SeldonNotImplementedError(Exception):
    pass


class Model:
    def predict(self, X, names):
        raise {error}

    def transform_input(self, X, names):
        raise {error}

    def tags(self):
        raise {error}
"""


@pytest.mark.parametrize("error", ["NotImplementedError", "SeldonNotImplementedError('no')"])
def test_methods_raising_not_implemented_count_as_missing(python_component: Make, error: str) -> None:
    component = python_component(NOT_IMPLEMENTED.format(error=error))
    with pytest.raises(NotImplementedByModel, match="predict"):
        predict(component)
    payload = request()
    assert asyncio.run(component.transform_input(payload)) is payload


def test_exceptions_from_user_code_become_model_errors(python_component: Make) -> None:
    component = python_component("class Model:\n    def predict(self, X):\n        raise ValueError('boom')\n")
    with pytest.raises(ModelError, match=r"m\.predict raised ValueError: boom"):
        predict(component)


def test_predict_raw_gets_the_undecoded_message(python_component: Make) -> None:
    component = python_component(
        """
        class Model:
            def predict_raw(self, message):
                return {"jsonData": message["jsonData"] * 2}
        """
    )
    assert component.raw_methods == {"predict"}
    assert asyncio.run(component.call_raw("predict", {"jsonData": 21})) == {"jsonData": 42}


def test_predict_raw_raising_not_implemented_is_not_implemented(python_component: Make) -> None:
    component = python_component("class Model:\n    def predict_raw(self, msg):\n        raise NotImplementedError\n")
    with pytest.raises(NotImplementedByModel, match="predict_raw"):
        asyncio.run(component.call_raw("predict", {}))


ROUTER = """
class Model:
    def route(self, X, names):
        return {choice}
"""


def test_route_returns_the_child_index(python_component: Make) -> None:
    component = python_component(ROUTER.format(choice="int(X[0][0])"))
    assert component.kind is Kind.ROUTER
    assert asyncio.run(component.route(request())) == 1


def test_route_must_return_an_index(python_component: Make) -> None:
    component = python_component(ROUTER.format(choice="'left'"))
    with pytest.raises(ModelError, match="expected an integer child index"):
        asyncio.run(component.route(request()))


def test_route_and_aggregate_are_not_implemented_by_a_model(python_component: Make) -> None:
    component = python_component(ECHO)
    with pytest.raises(NotImplementedByModel, match="route"):
        asyncio.run(component.route(request()))
    with pytest.raises(NotImplementedByModel, match="aggregate"):
        asyncio.run(component.aggregate([request()]))


def test_aggregate_combines_the_children(python_component: Make) -> None:
    component = python_component(
        """
        import numpy as np

        class Model:
            def aggregate(self, features_list, feature_names_list):
                return np.mean(features_list, axis=0)
        """
    )
    assert component.kind is Kind.COMBINER
    result = asyncio.run(component.aggregate([request(X), request(X * 3, meta={"puid": "p2"})]))
    np.testing.assert_array_equal(result.data, [[2.0, 4.0]])
    assert result.meta == {"puid": "p1"}


FEEDBACK = """
class Model:
    def __init__(self):
        self.seen = None

    def predict(self, X, names):
        return X

    def send_feedback(self, features, feature_names, reward, truth, routing=None):
        self.seen = (features.tolist(), feature_names, reward, truth, routing)
        return {returns}
"""


def feedback(reward: float = 1.0, routing: dict[str, int] | None = None) -> Feedback:
    return Feedback(request(), None, Payload("yes"), reward, routing or {})


def test_send_feedback_gets_the_request_reward_truth_and_its_routing(python_component: Make) -> None:
    component = python_component(FEEDBACK.format(returns="None"))
    result = asyncio.run(component.send_feedback(feedback(0.5, {"m": 2, "other": 0})))
    assert component.obj.seen == ([[1.0, 2.0]], ["a", "b"], 0.5, "yes", 2)
    assert result.data == []


@pytest.mark.parametrize(
    "signature",
    [
        "def send_feedback(self, features, feature_names, reward, truth):",
        "async def send_feedback(self, features, feature_names, reward, truth):",
        "def send_feedback(self, features, feature_names, reward, truth, **kwargs):",
    ],
)
def test_send_feedback_without_routing_is_called_without_it(python_component: Make, signature: str) -> None:
    component = python_component(
        f"""
        class Model:
            {signature}
                self.seen = (reward, truth)
        """
    )
    asyncio.run(component.send_feedback(feedback(0.75, {"m": 1})))
    assert component.obj.seen == (0.75, "yes")


def test_send_feedback_may_answer(python_component: Make) -> None:
    component = python_component(FEEDBACK.format(returns="[[reward]]"))
    assert asyncio.run(component.send_feedback(feedback(0.25))).data == [[0.25]]


def test_send_feedback_is_optional(python_component: Make) -> None:
    component = python_component(ECHO)
    assert asyncio.run(component.send_feedback(feedback())).data == []


TAGGED = """
class Response:
    def __init__(self, data, tags, metrics):
        self.data, self.tags, self.metrics = data, tags, metrics


class Model:
    def __init__(self, metrics):
        self._metrics = metrics

    def predict(self, X, names):
        return Response(X, {"from": "result", "shared": "result"}, [{"type": "GAUGE", "key": "g", "value": 2}])

    def tags(self):
        return {"from_tags": 1, "shared": "tags"}

    def metrics(self):
        return self._metrics
"""


def test_tags_and_metrics_are_merged_into_meta(python_component: Make) -> None:
    component = python_component(TAGGED, metrics=[{"type": "COUNTER", "key": "c", "value": 1}])
    result = predict(component, request(meta={"puid": "p", "tags": {"from_request": True, "shared": "request"}}))
    np.testing.assert_array_equal(result.data, X)
    assert result.meta["puid"] == "p"
    assert result.meta["tags"] == {"from_request": True, "from_tags": 1, "from": "result", "shared": "result"}
    assert [metric["key"] for metric in result.meta["metrics"]] == ["c", "g"]


@pytest.mark.parametrize("request_meta", [{"puid": "p"}, {"puid": "p", "tags": {}}, {"puid": "p", "tags": {"a": 1}}])
def test_a_class_without_tags_or_metrics_passes_the_request_meta_on(
    python_component: Make, request_meta: dict[str, Any]
) -> None:
    component = python_component("class Model:\n    def transform_input(self, X, names):\n        return X\n")
    result = asyncio.run(component.transform_input(request(meta=request_meta)))
    assert result.meta == request_meta
    assert result.meta is not request_meta


@pytest.mark.parametrize(
    "metrics",
    [[{"type": "HISTOGRAM", "key": "c", "value": 1}], [{"type": "GAUGE", "key": "c", "value": "high"}], ["c"]],
)
def test_bad_metrics_are_a_model_error(python_component: Make, metrics: list[Any]) -> None:
    component = python_component(TAGGED, metrics=metrics)
    with pytest.raises(ModelError, match=r"m\.metrics returned"):
        predict(component)


def test_init_metadata_describes_the_model(python_component: Make) -> None:
    component = python_component(
        """
        class Model:
            def predict(self, X):
                return X

            def init_metadata(self):
                return {
                    "name": "iris",
                    "versions": ["v1", 2],
                    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}, {"messagetype": "ndarray"}],
                    "custom": {"author": "me"},
                }
        """
    )
    metadata = component.metadata()
    assert metadata.v2() == {
        "name": "iris",
        "versions": ["v1", "2"],
        "platform": "python",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [],
        "parameters": {"author": "me"},
    }
    v1 = metadata.v1()
    assert v1["inputs"][1] == {"messagetype": "ndarray"}
    assert v1["custom"] == {"author": "me"}


def test_metadata_defaults_to_the_served_name(python_component: Make) -> None:
    component = python_component(ECHO)
    assert component.metadata().v1() == {"name": "m", "versions": [], "platform": "python", "inputs": [], "outputs": []}


def test_health_status_is_reported(python_component: Make) -> None:
    component = python_component(ECHO + "\n    def health_status(self):\n        return [1]\n")
    assert asyncio.run(component.health()) == [1]


def test_constructor_parameters_are_passed(python_component: Make) -> None:
    component = python_component(
        """
        class Model:
            def __init__(self, factor, offset=0):
                self.factor, self.offset = factor, offset

            def predict(self, X):
                return X * self.factor + self.offset
        """,
        factor=3,
        offset=1,
    )
    np.testing.assert_array_equal(predict(component).data, [[4.0, 7.0]])


SUBCLASS = """
import daneel


class Model(daneel.Model):
    def load(self):
        self.offset = self.parameters["offset"]

    def transform_input(self, X, names, meta):
        return X + self.offset
"""


def test_daneel_model_subclasses_implement_only_what_they_override(python_component: Make) -> None:
    component = python_component(SUBCLASS, offset=10)
    assert component.kind is Kind.TRANSFORMER
    assert component.raw_methods == frozenset()
    np.testing.assert_array_equal(asyncio.run(component.transform_input(request())).data, [[11.0, 12.0]])
    with pytest.raises(NotImplementedByModel, match="predict"):
        predict(component)
    assert asyncio.run(component.health()) is None


def test_async_load_is_awaited(python_component: Make) -> None:
    component = python_component(
        """
        import asyncio
        import daneel

        class Model(daneel.Model):
            async def load(self):
                await asyncio.sleep(0)
                self.ready = True

            async def predict(self, X, names, meta):
                return self.ready
        """
    )
    assert predict(component).data is True


@pytest.mark.parametrize(
    ("kind", "methods"),
    [
        (Kind.MODEL, ["predict", "route"]),
        (Kind.ROUTER, ["route", "send_feedback"]),
        (Kind.COMBINER, ["aggregate"]),
        (Kind.OUTPUT_TRANSFORMER, ["transform_output"]),
        (Kind.TRANSFORMER, ["transform_input_raw"]),
        (Kind.ROUTER, ["route_raw"]),
        (Kind.COMBINER, ["aggregate_raw"]),
    ],
)
def test_kind_follows_the_methods(python_component: Make, kind: Kind, methods: list[str]) -> None:
    body = "".join(f"    def {method}(self, *args):\n        return 0\n" for method in methods)
    assert python_component(f"class Model:\n{body}").kind is kind


def test_an_explicit_kind_wins(python_component: Make) -> None:
    component = python_component(ECHO, kind=Kind.ROUTER)
    assert component.kind is Kind.ROUTER


@pytest.mark.parametrize(
    ("source", "cls", "message"),
    [
        ("class Model:\n    def __init__(self):\n        raise OSError('no disk')\n", "Model", "no disk"),
        ("class Model:\n    def __init__(self, size):\n        pass\n", "Model", "size"),
        ("class Model:\n    def load(self):\n        raise RuntimeError('no weights')\n", "Model", "m.load raised"),
        ("import not_a_module_anywhere\n", "Model", "not_a_module_anywhere"),
        ("class Other:\n    pass\n", "Model", "no class 'Model'"),
    ],
)
def test_failures_while_loading_are_load_errors(python_component: Make, source: str, cls: str, message: str) -> None:
    component = python_component(source, cls, load=False)
    with pytest.raises(LoadError, match=message):
        asyncio.run(component.load())


def test_a_failing_constructor_names_its_parameters(python_component: Make) -> None:
    component = python_component(
        "class Model:\n    def __init__(self, size):\n        raise ValueError('too big')\n", load=False, size=9
    )
    with pytest.raises(LoadError, match=r"\(size=9\) failed: too big"):
        asyncio.run(component.load())


def test_models_are_read_one_at_a_time_in_a_process(python_component: Make, tmp_path: Path) -> None:
    """Two models loading at once read their code and files in turns (runtime/imports.LOADING): two threads
    importing one framework together can leave one with a partially initialised module."""
    trace = tmp_path / "trace"
    source = f"""
        import time

        class Model:
            def __init__(self, name):
                self.name = name

            def load(self):
                with open({str(trace)!r}, "a") as out:
                    out.write(f"start {{self.name}}\\n")
                time.sleep(0.2)  # long enough for the other load to begin, were they not in turns
                with open({str(trace)!r}, "a") as out:
                    out.write(f"end {{self.name}}\\n")

            def predict(self, X, names):
                return X
        """
    first, second = (python_component(source, load=False, name=name) for name in ("a", "b"))

    async def both() -> None:
        await asyncio.gather(first.load(), second.load())

    asyncio.run(both())
    steps = [line.split()[0] for line in trace.read_text().splitlines()]
    assert steps == ["start", "end", "start", "end"]
