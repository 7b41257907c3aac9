"""Plots and the HTML report: labelled, ordered, self-contained, escaped."""

from __future__ import annotations

from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from mlflow_explain import plots
from mlflow_explain.methods.permutation import permutation_importance
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task
from mlflow_explain.report import render_report
from mlflow_explain.results import Explanation

SVG = "{http://www.w3.org/2000/svg}"


def _svg(chart) -> ElementTree.Element:
    """The rendered chart parsed as XML (so a malformed document fails the test)."""
    return ElementTree.fromstring(plots.render(chart))


def _texts(root: ElementTree.Element, css_class: str) -> list[str]:
    return [node.text for node in root.iter(f"{SVG}text") if node.get("class") == css_class]


def _count(root: ElementTree.Element, tag: str, css_class: str) -> int:
    return sum(node.get("class") == css_class for node in root.iter(f"{SVG}{tag}"))


def _explanation(model, X, y, **shap_options):
    y = np.asarray(y)
    task = detect_task(model, y)
    names = [str(c) for c in X.columns]
    return Explanation(
        task=task,
        feature_names=names,
        n_rows=len(X),
        config={},
        model_type=type(model).__name__,
        permutation=permutation_importance(model, X, y, n_repeats=3),
        shap=shap_values(model, X, task, feature_names=names, max_rows=150, **shap_options),
        versions={"mlflow_explain": "test"},
    )


@pytest.fixture(scope="module")
def regression():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return _explanation(RandomForestRegressor(n_estimators=20, random_state=0).fit(X, y), X, y)


@pytest.fixture(scope="module")
def multiclass():
    X, y = load_wine(return_X_y=True, as_frame=True)
    return _explanation(RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y), X, y, local_rows=2)


def _tick_pixels(root: ElementTree.Element, css_class: str) -> dict[str, float]:
    axis = "x" if css_class == "tick-x" else "y"
    return {node.text: float(node.get(axis)) for node in root.iter(f"{SVG}text") if node.get("class") == css_class}


def test_permutation_bar_is_ordered_labelled_and_shows_the_spread(regression):
    root = _svg(plots.permutation_bar(regression.permutation, "r2"))
    mean = regression.permutation.mean("r2")
    names = regression.permutation.feature_names
    rows = _tick_pixels(root, "tick-y")
    assert min(rows, key=rows.get) == names[int(np.argmax(mean))], "most important feature on top"
    assert max(rows, key=rows.get) == names[int(np.argmin(mean))]
    assert "decrease in r2" in _texts(root, "xlabel")[0]
    assert _count(root, "rect", "bar") == 10 and _count(root, "path", "error") == 10, "one bar and error bar each"
    bars = {
        node.find(f"{SVG}title").text.split(":")[0]: float(node.get("width"))
        for node in root.iter(f"{SVG}rect")
        if node.get("class") == "bar"
    }
    top, second = np.argsort(-np.abs(mean))[:2]
    assert bars[names[top]] > bars[names[second]], "bar lengths follow the importances"


def test_figures_for_regression_and_multiclass(regression, multiclass):
    figures = plots.explanation_figures(regression, dependence_top_k=3)
    assert {"permutation_importance.svg", "shap_bar.svg", "shap_beeswarm.svg"} <= set(figures)
    assert sum(key.startswith("dependence/") for key in figures) == 3
    assert sum(key.startswith("local/waterfall_row") for key in figures) == 3
    for figure in figures.values():
        root = _svg(figure)
        assert _texts(root, "xlabel") or _texts(root, "ylabel"), "every chart names its axes"
    beeswarm = _svg(figures["shap_beeswarm.svg"])
    dots = sum(node.get("d").count("h0") for node in beeswarm.iter(f"{SVG}path") if node.get("class") == "points")
    assert dots == regression.shap.n_explained * len(regression.feature_names), "one dot per row and feature"
    multi = plots.explanation_figures(multiclass, dependence_top_k=2)
    assert {"shap_beeswarm.0.svg", "shap_beeswarm.1.svg", "shap_beeswarm.2.svg"} <= set(multi)
    bar = _svg(multi["shap_bar.svg"])
    assert "log-odds" not in _texts(bar, "xlabel")[0] and "probability" in _texts(bar, "xlabel")[0]
    assert _texts(bar, "legend") == ["0", "1", "2"], "stacked by class, with a legend"
    widths: dict[str, float] = {}
    for node in bar.iter(f"{SVG}rect"):
        if node.get("class") == "bar":
            feature = node.find(f"{SVG}title").text.split(",")[0]
            widths[feature] = widths.get(feature, 0.0) + float(node.get("width"))
    metric = multiclass.shap.mean_abs().mean(axis=1)  # what shap_mean_abs/<feature> logs
    top, last = multiclass.feature_names[int(np.argmax(metric))], multiclass.feature_names[int(np.argmin(metric))]
    assert widths[top] / widths[last] == pytest.approx(metric.max() / metric.min(), rel=0.05), "bar length = metric"
    for figure in multi.values():
        _svg(figure)


def test_waterfall_runs_from_the_base_value_to_the_output(regression):
    result = regression.shap
    root = _svg(plots.waterfall(result, 0, 0, max_display=5))
    labels = _texts(root, "tick-y")  # bottom row first
    assert len(labels) == 5 and labels[0] == f"{len(result.feature_names) - 4} other features"
    strongest = result.feature_names[int(np.argmax(np.abs(result.values[0, :, 0])))]
    assert labels[-1].startswith(f"{strongest} = "), "the largest contribution on top"
    contributions = [float(text) for text in _texts(root, "annotation")]
    rounding = 5e-3 * sum(abs(c) for c in contributions)  # the labels show 3 significant digits
    assert sum(contributions) == pytest.approx(result.values[0, :, 0].sum(), abs=rounding)
    output = result.base_values[0, 0] + result.values[0, :, 0].sum()
    assert f"f(x) = {output:.3g}" in _texts(root, "xlabel")[0]


def test_dependence_and_waterfall_take_strings_and_missing_values():
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"city": rng.choice(["paris", "lyon", None], 200), "size": rng.randn(200)})
    codes = X["city"].map({"paris": 1.0, "lyon": -1.0}).fillna(0.0)
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough"),
        RandomForestRegressor(n_estimators=10, random_state=0),
    ).fit(X, codes + X["size"])
    task = detect_task(model, np.asarray(codes))
    result = shap_values(model, X, task, feature_names=["city", "size"])
    root = _svg(plots.dependence(result, "city", 0))
    assert {"paris", "lyon", "missing"} <= set(_texts(root, "tick-x"))
    assert _texts(root, "ylabel")[0].startswith("SHAP value of city")
    missing_row = int(np.flatnonzero(X["city"].isna().to_numpy()[result.row_positions])[0])
    assert any(
        label.startswith("city = missing") for label in _texts(_svg(plots.waterfall(result, missing_row, 0)), "tick-y")
    )
    _svg(plots.shap_beeswarm(result, 0))


def test_force_plot_is_self_contained(regression):
    html = plots.force_plot_html(regression.shap, 0, 0)
    assert "<script" in html and "SHAP" in html
    assert 'src="http' not in html and "src='http" not in html


def test_report_embeds_everything_and_escapes_names():
    rng = np.random.RandomState(1)
    hostile = "<script>alert(1)</script>"
    X = pd.DataFrame(rng.randn(200, 3), columns=[hostile, "plain", "$dollar$"])
    y = X[hostile] * 2 + X["plain"]
    explanation = _explanation(RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y), X, y)
    images = {path: plots.render(fig) for path, fig in plots.explanation_figures(explanation, 2).items()}
    html = render_report(explanation, images, plots.force_plot_html(explanation.shap, 0, 0))
    assert (
        hostile not in html.replace("srcdoc", "")[: html.find("<iframe")]
        and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    )
    assert html.count("data:image/svg+xml;base64,") == len(images)
    assert "Weight" in html and "± " in html
    assert "tree explainer" in html
    for attribute in ('src="http', "src='http", 'href="http', "href='http"):
        assert attribute not in html.split("<iframe")[0]


def test_report_shows_errors(regression):
    failed = Explanation(
        task=regression.task,
        feature_names=regression.feature_names,
        n_rows=10,
        config={},
        permutation=regression.permutation,
        errors={"shap": "ValueError: <boom>"},
    )
    html = render_report(failed, {})
    assert "status-partial" in html and "shap failed" in html and "&lt;boom&gt;" in html
