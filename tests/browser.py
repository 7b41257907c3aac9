"""Headless Chromium for the browser tests: start it, wait, open runs and figures, keep text inside."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT_S = 120  # the UI is a React app fetching everything; a loaded CI machine is slow


def start_browser():
    """Headless Chromium driven by Selenium; the tests skip (with the reason) only when it cannot start."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip(f"{CHROMIUM} and {CHROMEDRIVER} are not installed (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",  # the report's and the UI's width the issues judge at
    ):
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as err:
        pytest.skip(f"Chromium cannot start here: {err.msg}")
    SCREENSHOTS.mkdir(exist_ok=True)
    return driver


def wait(driver, condition):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(condition)


def css(driver, selector: str, visible: bool = True):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    condition = (
        expected_conditions.visibility_of_element_located
        if visible
        else expected_conditions.presence_of_element_located
    )
    return wait(driver, condition((By.CSS_SELECTOR, selector)))


def open_run_page(driver, server_url: str, experiment_id: str, run_id: str, tail: str = "") -> None:
    """Load a run's page afresh (the UI reads an artifact path in the URL only when it mounts)."""
    driver.get("about:blank")
    driver.get(f"{server_url}/#/experiments/{experiment_id}/runs/{run_id}{tail}")


def open_report(driver, server_url: str, experiment_id: str, run_id: str):
    """Open explain/report.html in the run's artifact viewer and switch into the viewer's frame."""
    open_run_page(driver, server_url, experiment_id, run_id, "/artifacts/explain/report.html")
    driver.switch_to.frame(css(driver, "iframe.mlflow-html-iframe"))
    wait(driver, lambda d: "mlflow_explain report" in d.find_element("tag name", "h1").text)


TEXT_OUTSIDE = """
const svg = document.querySelector('svg'), box = svg.getBoundingClientRect();
return [...svg.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()]).filter(([, r]) =>
  r.left < box.left - 0.5 || r.top < box.top - 0.5 || r.right > box.right + 0.5 || r.bottom > box.bottom + 0.5
).map(([text]) => text);
"""


def check_figures(driver, figures: dict, folder: Path, screenshots: dict[str, str]) -> None:
    """Open every figure in Chromium: no text reaches outside its image; screenshot the ones named."""
    from mlflow_explain.output import plots

    outside = {}
    for name, figure in figures.items():
        path = folder / name.replace("/", "__")
        path.write_bytes(plots.render(figure))
        driver.get(path.as_uri())
        svg = css(driver, "svg")
        texts = driver.execute_script(TEXT_OUTSIDE)
        if texts:
            outside[name] = texts
        if name in screenshots:
            svg.screenshot(str(SCREENSHOTS / screenshots[name]))
    assert not outside, f"text outside the image: {outside}"
