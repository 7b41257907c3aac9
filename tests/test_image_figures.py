"""Image figures laid out for a person (issue 24 item 3): no blank rows, readable captions, a row-high colour bar,
overlays that keep the image visible, Integrated Gradients signed red/blue, and an image run that speaks of images."""

from __future__ import annotations

import base64
import io
from xml.etree import ElementTree

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

import mlflow_explain

torch = pytest.importorskip("torch")
pytest.importorskip("captum")
pytestmark = pytest.mark.torch

from mlflow_explain.methods.gradcam import gradcam
from mlflow_explain.methods.integrated_gradients import integrated_gradients
from mlflow_explain.output import image_plots, plots
from tests.gradcam_models import CLASS_NAMES, pattern_images, trained_pattern_net

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def pattern_model():
    """A small CNN trained on generated pattern images, and 60 test images (some misclassified: a short training)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = trained_pattern_net(n_train=300, epochs=3)
    images, labels, _ = pattern_images(60, seed=1)
    yield model, images, labels
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def results(pattern_model):
    """Grad-CAM and Integrated Gradients of the same images, 24 of them shown."""
    model, images, labels = pattern_model
    return [method(model, images, labels, CLASS_NAMES, max_images=24) for method in (gradcam, integrated_gradients)]


def _figures(results) -> dict[str, ElementTree.Element]:
    return {
        name: ElementTree.fromstring(plots.render(figure))
        for result in results
        for name, figure in image_plots.image_figures(result).items()
    }


def _panels(root: ElementTree.Element, css_class: str = "panel") -> list[ElementTree.Element]:
    return [node for node in root.iter(f"{SVG}image") if node.get("class") == css_class]


def _pixels(node: ElementTree.Element) -> np.ndarray:
    encoded = node.get("href").split(",", 1)[1]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))), dtype=float) / 255


def test_every_kind_of_figure_is_drawn(results):
    names = set(_figures(results))
    for method in ("gradcam", "integrated_gradients"):
        assert {f"{method}/mean_heatmaps.svg", f"{method}/misclassified.svg"} <= names
        assert {f"{method}/class_{name}.svg" for name in CLASS_NAMES} <= names


def test_no_image_figure_is_taller_than_its_content(results):
    """The lowest panel ends one padding above the figure's bottom: no blank half below a single row."""
    for name, root in _figures(results).items():
        height = float(root.get("height"))
        bottoms = [float(node.get("y")) + float(node.get("height")) for node in root.iter(f"{SVG}image")]
        bottoms += [float(node.get("y")) for node in root.iter(f"{SVG}text")]
        assert 0 <= height - max(bottoms) <= 9, f"{name}: {height - max(bottoms):.0f} px blank below the content"


def test_captions_are_at_least_10_px_at_the_report_width(results):
    """A figure no wider than the report's content is shown at its own size, so its font sizes are the pixels read."""
    for name, root in _figures(results).items():
        width = float(root.get("width"))
        assert width <= image_plots.REPORT_WIDTH, f"{name} is {width:.0f} px wide: the report would shrink it"
        captions = [node for node in root.iter(f"{SVG}text") if node.get("class") in ("caption", "colour-tick")]
        assert captions and min(float(node.get("font-size")) for node in captions) >= 10, name


def test_a_grid_fills_its_rows_with_as_many_entries_as_fit(results):
    """Four pairs a row when their captions fit, fewer (never cut captions) when they do not; rows filled in turn."""
    for result in results:
        for k in range(len(CLASS_NAMES)):
            grid = image_plots.class_grid(result, k)
            layout = grid.layout()
            n = len(grid.entries)
            assert layout.rows == -(-n // layout.columns) and layout.width <= image_plots.REPORT_WIDTH
            if layout.columns < min(n, 4):  # one more entry a row would make the cells narrower than the captions
                room = image_plots.REPORT_WIDTH - 2 * image_plots._PAD - grid._bar_width()
                assert image_plots._cell_room(room, layout.columns + 1, 2) < layout.cell
            root = ElementTree.fromstring(grid.to_svg())
            assert not [node.text for node in root.iter(f"{SVG}text") if node.text.endswith("\u2026")]
    pairs = image_plots.ImageGrid("digits", 4)
    pairs.entries = [[image_plots._Panel(np.zeros((8, 8, 3)), "#12 true '3'\npred '3' (p=0.99)")] * 2] * 4
    layout = pairs.layout()
    assert (layout.columns, layout.rows) == (4, 1) and layout.side >= 96, "four digit pairs in one row, large enough"


def test_the_colour_bar_is_as_tall_as_a_row_of_images(results):
    for name, root in _figures(results).items():
        (bar,) = _panels(root, "colour-bar")
        first = min(_panels(root), key=lambda node: (float(node.get("y")), float(node.get("x"))))
        assert float(bar.get("height")) == float(first.get("height")), name
        assert float(bar.get("y")) == float(first.get("y")), f"{name}: the bar stands beside the first row"


def test_a_heatmap_keeps_the_grey_image_visible_and_rises_in_brightness():
    """Over any heat a white pixel stays clearly lighter than a black one; Grad-CAM's colours brighten with the heat."""
    heat = np.linspace(0, 1, 11)
    for signed, values in ((False, heat), (True, np.concatenate([-heat, heat]))):
        white = image_plots.heat_over(np.ones_like(values), values, signed)
        black = image_plots.heat_over(np.zeros_like(values), values, signed)
        assert (white - black).mean(axis=-1).min() >= 0.15, "the image shows through the heatmap"
    luminance = image_plots.heat_over(np.full(heat.shape, 0.5), heat, False) @ np.array([0.2126, 0.7152, 0.0722])
    assert np.all(np.diff(luminance) > 0), "a perceptual map: brighter where higher"


def test_integrated_gradients_is_drawn_signed_red_for_and_blue_against(results):
    """shap's image plot: red where a pixel raises the class's score, blue where it lowers it, grey image at 0."""
    result = results[1]
    assert result.signed_maps and not results[0].signed_maps
    maps = result.shown_heatmaps_predicted
    assert maps.min() < -0.1 and maps.max() == pytest.approx(1.0), "signed, each map divided by its largest |value|"
    np.testing.assert_allclose(np.abs(maps).reshape(len(maps), -1).max(axis=1), 1, atol=1e-6)
    np.testing.assert_array_less(-1e-9, result.heatmaps_predicted)  # the raw arrays keep the positive part
    root = ElementTree.fromstring(plots.render(image_plots.class_grid(result, 0)))
    first = int(np.flatnonzero(result.labels[result.shown] == 0)[0])
    overlay = _pixels(_panels(root)[1])
    heat = maps[first]
    red, blue = overlay[heat > 0.5], overlay[heat < -0.5]
    assert len(red) and np.all(red[:, 0] > red[:, 2]), "positive attributions red"
    if len(blue):
        assert np.all(blue[:, 2] > blue[:, 0]), "negative attributions blue"
    zero = np.abs(heat) < 1e-6
    grey = image_plots._picture(result.shown_images[first], None, True)[zero]
    np.testing.assert_allclose(
        overlay[zero], image_plots.heat_over(grey[:, 0], np.zeros(len(grey)), True), atol=1 / 255
    )


def test_an_image_run_speaks_of_images_and_classes_not_features(tracking_uri, pattern_model, tmp_path):
    """No empty importances.csv or feature_keys.json, no "Features: 0"; the images explained and the classes instead."""
    model, images, labels = pattern_model
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain_images(
            model, images[:30], labels[:30], class_names=CLASS_NAMES, config={"gradcam": {"max_images": 6}}
        )
    assert explanation.status == "ok" and explanation.inputs == "images"
    files = {item.path for item in MlflowClient().list_artifacts(run.info.run_id, "explain")}
    assert files.isdisjoint({"explain/importances.csv", "explain/feature_keys.json"})
    assert "explain/report.html" in files
    report = MlflowClient().download_artifacts(run.info.run_id, "explain/report.html", str(tmp_path))
    html = open(report, encoding="utf-8").read()
    assert "<td>Images explained</td><td>30 of the 30 passed; 6 in the figures</td>" in html
    assert "<td>Classes</td><td>3</td>" in html
    assert "<td>Features</td>" not in html and "Validation rows" not in html
