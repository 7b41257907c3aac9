"""The force plot in Chromium at 1400 px: alone, in the report and in the MLflow artifact viewer (issue 24 item 2).

Every text stays inside its SVG and no two texts overlap, for several rows with long feature names;
the other figures of an explanation are held to the same. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from mlflow_explain.methods.permutation import permutation_importance
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task
from mlflow_explain.output import plots
from mlflow_explain.output.report import render_report
from mlflow_explain.results import Explanation

from .browser import SCREENSHOTS, TEXT_OUTSIDE, check_figures, css, open_run_page, wait

pytestmark = [pytest.mark.integration, pytest.mark.browser]

LONG_SUFFIX = " of the cell nuclei (mm)"

# Pairs of texts whose boxes overlap (by more than half a pixel). Rotated texts are left out: their
# boxes are the upright rectangles around them, which overlap a rotated neighbour's without the glyphs touching.
TEXTS_OVERLAPPING = """
const boxes = [...document.querySelector('svg').querySelectorAll('text')].filter(t => !t.hasAttribute('transform'))
  .map(t => [t.textContent, t.getBoundingClientRect()]);
const pairs = [];
boxes.forEach(([a, r], i) => boxes.slice(i + 1).forEach(([b, s]) => {
  if (r.left < s.right - 0.5 && s.left < r.right - 0.5 && r.top < s.bottom - 0.5 && s.top < r.bottom - 0.5)
    pairs.push([a, b]);
}));
return pairs;
"""

FEATURE_LABELS = """
return [...document.querySelectorAll('text.feature')].map(t => [...t.children].map(line => line.textContent).join(' '));
"""


def _explanation(model, X, y, **shap_options) -> Explanation:
    task = detect_task(model, np.asarray(y))
    names = list(X.columns)
    return Explanation(
        task=task,
        feature_names=names,
        n_rows=len(X),
        config={},
        model_type=type(model).__name__,
        results={
            "permutation": permutation_importance(model, X, np.asarray(y), n_repeats=2),
            "shap": shap_values(model, X, task, feature_names=names, **shap_options),
        },
        versions={"mlflow_explain": "test"},
    )


@pytest.fixture(scope="module")
def cancer() -> Explanation:
    """A boosted model of the breast-cancer data with long feature names, explained (SHAP in log-odds)."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X.columns = [f"{name}{LONG_SUFFIX}" for name in X.columns]
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(X[:400], y[:400])
    return _explanation(model, X[400:], y[400:], max_rows=80, local_rows=3)


def _open_svg(driver, path):
    driver.get(path.as_uri())
    return css(driver, "svg")


def test_force_plots_keep_every_text_inside_and_apart(browser, cancer, tmp_path):
    """Eight rows of both classes, their long names wrapped or counted in "+N more": nothing cut, nothing on another."""
    result = cancer.shap
    outputs = [result.explained_output(row) for row in range(len(result.row_positions))]
    rows = [row for k in (0, 1) for row in [row for row, output in enumerate(outputs) if output == k][:4]]
    assert len(rows) == 8
    for k, row in enumerate(rows):
        path = tmp_path / f"force_{row}.svg"
        path.write_bytes(plots.render(plots.force_plot(result, row, outputs[row])))
        svg = _open_svg(browser, path)
        assert browser.execute_script(TEXT_OUTSIDE) == [], f"row {row}: text outside the image"
        assert browser.execute_script(TEXTS_OVERLAPPING) == [], f"row {row}: texts on top of each other"
        labels = browser.execute_script(FEATURE_LABELS)
        assert sum(label.split(" = ")[0].endswith(LONG_SUFFIX) for label in labels) >= 3, "long names, whole"
        if k == 0:
            svg.screenshot(str(SCREENSHOTS / "force_plot.png"))


def test_the_report_shows_the_force_plot_at_its_own_size(browser, cancer, tmp_path):
    """In the report at 1400 px the force plot is an image drawn 1:1 (its 12 px text stays 12 px), no iframe."""
    images = {path: plots.render(figure) for path, figure in plots.explanation_figures(cancer, 2).items()}
    force = [path for path in images if path.startswith("local/force_plot_row")]
    assert len(force) == 1
    page = tmp_path / "report.html"
    page.write_text(render_report(cancer, images), encoding="utf-8")
    browser.get(page.as_uri())
    image = css(browser, f'img[alt="{force[0]}"]')
    wait(browser, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
    shown, natural = browser.execute_script("return [arguments[0].clientWidth, arguments[0].naturalWidth]", image)
    assert shown == natural, "not scaled down"
    assert not browser.find_elements("tag name", "iframe")
    heading = browser.find_element("xpath", "//h2[normalize-space()='Local explanations']")
    browser.execute_script("arguments[0].scrollIntoView()", heading)
    browser.save_screenshot(str(SCREENSHOTS / "force_plot_report.png"))


def test_a_script_closing_name_in_the_force_plot_is_text_and_never_runs(browser, tmp_path):
    """A name holding "</script>" is shown as itself in the force plot, in the report and opened on its own."""
    name = "</script><img src=x onerror=parent.document.body.setAttribute(`data-pwned`,`force`)>"
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :4].rename(columns={"mean radius": name})
    model = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X, y)
    explanation = _explanation(model, X[:120], y[:120], max_rows=30, local_rows=1)
    images = {path: plots.render(figure) for path, figure in plots.explanation_figures(explanation, 1).items()}
    force = next(path for path in images if path.startswith("local/force_plot_row"))
    page = tmp_path / "report.html"
    page.write_text(render_report(explanation, images), encoding="utf-8")
    browser.get(page.as_uri())
    wait(browser, lambda d: "mlflow_explain report" in d.find_element("tag name", "h1").text)
    assert browser.execute_script("return document.body.getAttribute('data-pwned')") is None
    (tmp_path / "force.svg").write_bytes(images[force])
    svg = _open_svg(browser, tmp_path / "force.svg")
    tooltips = browser.execute_script("return [...document.querySelectorAll('title')].map(t => t.textContent)")
    assert any(tooltip.startswith(f"{name} = ") for tooltip in tooltips), "its segment is named by it, as text"
    assert browser.execute_script("return document.querySelectorAll('img, script').length") == 0
    svg.screenshot(str(SCREENSHOTS / "force_plot_script_name.png"))


def test_the_force_plot_in_the_mlflow_artifact_viewer(browser, mlflow_server, explained_run):
    """The logged SVG opens in the run's artifact viewer as an image, whole, at 1400 px."""
    run_id, experiment_id = explained_run
    local = [item.path for item in MlflowClient(mlflow_server.url).list_artifacts(run_id, "explain/local")]
    force = [path for path in local if re.fullmatch(r"explain/local/force_plot_row\d+\.svg", path)]
    assert len(force) == 1, local
    open_run_page(browser, mlflow_server.url, experiment_id, run_id, f"/artifacts/{force[0]}")
    image = css(browser, f'img[alt="{force[0]}"]', visible=False)
    wait(browser, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
    box = browser.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return [r.width, arguments[0].naturalWidth, r.right]", image
    )
    browser.save_screenshot(str(SCREENSHOTS / "force_plot_ui.png"))
    width, natural, right = box
    assert 12 * width / natural >= 10, "shown near its size: its 12 px text at 10 px or more"
    assert right <= browser.execute_script("return window.innerWidth"), "and whole on screen"


def test_every_figure_keeps_its_text_inside_and_apart(browser, cancer, tmp_path):
    """The other figures: of a binary and a multiclass explanation (bars, beeswarms, dependence, waterfalls), and
    of a comparison (heatmap, rank shift)."""
    from .test_plots_honest import comparison_of_two_output_spaces

    X, y = load_wine(return_X_y=True, as_frame=True)
    forest = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(X, y)
    figures = plots.explanation_figures(cancer, 3) | {
        f"wine/{path}": figure
        for path, figure in plots.explanation_figures(_explanation(forest, X, y, max_rows=60), 2).items()
    }
    figures |= plots.comparison_figures(comparison_of_two_output_spaces())
    check_figures(browser, figures, tmp_path, {})
    overlapping = {}
    for name in figures:
        _open_svg(browser, tmp_path / name.replace("/", "__"))
        if pairs := browser.execute_script(TEXTS_OVERLAPPING):
            overlapping[name] = pairs
    assert not overlapping, f"texts on top of each other: {overlapping}"
