"""GET /openapi.json, a model's own document and GET /docs: built from the route table, valid OpenAPI 3.1,
and true of a real `daneel serve`, which schemathesis fuzzes against them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from conftest import Server, Servers
from daneel.dataplane.dataplane import DataPlane
from daneel.dataplane.repository import Repository
from daneel.observe.metrics import Registry
from daneel.observe.telemetry import ServerMetrics, Telemetry
from daneel.server import openapi
from daneel.server.rest import RestApp

IRIS_METADATA = {
    "name": "iris",
    "versions": [],
    "platform": "sklearn",
    "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
    "outputs": [{"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}],
}
SCHEMATHESIS = Path(sys.executable).with_name("st")
#: What schemathesis checks of every answer; a 5xx is judged apart, from the recorded exchanges.
CHECKS = "status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance"


def app(metrics: bool = True) -> RestApp:
    telemetry = Telemetry(metrics=ServerMetrics(Registry())) if metrics else Telemetry()
    return RestApp(DataPlane(Repository([]), telemetry))


def document(rest: RestApp) -> dict[str, Any]:
    return openapi.document(rest.templates(), rest.is_seldon)


@pytest.mark.parametrize("metrics", [True, False])
def test_the_document_is_valid_openapi_3_1(metrics: bool) -> None:
    doc = document(app(metrics))
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    assert ("/metrics" in doc["paths"]) is metrics


def test_every_route_is_in_the_document_and_behind_the_gateway() -> None:
    rest = app()
    paths = document(rest)["paths"]
    for template, method in rest.templates():
        for path in (template, openapi.GATEWAY + template):
            assert method.lower() in paths[path], f"{method} {path}"
    served = {(t, m.lower()) for t, m in rest.templates()}
    listed = {(p, m) for p, ops in paths.items() for m in ops if not p.startswith(openapi.GATEWAY)}
    assert listed == served


def test_a_route_added_without_a_document_entry_fails_the_document() -> None:
    rest = app()
    rest.routes["/api/v1.0/explain"] = {"POST": rest.routes["/predict"]["POST"]}
    with pytest.raises(LookupError, match=r"POST /api/v1.0/explain is served but has no entry"):
        document(rest)


def test_templates_lead_to_the_routes_they_name() -> None:
    rest = app()
    for template, method in rest.templates():
        concrete = template.replace("{model_name}", "iris").replace("{model_version}", "1")
        route = rest.route(concrete)
        assert route.methods is not None and method in route.methods, template


def test_errors_take_the_shape_of_the_paths_protocol() -> None:
    paths = document(app())["paths"]
    ref = "#/components/schemas/"

    def error_schema(path: str, method: str, status: str) -> str:
        return str(paths[path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"])

    assert error_schema("/v2/models/{model_name}/infer", "post", "400") == ref + "V2Error"
    assert error_schema("/api/v1.0/predictions", "post", "400") == ref + "SeldonError"
    assert error_schema(openapi.GATEWAY + "/v2/health/ready", "get", "503") == ref + "V2Error"
    # Every status the error table maps to is one an inference request may answer.
    infer = paths["/v2/models/{model_name}/infer"]["post"]["responses"]
    assert set(infer) == {"200", "400", "404", "413", "422", "500", "501", "503", "504"}
    assert "Retry-After" in infer["503"]["headers"]


def test_seldon_model_side_paths_take_the_message_as_a_body_or_a_query_parameter() -> None:
    paths = document(app())["paths"]
    post, get = paths["/aggregate"]["post"], paths["/aggregate"]["get"]
    assert set(post["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/SeldonMessageList")
    (query,) = get["parameters"]
    assert (query["name"], query["in"]) == ("json", "query")


def test_a_models_document_types_its_inputs_and_outputs() -> None:
    rest = app()
    doc = openapi.model_document(IRIS_METADATA, rest.templates(), rest.is_seldon)
    validate(doc)
    assert set(doc["paths"]) == {"/v2/models/iris", "/v2/models/iris/ready", "/v2/models/iris/infer"} | {
        "/v2/models/iris/openapi.json"
    }
    schemas = doc["components"]["schemas"]
    tensor = schemas["InferenceRequest"]["properties"]["inputs"]["items"]["properties"]
    assert tensor["name"] == {"const": "input-0"}
    assert tensor["datatype"] == {"const": "FP64"}
    assert tensor["shape"]["prefixItems"] == [{"type": "integer", "minimum": 0}, {"const": 4}]
    declared, generic = schemas["InferenceResponse"]["properties"]["outputs"]["items"]["anyOf"]
    assert declared["properties"]["name"] == {"const": "predict_proba"}
    assert declared["properties"]["data"]["items"] == {"type": ["number", "null"]}
    assert generic == {"$ref": "#/components/schemas/ResponseOutput"}
    (example,) = schemas["InferenceRequest"]["examples"]
    assert example == {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [0, 0, 0, 0]}]}


def test_a_model_with_versions_and_several_tensors() -> None:
    rest = app()
    metadata = {
        "name": "a b",
        "versions": ["1", "2"],
        "inputs": [
            {"name": "text", "datatype": "BYTES", "shape": [-1]},
            {"name": "mask", "datatype": "BOOL", "shape": [-1]},
        ],
        "outputs": [],
    }
    doc = openapi.model_document(metadata, rest.templates(), rest.is_seldon)
    validate(doc)
    assert "/v2/models/a%20b/versions/{model_version}/infer" in doc["paths"]
    assert doc["components"]["parameters"]["model_version"]["schema"] == {"enum": ["1", "2"]}
    inputs = doc["components"]["schemas"]["InferenceRequest"]["properties"]["inputs"]
    assert inputs["maxItems"] == 2
    assert [t["properties"]["data"]["items"] for t in inputs["items"]["anyOf"]] == [
        {"type": "string"},
        {"type": "boolean"},
    ]
    # No outputs declared: the response keeps the generic schema.
    assert "InferenceResponse" in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["ResponseOutput"]["properties"]["name"] == {"type": "string"}


# A real server


@pytest.fixture(scope="module")
def iris_server(module_serve: Servers, examples: Path) -> Server:
    return module_serve(examples / "iris", "--no-grpc")


@pytest.fixture(scope="module")
def abtest_server(module_serve: Servers, examples: Path) -> Server:
    return module_serve(examples / "deployments" / "abtest.yaml", "--no-grpc")


def test_the_served_document_is_the_one_built_from_the_table(iris_server: Server) -> None:
    served = requests.get(f"{iris_server.url}/openapi.json", timeout=10)
    assert served.status_code == 200 and served.headers["content-type"] == "application/json"
    validate(served.json())
    assert served.json() == json.loads(json.dumps(document(app())))
    behind = requests.get(f"{iris_server.url}/seldon/ns/iris/openapi.json", timeout=10)
    assert behind.json() == served.json()


def test_the_served_model_document(iris_server: Server) -> None:
    doc = requests.get(f"{iris_server.url}/v2/models/iris/openapi.json", timeout=10).json()
    validate(doc)
    assert doc["components"]["schemas"]["InferenceRequest"]["properties"]["inputs"]["items"]["properties"]["name"] == {
        "const": "input-0"
    }
    missing = requests.get(f"{iris_server.url}/v2/models/nope/openapi.json", timeout=10)
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


def test_docs_is_a_page_that_needs_nothing_from_elsewhere(iris_server: Server) -> None:
    page = requests.get(f"{iris_server.url}/docs", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert '"openapi.json"' in page.text
    assert "http://" not in page.text and "https://" not in page.text and "//cdn" not in page.text
    assert requests.get(f"{iris_server.url}/docs", timeout=10).content == page.content


@pytest.mark.skipif(shutil.which("chromedriver") is None, reason="needs Chromium and its driver")
def test_docs_sends_a_request_from_the_browser(iris_server: Server) -> None:
    """The page in headless Chromium: its operations listed, a prefilled inference request sent, no console errors."""
    pytest.importorskip("selenium", reason="the browser tests' driver")  # the console's tests bring it
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    try:
        driver.get(f"{iris_server.url}/docs")
        wait = WebDriverWait(driver, 30)
        infer = '//details[@data-path="/v2/models/{model_name}/infer"]'
        operation = wait.until(lambda d: d.find_element(By.XPATH, infer))
        operation.find_element(By.TAG_NAME, "summary").click()
        assert operation.find_element(By.TAG_NAME, "input").get_attribute("value") == "iris"  # the first model
        operation.find_element(By.TAG_NAME, "button").click()
        status = wait.until(lambda d: operation.find_element(By.CSS_SELECTOR, ".status"))
        assert status.text == "200"
        assert '"model_name": "iris"' in operation.find_element(By.CSS_SELECTOR, ".answer pre").text
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        driver.quit()


def test_a_clients_malformed_metrics_pass_through_a_transform_unharmed(iris_server: Server) -> None:
    """Found by schemathesis: meta.metrics holding a list instead of objects was a 500."""
    body = {"data": {"ndarray": [[1, 2, 3, 4]]}, "meta": {"metrics": [[None, None]]}}
    answer = requests.post(f"{iris_server.url}/transform-input", json=body, timeout=10)
    assert answer.status_code == 200, answer.text


# Schemathesis against real servers: every answer as documented, and no 5xx but the 501s of
# methods the component lacks (the iris model has no route or aggregate).


def fuzz(url: str, tmp_path: Path, *options: str, phases: str = "examples,coverage,fuzzing", examples: int = 5) -> Any:
    """Run schemathesis against the document at `url`, with at most `examples` random cases an operation
    (the coverage phase adds its own, one for each edge of each schema); the exchanges it recorded."""
    har = tmp_path / "exchanges.har"
    command = [
        str(SCHEMATHESIS),
        "run",
        url,
        "--checks",
        CHECKS,
        "--phases",
        phases,
        "--max-examples",
        str(examples),
        "--seed",
        "20261208",
        "--generation-database",
        "none",
        "--request-timeout",
        "10",
        "--workers",
        "1",  # CPython 3.11.7's ast.parse, which Hypothesis calls, is not safe in threads (SystemError)
        "--no-color",
        "--report",
        "har",
        "--report-har-path",
        str(har),
        *options,
    ]
    # In tmp_path: schemathesis keeps a cache of crashes in the folder it runs in.
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    assert entries
    return entries


def server_errors(entries: list[dict[str, Any]]) -> Iterator[str]:
    for entry in entries:
        status, text = entry["response"]["status"], entry["response"]["content"].get("text", "")
        if status >= 500 and not (status == 501 and "does not implement" in text):
            yield f"{entry['request']['method']} {entry['request']['url']}: {status} {text[:300]}"


def test_schemathesis_finds_the_server_as_documented(iris_server: Server, tmp_path: Path) -> None:
    # Left out: twins that reach the same handler and decoder as an operation that is run (the gateway's,
    # Seldon's v0.1 paths, the GET form of model-side paths but /predict's), and unloading the model, which
    # would turn the rest of the run into 503s (the repository API has tests of its own).
    twins = "(_v0_1|^(transform_input|transform_output|route|aggregate|send_feedback)_get)$"
    skipped = ("--exclude-tag", "gateway", "--exclude-operation-id-regex", twins)
    skipped += ("--exclude-operation-id", "unload_model")
    entries = fuzz(f"{iris_server.url}/openapi.json", tmp_path, *skipped, examples=3)
    assert list(server_errors(entries)) == []
    assert {e["response"]["status"] for e in entries} >= {200, 400, 404}


def test_schemathesis_finds_the_model_as_its_own_document_says(iris_server: Server, tmp_path: Path) -> None:
    entries = fuzz(f"{iris_server.url}/v2/models/iris/openapi.json", tmp_path)
    assert list(server_errors(entries)) == []
    assert any(e["response"]["status"] == 200 and e["request"]["method"] == "POST" for e in entries)


def test_schemathesis_finds_a_deployment_as_documented(abtest_server: Server, tmp_path: Path) -> None:
    inference = "^/(api/v1.0/predictions|v2/models/\\{model_name\\}/infer)$"
    entries = fuzz(f"{abtest_server.url}/openapi.json", tmp_path, "--include-path-regex", inference, phases="fuzzing")
    entries += fuzz(f"{abtest_server.url}/v2/models/iris-abtest/openapi.json", tmp_path, "--include-method", "POST")
    assert list(server_errors(entries)) == []


def test_both_arms_of_an_ab_test_answer_as_the_deployments_document_says(abtest_server: Server) -> None:
    """The metadata declares the first predictor's outputs; the candidate answers with others, still documented."""
    doc = requests.get(f"{abtest_server.url}/v2/models/iris-abtest/openapi.json", timeout=10).json()
    validator = Draft202012Validator({**doc, "$ref": "#/components/schemas/InferenceResponse"})
    (example,) = doc["components"]["schemas"]["InferenceRequest"]["examples"]
    outputs: dict[str, set[str]] = {}
    for _ in range(200):
        answer = requests.post(f"{abtest_server.url}/v2/models/iris-abtest/infer", json=example, timeout=10).json()
        validator.validate(answer)
        outputs.setdefault(answer["parameters"]["predictor"], set()).add(answer["outputs"][0]["name"])
        if len(outputs) == 2:
            break
    assert outputs == {"main": {"predict_proba"}, "candidate": {"predict"}}
