"""A scikit-learn pipeline fitted on a DataFrame, served by `daneel serve`, called by column name.

The pipeline (tests/conftest.py's `people`) one-hot encodes a string column by name, so it must
receive a DataFrame: from Seldon rows with or without `data.names`, from `jsonData` columns or
records, and from V2 inputs named after its columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import requests
from tests.conftest import People, Servers

ROWS = [[33, "a", 2.2], [45, "b", 1.0], [23, "a", 3.5]]  # people.frame's rows
COLUMNS = {"age": [33, 45, 23], "city": ["a", "b", "a"], "score": [2.2, 1.0, 3.5]}
FITTED = "the model was fitted on age, city, score"


@pytest.fixture(scope="module")
def url(module_serve: Servers, people: People) -> str:
    return module_serve(people.path).url


@pytest.fixture(scope="module")
def expected(people: People) -> np.ndarray:
    assert people.frame.to_dict("list") == COLUMNS
    return np.asarray(people.model.predict_proba(people.frame))


def seldon(url: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(url + "/api/v1.0/predictions", json=body, timeout=30)


def infer(url: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(url + "/v2/models/people/infer", json=body, timeout=30)


@pytest.mark.parametrize(
    ("names", "order"),
    [(["age", "city", "score"], [0, 1, 2]), (["city", "score", "age"], [1, 2, 0]), ([], [0, 1, 2])],
    ids=["named", "named-in-another-order", "unnamed"],
)
def test_seldon_rows_reach_the_pipeline_as_a_dataframe(
    url: str, expected: np.ndarray, names: list[str], order: list[int]
) -> None:
    rows = [[row[i] for i in order] for row in ROWS]
    response = seldon(url, {"data": {"names": names, "ndarray": rows}})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["data"]["ndarray"], expected)


@pytest.mark.parametrize(
    "json_data",
    [COLUMNS, [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]],
    ids=["columns", "records"],
)
def test_seldon_json_data_reaches_the_pipeline_as_a_dataframe(url: str, expected: np.ndarray, json_data: Any) -> None:
    response = seldon(url, {"jsonData": json_data})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["data"]["ndarray"], expected)  # an array answers as data


def column_inputs(shape: list[int], city: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One V2 input per column, as MLServer's pandas codec sends them (in another order here)."""
    return [
        {"name": "score", "datatype": "FP64", "shape": shape, "data": COLUMNS["score"]},
        {"name": "city", "datatype": "BYTES", "shape": shape, "data": COLUMNS["city"], **(city or {})},
        {"name": "age", "datatype": "INT64", "shape": shape, "data": COLUMNS["age"]},
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": column_inputs([3])},
        {"inputs": column_inputs([3, 1])},
        {
            "parameters": {"content_type": "pd"},
            "inputs": column_inputs([3, 1], {"parameters": {"content_type": "str"}}),
        },
    ],
    ids=["inputs", "inputs-n-by-1", "pd"],
)
def test_v2_inputs_named_after_the_columns_reach_the_pipeline(
    url: str, expected: np.ndarray, body: dict[str, Any]
) -> None:
    response = infer(url, body)
    assert response.status_code == 200, response.text
    [output] = response.json()["outputs"]
    assert (output["name"], output["shape"]) == ("predict_proba", [3, 2])
    np.testing.assert_allclose(np.reshape(output["data"], (3, 2)), expected)


def test_v2_metadata_lists_the_columns(url: str) -> None:
    body = requests.get(url + "/v2/models/people", timeout=30).json()
    assert body["inputs"] == [
        {"name": "age", "datatype": "FP64", "shape": [-1]},
        {"name": "city", "datatype": "BYTES", "shape": [-1]},
        {"name": "score", "datatype": "FP64", "shape": [-1]},
    ]
    assert body["parameters"] == {"content_type": "pd"}


@pytest.mark.parametrize(
    ("body", "info"),
    [
        (
            {"data": {"names": ["age", "town", "score"], "ndarray": ROWS}},
            f"data: missing column(s) city; unknown column(s) town; {FITTED}",
        ),
        ({"data": {"names": ["age", "score"], "ndarray": [[33, 2.2]]}}, f"data: missing column(s) city; {FITTED}"),
        ({"data": {"ndarray": [[33, 2.2]]}}, "data: expected rows of 3 columns (age, city, score), got shape [1, 2]"),
        ({"jsonData": {"age": [33], "city": ["a"]}}, f"jsonData: missing column(s) score; {FITTED}"),
        (
            {"jsonData": [{"age": 33, "town": "a", "score": 2.2}]},
            f"jsonData[0]: missing column(s) city; unknown column(s) town; {FITTED}",
        ),
    ],
)
def test_seldon_columns_that_do_not_match_are_a_400_naming_them(url: str, body: dict[str, Any], info: str) -> None:
    response = seldon(url, body)
    assert response.status_code == 400
    assert response.json()["status"]["info"] == info


def test_v2_inputs_that_do_not_match_are_a_400_naming_them(url: str) -> None:
    inputs = [entry for entry in column_inputs([3]) if entry["name"] != "city"]
    inputs.append({"name": "town", "datatype": "BYTES", "shape": [3], "data": COLUMNS["city"]})
    response = infer(url, {"inputs": inputs})
    assert response.status_code == 400
    assert response.json() == {"error": f"input: missing column(s) city; unknown column(s) town; {FITTED}"}
