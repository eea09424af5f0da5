import pytest

from daneel.errors import LoadError
from daneel.spec import InvalidDeployment, Problem
from daneel.spec.problems import path


@pytest.mark.parametrize(
    ("loc", "text"),
    [
        ((), ""),
        (("spec",), "spec"),
        (
            ("spec", "predictors", 1, "graph", "children", 0, "modelUri"),
            "spec.predictors[1].graph.children[0].modelUri",
        ),
        (("metadata", "annotations", "seldon.io/rest-timeout"), 'metadata.annotations["seldon.io/rest-timeout"]'),
        (("spec", "predictors", 0, "labels", "app-version"), "spec.predictors[0].labels.app-version"),
    ],
)
def test_paths_read_as_in_the_file(loc: tuple[str | int, ...], text: str) -> None:
    assert path(loc) == text


def test_an_invalid_deployment_is_a_load_error_with_a_line_per_problem() -> None:
    error = InvalidDeployment(
        "d.yaml",
        [
            Problem(("spec", "predictors", 0, "traffic"), "expected 100", 9),
            Problem((), "empty file"),
            Problem(("kind",), "expected X"),
        ],
    )
    assert isinstance(error, LoadError)
    assert error.message.splitlines() == [
        "d.yaml:9: spec.predictors[0].traffic: expected 100",
        "d.yaml: empty file",
        "d.yaml: kind: expected X",
    ]
    assert [problem.path for problem in error.problems] == ["spec.predictors[0].traffic", "", "kind"]
