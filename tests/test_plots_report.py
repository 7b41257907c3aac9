"""Plots and the HTML report: labelled, ordered, self-contained, escaped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.datasets import load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from mlflow_explain import plots
from mlflow_explain.methods.permutation import permutation_importance
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task
from mlflow_explain.report import render_report
from mlflow_explain.results import Explanation

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _explanation(model, X, y, **shap_options):
    y = np.asarray(y)
    task = detect_task(model, y)
    names = [str(c) for c in X.columns]
    return Explanation(
        task=task, feature_names=names, n_rows=len(X), config={}, model_type=type(model).__name__,
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


def _tick_labels(figure):
    return [label.get_text() for label in figure.axes[0].get_yticklabels()]


def test_permutation_bar_is_ordered_and_labelled(regression):
    figure = plots.permutation_bar(regression.permutation, "r2")
    mean = regression.permutation.mean("r2")
    expected_top = regression.permutation.feature_names[int(np.argmax(mean))]
    assert _tick_labels(figure)[-1] == expected_top, "most important feature on top"
    assert "decrease in r2" in figure.axes[0].get_xlabel()
    from matplotlib.container import ErrorbarContainer

    assert len(figure.axes[0].patches) == 10
    assert any(isinstance(c, ErrorbarContainer) for c in figure.axes[0].containers), "error bars show the spread"


def test_figures_for_regression_and_multiclass(regression, multiclass):
    figures = plots.explanation_figures(regression, dependence_top_k=3)
    assert {"permutation_importance.png", "shap_bar.png", "shap_beeswarm.png"} <= set(figures)
    assert sum(key.startswith("dependence/") for key in figures) == 3
    assert sum(key.startswith("local/waterfall_row") for key in figures) == 3
    assert all(isinstance(figure, Figure) for figure in figures.values())
    assert all(figure.axes[0].get_xlabel() or figure.axes[0].get_ylabel() for figure in figures.values())
    for figure in figures.values():
        assert plots.figure_to_png(figure).startswith(PNG_SIGNATURE)
    multi = plots.explanation_figures(multiclass, dependence_top_k=2)
    assert {"shap_beeswarm.0.png", "shap_beeswarm.1.png", "shap_beeswarm.2.png"} <= set(multi)
    assert "log-odds" not in multi["shap_bar.png"].axes[0].get_xlabel()
    assert "probability" in multi["shap_bar.png"].axes[0].get_xlabel()
    for figure in multi.values():
        plots.figure_to_png(figure)


def test_dependence_and_waterfall_take_strings_and_missing_values():
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"city": rng.choice(["paris", "lyon", None], 200), "size": rng.randn(200)})
    codes = X["city"].map({"paris": 1.0, "lyon": -1.0}).fillna(0.0)
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    model = make_pipeline(make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough"),
                          RandomForestRegressor(n_estimators=10, random_state=0)).fit(X, codes + X["size"])
    task = detect_task(model, np.asarray(codes))
    result = shap_values(model, X, task, feature_names=["city", "size"])
    figure = plots.dependence(result, "city", 0)
    assert {"paris", "lyon", "missing"} <= {label.get_text() for label in figure.axes[0].get_xticklabels()}
    assert figure.axes[0].get_ylabel().startswith("SHAP value of city")
    assert plots.figure_to_png(plots.waterfall(result, 0, 0)).startswith(PNG_SIGNATURE)
    assert plots.figure_to_png(plots.shap_beeswarm(result, 0)).startswith(PNG_SIGNATURE)


def test_force_plot_is_self_contained(regression):
    html = plots.force_plot_html(regression.shap, 0, 0)
    assert "<script" in html and "SHAP" in html
    assert "src=\"http" not in html and "src='http" not in html


def test_report_embeds_everything_and_escapes_names():
    rng = np.random.RandomState(1)
    hostile = "<script>alert(1)</script>"
    X = pd.DataFrame(rng.randn(200, 3), columns=[hostile, "plain", "$dollar$"])
    y = X[hostile] * 2 + X["plain"]
    explanation = _explanation(RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y), X, y)
    images = {path: plots.figure_to_png(fig) for path, fig in plots.explanation_figures(explanation, 2).items()}
    html = render_report(explanation, images, plots.force_plot_html(explanation.shap, 0, 0))
    assert hostile not in html.replace("srcdoc", "")[: html.find("<iframe")] and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("data:image/png;base64,") == len(images)
    assert "Weight" in html and "± " in html
    assert "tree explainer" in html
    for attribute in ("src=\"http", "src='http", "href=\"http", "href='http"):
        assert attribute not in html.split("<iframe")[0]


def test_report_shows_errors(regression):
    failed = Explanation(task=regression.task, feature_names=regression.feature_names, n_rows=10, config={},
                         permutation=regression.permutation, errors={"shap": "ValueError: <boom>"})
    html = render_report(failed, {})
    assert "status-partial" in html and "shap failed" in html and "&lt;boom&gt;" in html
