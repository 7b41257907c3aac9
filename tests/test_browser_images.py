"""Issue 24 item 3 in Chromium at 1400 px: a digits CNN's Grad-CAM and Integrated Gradients figures in its report.

Each figure is shown at its own size (so its 11 px captions stay 11 px), ends below its last row (no
blank half), and keeps every text inside; screenshots in test-artifacts/ (gradcam_figure.png,
integrated_gradients_figure.png).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from xml.etree import ElementTree

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from .browser import SCREENSHOTS, check_figures, wait

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.torch, pytest.mark.slow]

_WHITE = 250  # a screenshot row whose every channel is at least this is blank


def _explained_digits(folder: Path):
    """A small CNN trained on scikit-learn's digits, explained by Grad-CAM and Integrated Gradients (32 images shown).

    Returns the explanation and its report, downloaded into ``folder``.
    """
    pytest.importorskip("captum")
    import torch

    import mlflow_explain
    from tests.gradcam_models import digits_split, trained_digits_cnn

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        X_train, X_val, y_train, y_val = digits_split()
        model = trained_digits_cnn(X_train, y_train, epochs=8)
        with mlflow.start_run() as run:
            explanation = mlflow_explain.explain_images(
                model,
                X_val,
                y_val,
                class_names=[str(digit) for digit in range(10)],
                config={"gradcam": {"methods": ["gradcam", "integrated_gradients"]}},
            )
    finally:
        torch.set_num_threads(threads)
    assert explanation.status == "ok"
    return explanation, Path(MlflowClient().download_artifacts(run.info.run_id, "explain/report.html", str(folder)))


def _caption_size(src: str) -> float:
    """The smallest caption font size (px) inside an SVG figure given as a data URI."""
    root = ElementTree.fromstring(base64.b64decode(src.split(",", 1)[1]))
    sizes = [float(node.get("font-size")) for node in root.iter("{http://www.w3.org/2000/svg}text")]
    return min(sizes)


def _blank_rows_below(png: bytes) -> int:
    """Rows at the bottom of a screenshot with nothing drawn on them."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    drawn = np.flatnonzero((pixels < _WHITE).any(axis=(1, 2)))
    return len(pixels) - 1 - int(drawn.max()) if len(drawn) else len(pixels)


def test_image_figures_in_the_report_are_laid_out_for_a_person(browser, tracking_uri, tmp_path):
    from mlflow_explain.output import image_plots

    explanation, report = _explained_digits(tmp_path)
    browser.get(report.as_uri())
    wait(browser, lambda d: "mlflow_explain report" in d.find_element("tag name", "h1").text)
    header = browser.find_element("tag name", "table").text
    assert "Images explained 540 of the 540 passed; 32 in the figures" in header and "Classes 10" in header
    assert "Features" not in header

    figures = [
        img
        for img in browser.find_elements("css selector", "img")
        if img.get_attribute("alt").startswith(("gradcam/", "integrated_gradients/"))
    ]
    assert len(figures) >= 2 * 3, "class grids, misclassified and mean heatmaps of both methods"
    for figure in figures:
        name = figure.get_attribute("alt")
        browser.execute_script("arguments[0].scrollIntoView()", figure)
        natural, shown = browser.execute_script(
            "return [arguments[0].naturalWidth, arguments[0].getBoundingClientRect().width]", figure
        )
        assert natural > 100, f"{name} decoded as an image"
        caption_px = _caption_size(figure.get_attribute("src")) * shown / natural
        assert caption_px >= 10, f"{name}: captions {caption_px:.1f} px at the report's width"
        blank = _blank_rows_below(figure.screenshot_as_png)
        assert blank <= 10, f"{name}: {blank} blank rows below its content"

    for name, shot in (
        ("gradcam/class_8.svg", "gradcam_figure.png"),
        ("integrated_gradients/class_8.svg", "integrated_gradients_figure.png"),
    ):
        figure = next(img for img in figures if img.get_attribute("alt") == name)
        browser.execute_script("arguments[0].scrollIntoView(); window.scrollBy(0, -160)", figure)
        browser.save_screenshot(str(SCREENSHOTS / shot))

    figures = {
        name: grid for result in explanation.image_results for name, grid in image_plots.image_figures(result).items()
    }
    check_figures(browser, figures, tmp_path, {"gradcam/mean_heatmaps.svg": "gradcam_mean_heatmaps.png"})
