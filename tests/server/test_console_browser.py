"""The console in a real headless Chromium, driven through Debian's chromedriver by selenium.

Each test serves the examples with a real `daneel serve`, opens the page and checks what a user
sees: the models and graphs, a try-it request that round-trips, figures that move once traffic
is sent, and no errors in the browser's console. With DANEEL_SCREENSHOTS=FOLDER set the tests
save the screenshots docs/console.md shows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
#: How long the page may take to show what the server has: it polls every 2 to 5 seconds.
WAIT_S = 30
ROW = [5.1, 3.5, 1.4, 0.2]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs chromium and chromedriver on PATH (Debian: apt-get install -y chromium chromium-driver)",
)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="daneel-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(browser: WebDriver, what: str, check: Callable[[WebDriver], Any]) -> Any:
    try:
        return WebDriverWait(browser, WAIT_S, 0.25, (StaleElementReferenceException,)).until(check)
    except TimeoutException:
        pytest.fail(f"the page never showed {what}; browser log: {browser.get_log('browser')}")


def text(browser: WebDriver, css: str) -> str:
    """The text an element shows; the page redraws its tables every few seconds, so an element found
    may be gone a moment later: then it is found again."""
    for _ in range(10):
        found = browser.find_elements(By.CSS_SELECTOR, css)
        try:
            return str(found[0].text) if found else ""
        except StaleElementReferenceException:
            continue
    pytest.fail(f"{css} was redrawn on every try")


def click(browser: WebDriver, css: str) -> None:
    """Click an element in one step, found and clicked in the page: it cannot be redrawn in between."""
    assert browser.execute_script("const e = document.querySelector(arguments[0]); e?.click(); return !!e", css)


def moving(value: str) -> bool:
    """Whether a figure the page shows (requests per second) is a number above zero."""
    try:
        return float(value.split()[0]) > 0
    except (ValueError, IndexError):
        return False


def no_errors(browser: WebDriver) -> None:
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []


def screenshot(browser: WebDriver, name: str, traffic: Callable[[], None]) -> None:
    """With DANEEL_SCREENSHOTS=FOLDER, send `traffic` for half a minute, so that the charts have a shape, and
    save the whole page as FOLDER/name."""
    folder = os.environ.get("DANEEL_SCREENSHOTS")
    if not folder:
        return
    for burst in range(15):
        for _ in range(5 + 3 * (burst % 4)):
            traffic()
        time.sleep(2)
    Path(folder).mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(2400, max(1000, int(height) + 140)))
    browser.execute_script("window.scrollTo(0, 0)")
    time.sleep(1)
    browser.save_screenshot(str(Path(folder) / name))


def try_it(browser: WebDriver, model: str, protocol: str = "v2") -> None:
    click(browser, f"#models tr[data-model='{model}'] button")
    click(browser, f"input[name=protocol][value={protocol}]")
    click(browser, "#try-send")
    wait_for(browser, "the try-it answer", lambda b: text(b, "#try-status").startswith("200"))


def test_the_iris_model_is_shown_tried_and_its_request_rate_moves(
    serve: Any, examples: Path, tmp_path: Path, browser: WebDriver
) -> None:
    server = serve(examples / "iris", "--request-log", str(tmp_path / "requests.jsonl"))
    browser.get(server.url + "/")
    wait_for(browser, "iris ready", lambda b: text(b, "#models tr[data-model=iris] .badge") == "READY")
    row = text(browser, "#models tr[data-model=iris]")
    assert "SKLEARN_SERVER" in row
    assert "input-0 FP64 [-1, 4]" in row

    try_it(browser, "iris")
    assert "predict_proba" in text(browser, "#try-answer")
    assert text(browser, "#try-time").endswith(" ms")

    def traffic() -> None:
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
        assert requests.post(f"{server.url}/v2/models/iris/infer", json=body, timeout=10).status_code == 200

    for _ in range(40):
        traffic()
    rate = "#models tr[data-model=iris] [data-figure=rate]"
    wait_for(browser, "a request rate above 0", lambda b: moving(text(b, rate)))
    wait_for(browser, "the chart", lambda b: b.find_elements(By.CSS_SELECTOR, "#charts .chart polyline"))
    wait_for(browser, "the logged requests", lambda b: len(b.find_elements(By.CSS_SELECTOR, "#recent tbody tr")) >= 2)
    assert "predict_proba" in text(browser, "#recent tbody")
    no_errors(browser)
    screenshot(browser, "console-iris.png", traffic)


def test_an_ab_test_shows_both_arms_side_by_side(serve: Any, examples: Path, browser: WebDriver) -> None:
    server = serve(examples / "deployments" / "abtest.yaml")
    browser.get(server.url + "/console")
    for arm, share in (("main", "75%"), ("candidate", "25%")):
        header = f".predictor[data-predictor={arm}] header"
        wait_for(browser, f"predictor {arm}", lambda b, header=header: text(b, header))
        assert text(browser, header) == f"{arm}\n{share}" or text(browser, header) == f"{arm} {share}"
        assert "classifier" in text(browser, f".predictor[data-predictor={arm}] .node")

    try_it(browser, "iris-abtest", "seldon")
    assert text(browser, "#try-predictor").split()[-1] in ("main", "candidate")

    def traffic() -> None:
        answer = requests.post(f"{server.url}/api/v1.0/predictions", json={"data": {"ndarray": [ROW]}}, timeout=10)
        assert answer.status_code == 200

    for _ in range(60):
        traffic()
    for arm in ("main", "candidate"):
        css = f".predictor[data-predictor={arm}] [data-figure=rate]"
        wait_for(browser, f"{arm}'s request rate above 0", lambda b, css=css: moving(text(b, css)))
    no_errors(browser)
    screenshot(browser, "console-abtest.png", traffic)


def test_a_bandits_graph_and_its_arms_are_shown(serve: Any, examples: Path, tmp_path: Path, browser: WebDriver) -> None:
    server = serve(examples / "deployments" / "bandit.yaml", env={"DANEEL_STATE_DIR": str(tmp_path)})
    browser.get(server.url + "/")
    wait_for(browser, "the router", lambda b: text(b, "[data-node=bandit]"))
    assert text(browser, "[data-node=bandit] .type") == "ROUTER"
    assert "EPSILON_GREEDY" in text(browser, "[data-node=bandit]")
    for child in ("probabilities", "classes"):
        assert "SKLEARN_SERVER" in text(browser, f"[data-node={child}]")

    def traffic() -> None:
        request = {"data": {"ndarray": [ROW]}}
        answer = requests.post(f"{server.url}/api/v1.0/predictions", json=request, timeout=10).json()
        feedback = {"request": request, "response": answer, "reward": 1.0}
        assert requests.post(f"{server.url}/api/v1.0/feedback", json=feedback, timeout=10).status_code == 200

    for _ in range(20):
        traffic()
    wait_for(browser, "the bandit's arms", lambda b: len(b.find_elements(By.CSS_SELECTOR, "#routers tbody tr")) >= 1)
    arms = text(browser, "#routers tbody")
    assert "bandit" in arms
    assert "1.000" in arms  # every reward was 1
    no_errors(browser)
    screenshot(browser, "console-bandit.png", traffic)


@pytest.fixture
def guarded(serve: Any, examples: Path, tmp_path: Path) -> Any:
    """iris served with a token guarding the repository (the console's data) and inference (try-it)."""
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    return serve(examples / "iris", "--auth-token-file", str(token), "--auth-protect", "repository,inference")


def test_a_401_asks_for_the_token_which_every_later_call_carries(guarded: Any, browser: WebDriver) -> None:
    browser.get(guarded.url + "/")
    wait_for(browser, "the token field", lambda b: b.find_element(By.ID, "token-bar").is_displayed())
    assert browser.find_elements(By.CSS_SELECTOR, "#models tbody tr") == []
    browser.find_element(By.ID, "token").send_keys("s3cret")
    browser.find_element(By.CSS_SELECTOR, "#token-bar button").click()
    wait_for(browser, "iris ready", lambda b: text(b, "#models tr[data-model=iris] .badge") == "READY")
    assert not browser.find_element(By.ID, "token-bar").is_displayed()
    assert browser.execute_script("return sessionStorage.getItem('daneel-console-token')") == "s3cret"

    try_it(browser, "iris")  # a 200: inference is guarded too, so the request carried the token
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors and all("401" in message for message in errors)  # the calls made before the token was given
