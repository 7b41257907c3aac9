"""The documentation site in headless Chromium at 1400 px: every page's pictures load, and screenshots to look at."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .browser import SCREENSHOTS, css, wait
from .helpers import REPOSITORY

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

# The pictures of a page, and those that did not load (a broken one has no natural width).
IMAGES = "return document.querySelectorAll(arguments[0]).length"
BROKEN_IMAGES = """
return [...document.querySelectorAll(arguments[0])].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt);
"""
PAGES = {  # page of the built site -> its screenshot, and how many pictures it shows at least
    "index.html": ("docs_home.png", 1),
    "gallery/index.html": ("docs_gallery.png", 40),
    "reference/configuration/index.html": ("docs_configuration.png", 0),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site as `mkdocs build --strict` builds it."""
    folder = tmp_path_factory.mktemp("site")
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


@pytest.mark.parametrize("page", PAGES)
def test_the_sites_pages_show_their_pictures(browser, site, page):
    browser.get((site / page).as_uri())
    css(browser, "article h1")
    wait(browser, lambda driver: driver.execute_script("return document.readyState") == "complete")
    screenshot, pictures = PAGES[page]
    assert browser.execute_script(IMAGES, "article img") >= pictures
    assert browser.execute_script(BROKEN_IMAGES, "article img") == []
    browser.save_screenshot(str(SCREENSHOTS / screenshot))


def test_the_gallerys_report_opens_with_its_figures(browser, site):
    browser.get((site / "gallery" / "tabular_classifier" / "report.html").as_uri())
    wait(browser, lambda driver: "mlflow_explain report" in driver.find_element("tag name", "h1").text)
    assert browser.execute_script(IMAGES, "img") > 3 and browser.execute_script(BROKEN_IMAGES, "img") == []
    browser.save_screenshot(str(SCREENSHOTS / "docs_gallery_report.png"))
