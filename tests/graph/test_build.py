from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daneel.errors import LoadError
from daneel.graph.build import BuildContext, build_graph
from daneel.graph.executor import Graph
from daneel.graph.remote import RemoteComponent
from daneel.graph.state import Branch, SqliteStore
from daneel.protocol.v1 import Feedback
from daneel.spec.model import Predictor

from .helpers import request, run

SCALE = """
class Scale:
    def __init__(self, factor=10.0):
        self.factor = factor

    def transform_input(self, X, names):
        return X * self.factor
"""
TOTAL = """
class Total:
    def predict(self, X, names):
        return X.sum(axis=1, keepdims=True)
"""


def predictor(graph: dict[str, Any], **fields: Any) -> Predictor:
    return Predictor.model_validate({"name": "p", "graph": graph, **fields})


def loaded(predictor: Predictor, context: BuildContext) -> Graph:
    graph = build_graph(predictor, context)
    run(graph.load())
    return graph


def test_a_transformer_and_a_model_from_folders_relative_to_the_deployment(make_model: Callable[..., Path]) -> None:
    scale, total = make_model(SCALE, "scale"), make_model(TOTAL, "total")
    spec = predictor(
        {
            "name": "scale",
            "type": "TRANSFORMER",
            "modelUri": str(scale),
            "parameters": [{"name": "factor", "value": "2.5", "type": "FLOAT"}],
            "children": [{"name": "total", "type": "MODEL", "modelUri": "total"}],
        }
    )
    graph = loaded(spec, BuildContext(base_dir=total.parent))
    result = run(graph.predict(request()))
    np.testing.assert_array_equal(result.data, [[7.5]])
    assert result.meta["requestPath"] == {"scale": "model.Scale", "total": "model.Total"}
    assert [part.name for part in graph.parts()] == ["scale", "total"]


def test_a_prepackaged_server_and_a_folder_it_recognises(iris: Any) -> None:
    spec = predictor(
        {
            "name": "combiner",
            "implementation": "AVERAGE_COMBINER",
            "children": [
                {"name": "named", "implementation": "SKLEARN_SERVER", "modelUri": f"file://{iris.path}"},
                {"name": "recognised", "modelUri": str(iris.path)},
            ],
        }
    )
    result = run(loaded(spec, BuildContext()).predict(request(iris.X)))
    np.testing.assert_allclose(result.data, iris.model.predict_proba(iris.X))
    assert result.meta["requestPath"]["named"] == result.meta["requestPath"]["recognised"] == "SKLEARN_SERVER"


def test_a_model_uri_with_a_scheme_is_fetched(iris: Any) -> None:
    fetched: list[str] = []

    def fetch(uri: str) -> Path:
        fetched.append(uri)
        return Path(iris.path)

    spec = predictor({"name": "m", "implementation": "SKLEARN_SERVER", "modelUri": "s3://bucket/iris"})
    result = run(loaded(spec, BuildContext(fetch=fetch)).predict(request(iris.X)))
    assert fetched == ["s3://bucket/iris"]
    assert result.data.shape == (len(iris.X), 3)


def test_a_model_uri_with_a_scheme_needs_a_fetch() -> None:
    spec = predictor({"name": "m", "implementation": "SKLEARN_SERVER", "modelUri": "s3://bucket/iris"})
    with pytest.raises(LoadError, match=r"^m: s3://bucket/iris: cannot fetch"):
        build_graph(spec, BuildContext())


def test_an_import_path_is_found_beside_the_deployment(user_module: Callable[[str], tuple[Path, str]]) -> None:
    folder, module = user_module(TOTAL)
    spec = predictor({"name": "total", "implementation": f"{module}:Total"})
    result = run(loaded(spec, BuildContext(base_dir=folder)).predict(request()))
    np.testing.assert_array_equal(result.data, [[3.0]])


def test_an_image_only_node_is_served_from_the_components_folder(make_model: Callable[..., Path]) -> None:
    folder = make_model(TOTAL, "classifier")
    spec = predictor(
        {"name": "classifier", "type": "MODEL"},
        componentSpecs=[{"spec": {"containers": [{"name": "classifier", "image": "acme/classifier:1.0"}]}}],
    )
    result = run(loaded(spec, BuildContext(components_dir=folder.parent)).predict(request()))
    np.testing.assert_array_equal(result.data, [[3.0]])
    assert result.meta["requestPath"] == {"classifier": "acme/classifier:1.0"}


def test_an_image_only_node_without_its_folder_names_the_folder_expected(tmp_path: Path) -> None:
    spec = predictor({"name": "classifier", "type": "MODEL"})
    with pytest.raises(
        LoadError, match=rf"^classifier: no implementation, modelUri or endpoint, and no folder {tmp_path}/classifier"
    ):
        build_graph(spec, BuildContext(components_dir=tmp_path))
    with pytest.raises(LoadError, match=r"^classifier: no implementation, modelUri or endpoint; .* holds classifier/$"):
        build_graph(spec, BuildContext())


def test_the_folders_own_type_applies_when_the_node_has_none(make_model: Callable[..., Path]) -> None:
    folder = make_model(SCALE, "scale", files={"daneel.yaml": "type: TRANSFORMER\n"})
    result = run(loaded(predictor({"name": "scale", "modelUri": str(folder)}), BuildContext()).predict(request()))
    np.testing.assert_array_equal(result.data, [[10.0, 20.0]])


def test_methods_of_an_unknown_type_node_say_what_is_called(make_model: Callable[..., Path]) -> None:
    folder = make_model(SCALE, "scale")
    spec = predictor({"name": "scale", "type": "UNKNOWN_TYPE", "methods": ["TRANSFORM_INPUT"], "modelUri": str(folder)})
    np.testing.assert_array_equal(run(loaded(spec, BuildContext()).predict(request())).data, [[10.0, 20.0]])


def test_bandit_state_is_keyed_by_deployment_predictor_and_router(
    make_model: Callable[..., Path], sqlite_stores: Callable[[], SqliteStore]
) -> None:
    store = sqlite_stores()
    folder = make_model(TOTAL, "total")
    spec = predictor(
        {
            "name": "bandit",
            "implementation": "EPSILON_GREEDY",
            "parameters": [{"name": "epsilon", "value": "0", "type": "FLOAT"}],
            "children": [{"name": "one", "modelUri": str(folder)}, {"name": "two", "modelUri": str(folder)}],
        }
    )
    graph = loaded(spec, BuildContext(state=store, deployment="shop"))
    response = run(graph.predict(request()))
    assert response.meta["routing"] == {"bandit": 0}
    run(graph.send_feedback(Feedback(request(), response, None, 1.0, response.meta["routing"])))
    assert run(store.stats("shop/p/bandit", 2)) == [Branch(1, 1), Branch()]


def test_a_node_with_a_service_host_is_remote() -> None:
    spec = predictor({"name": "far", "endpoint": {"service_host": "10.0.0.7", "service_port": 9000, "type": "REST"}})
    graph = build_graph(spec, BuildContext(protocol="v2"))
    remote = graph.parts()[0]
    assert isinstance(remote, RemoteComponent)
    assert (remote.url, remote.protocol) == ("http://10.0.0.7:9000", "v2")


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        (
            {"name": "m", "implementation": "NO_SUCH_SERVER", "modelUri": "."},
            r"^m: unknown implementation NO_SUCH_SERVER; expected one of AVERAGE_COMBINER, .*SKLEARN_SERVER",
        ),
        ({"name": "m", "implementation": "SKLEARN_SERVER"}, r"^m: SKLEARN_SERVER needs modelUri"),
        ({"name": "m", "modelUri": "missing"}, r"^m: modelUri missing: .*/missing is not a folder$"),
        (
            {"name": "m", "implementation": "m:M", "parameters": [{"name": "k", "value": "x", "type": "INT"}]},
            r"^m: m\.parameters\[0\]\.value: 'x' is not a valid INT$",
        ),
        (
            {"name": "r", "implementation": "RANDOM_ABTEST", "children": [{"name": "c", "implementation": "m:M"}]},
            r"^r: RANDOM_ABTEST needs exactly 2 children, it has 1$",
        ),
    ],
)
def test_build_errors_name_the_node(tmp_path: Path, graph: dict[str, Any], message: str) -> None:
    with pytest.raises(LoadError, match=message):
        build_graph(predictor(graph), BuildContext(base_dir=tmp_path))
