"""One number, one rendering (issue 24 item 1): the noise rule makes an importance 0 before any view reads it.

A random forest of 10 trees on breast cancer, permutation importance over 3 repeats: three features'
accuracy drops cancel out over the repeats, and their mean comes out as -3.7e-17 from float
rounding. Each view of such a feature (importances.csv, the metric, the report's table, the chart's
bar and tooltip, summary.json) must say 0 the same way, sort it with the zeros and count it with them.
"""

from __future__ import annotations

import json
import math
import re
from xml.etree import ElementTree

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

import mlflow_explain
from mlflow_explain.config import ExplainConfig
from mlflow_explain.engines.comparison import compare_runs
from mlflow_explain.engines.diagnostics import diagnose
from mlflow_explain.keys import key_parts
from mlflow_explain.methods.permutation import permutation_importance
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task
from mlflow_explain.output import plots, token_views
from mlflow_explain.output.artifacts import write_artifacts, write_comparison, write_summary
from mlflow_explain.output.svg import format_fixed, format_number
from mlflow_explain.publish.tracking import explanation_metrics
from mlflow_explain.results import Explanation, RunImportances, TokenResult

SVG = "{http://www.w3.org/2000/svg}"
NEGATIVE_BAR = "#ff7f0e"
SIGNED_ZERO = re.compile(r"(?<![\w.])[-+]0(?:\.0+)?(?![\d.e])")  # "-0", "+0.000", "-0.0000"; not "-0.05"
WEIGHT_CELL = re.compile(r">([^<>]+ ± [^<>]+)</td><td>([^<]+)</td>")  # the report's permutation table


def breast_cancer_forest():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_train, y_train)
    return model, X_valid.reset_index(drop=True), y_valid.to_numpy()


@pytest.fixture(scope="module")
def forest():
    """The forest explained (permutation over 3 repeats, tree SHAP), and the features whose mean is float noise."""
    model, X, y = breast_cancer_forest()
    task = detect_task(model, y)
    permutation = permutation_importance(model, X, y, n_repeats=3, random_state=0)
    raw = permutation.importances[permutation.primary_scorer].mean(axis=1)
    noise = [name for name, value in zip(permutation.feature_names, raw, strict=True) if 0 < abs(value) < 1e-12]
    assert noise, "the data must give some feature a mean importance within float noise of 0 (not exactly 0)"
    shap_result = shap_values(model, X, task, feature_names=list(X.columns), max_rows=60, local_rows=1)
    explanation = Explanation(
        task=task,
        feature_names=list(X.columns),
        n_rows=len(X),
        config={},
        results={"permutation": permutation, "shap": shap_result},
    )
    explanation.diagnostics = diagnose(explanation, X, y)
    return explanation, noise


@pytest.fixture(scope="module")
def written(forest, tmp_path_factory):
    """The forest's artifact folder, as it lands under explain/ (tables, figures, report, summary.json)."""
    directory = tmp_path_factory.mktemp("explain")
    write_artifacts(forest[0], directory, ExplainConfig())
    write_summary(forest[0], directory)
    return directory


def _svg(path) -> ElementTree.Element:
    return ElementTree.parse(path).getroot()


def _visible_texts(root: ElementTree.Element) -> list[str]:
    """Every text a person reads in an SVG: its text elements and its tooltips."""
    return [node.text or "" for node in root.iter() if node.tag in (f"{SVG}text", f"{SVG}title")]


def test_a_noise_level_importance_is_0_in_every_view(forest, written):
    explanation, noise = forest
    result = explanation.permutation
    mean = pd.Series(result.mean(result.primary_scorer), index=result.feature_names)
    assert all(mean[name] == 0 and math.copysign(1, mean[name]) == 1 for name in noise), "exactly +0.0"

    table = pd.read_csv(written / "importances.csv")
    rows = table[table["method"] == "permutation"].set_index("feature")
    assert (rows.loc[noise, "importance"] == 0).all()

    metrics = explanation_metrics(explanation)
    keys = key_parts(explanation.reported_features)
    assert all(metrics[f"permutation_importance/{keys[name]}"] == 0 for name in noise)

    report = (written / "report.html").read_text(encoding="utf-8")
    weights = {feature: text for text, feature in WEIGHT_CELL.findall(report)}
    assert set(weights) == set(result.feature_names)
    for name in noise:
        assert weights[name].startswith("0.0000 ± "), weights[name]

    everything = plots.permutation_bar(result, result.primary_scorer, max_features=len(mean))  # the file shows 20
    bars = {
        node.findtext(f"{SVG}title").split(": ")[0]: node
        for node in _bars(ElementTree.fromstring(plots.render(everything)))
    }
    for name in noise:
        assert bars[name].findtext(f"{SVG}title") == f"{name}: {weights[name]} (1 std)", "the table's text"
        assert bars[name].get("fill") != NEGATIVE_BAR, "0 is not drawn as a negative importance"

    summary = json.loads((written / "summary.json").read_text(encoding="utf-8"))
    assert not [value for value in _numbers(summary) if value == 0 and math.copysign(1, value) < 0], "no -0.0"
    assert summary["diagnostics"] and not re.search(r"-0\.0\b|e-1[3-9]\b", json.dumps(summary["diagnostics"]))


def test_no_signed_zero_is_written_anywhere(written):
    report = (written / "report.html").read_text(encoding="utf-8")
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", report)
    assert cells and not [cell for cell in cells if SIGNED_ZERO.search(cell)]
    figures = sorted(written.rglob("*.svg"))
    assert len(figures) >= 4
    for path in figures:
        signed = [text for text in _visible_texts(_svg(path)) if SIGNED_ZERO.search(text)]
        assert not signed, f"{path.name}: {signed}"


def test_every_view_sorts_as_importances_csv_ranks(forest, written):
    table = pd.read_csv(written / "importances.csv")
    for method, figures in {
        "permutation": ["permutation_importance.svg"],
        "shap": ["shap_bar.svg", "shap_beeswarm.svg"],
    }.items():
        ranked = table[table["method"] == method].sort_values("rank")["feature"].tolist()
        for figure in figures:
            rows = [name for name in _rows_top_down(_svg(written / figure)) if name in ranked]
            assert len(rows) >= 10 and rows == [name for name in ranked if name in rows], figure
    report = (written / "report.html").read_text(encoding="utf-8")
    ranked = table[table["method"] == "permutation"].sort_values("rank")["feature"].tolist()
    assert [feature for _, feature in WEIGHT_CELL.findall(report)] == ranked, "zeros together, before the negatives"


def _bars(root: ElementTree.Element) -> list[ElementTree.Element]:
    return [node for node in root.iter(f"{SVG}rect") if node.get("class") == "bar"]


def _numbers(document: object) -> list[float]:
    """Every number in a parsed JSON document."""
    if isinstance(document, dict):
        return [number for value in document.values() for number in _numbers(value)]
    if isinstance(document, list):
        return [number for value in document for number in _numbers(value)]
    return [float(document)] if isinstance(document, (int, float)) and not isinstance(document, bool) else []


def _rows_top_down(root: ElementTree.Element) -> list[str]:
    """A bar chart's or beeswarm's row labels (y tick labels), top row first."""
    ticks = [node for node in root.iter(f"{SVG}text") if node.get("class") == "tick-y"]
    return [node.text for node in sorted(ticks, key=lambda node: float(node.get("y")))]


def test_the_legend_counts_the_negative_bars_drawn(forest):
    result = forest[0].permutation
    negatives = int((result.mean(result.primary_scorer) < 0).sum())
    assert negatives > 2, "some features below zero, more than the 2 drawn below"
    for max_features in (20, 2):  # both leave some of the 30 features in the "other features" row
        chart = ElementTree.fromstring(plots.render(plots.permutation_bar(result, result.primary_scorer, max_features)))
        drawn = [node for node in _bars(chart) if node.get("fill") == NEGATIVE_BAR]
        title = next(text for text in _visible_texts(chart) if "negative shown" in text)
        assert int(title.split()[0]) == len(drawn) == min(negatives, max_features)
        assert (f" of {negatives} " in title) == (negatives > max_features), title
        hidden = len(result.feature_names) - len(_bars(chart))
        assert f"{hidden} other feature{'s' if hidden > 1 else ''}" in _rows_top_down(chart), "the row counts the rest"


def test_numbers_are_written_without_a_signed_zero():
    assert format_fixed(-0.0, 4) == format_fixed(0.0, 4, sign=True) == "0.0000"
    assert format_fixed(-3.2e-5, 4) == "-3.2e-05", "not 0, so not written as 0 nor as -0.0000"
    assert format_fixed(0.01234, 3, sign=True) == "+0.012" and format_fixed(-0.01234, 3) == "-0.012"
    assert format_number(-5.6e-17, decimals=2) == "0.00", "a tick put off 0 by rounding"
    assert format_number(-0.25, decimals=2) == "-0.25"


def test_a_token_whose_mean_attribution_is_float_noise_is_0_and_not_a_top_token():
    # "so" adds 0.1 + 0.2 in the first text and takes 0.3 in the second: a signed mean of 2.8e-17
    positive = [np.array([0.1, 0.2, 1.5]), np.array([-0.3, -1.0])]
    result = TokenResult(
        texts=["so so good", "so bad"],
        tokens=[["so", "so", "good"], ["so", "bad"]],
        values=[np.stack([-v, v], axis=1) for v in positive],
        base_values=np.zeros((2, 2)),
        output_names=["neg", "pos"],
        output_space="margin",
        algorithm="linear",
        reason="exact",
        row_positions=np.array([0, 1]),
        column=None,
    )
    raw = result.token_frame().groupby(["text", "token"])["pos"].sum().groupby(level="token").sum()
    assert 0 < abs(raw["so"]) < 1e-12, "the float noise this test is about"
    assert result.token_means().loc["so", "pos"] == 0
    top = token_views.top_tokens(result, 1)
    assert "so" not in set(top["token"]) and list(top["token"]) == ["good", "bad"]
    chart = ElementTree.fromstring(plots.render(token_views.top_tokens_bar(result, 1)))
    assert not [text for text in _visible_texts(chart) if SIGNED_ZERO.search(text) or "so" == text]


def test_the_comparison_views_say_0_and_rank_as_the_runs_did(forest, tmp_path):
    explanation, noise = forest
    table = explanation.importances  # what each run logs
    runs = [RunImportances(f"run{k}", f"forest {k}", "tests", start_time=k, table=table) for k in (1, 2)]
    comparison = compare_runs(runs)
    write_comparison(comparison, tmp_path)
    ranks = comparison.importances.query("method == 'permutation' and run_id == 'run1'").set_index("feature")["rank"]
    logged = table.query("method == 'permutation'").set_index("feature")["rank"]
    assert ranks.to_dict() == logged.to_dict()
    for path in tmp_path.glob("*.svg"):
        assert not [text for text in _visible_texts(_svg(path)) if SIGNED_ZERO.search(text)], path.name
    every_feature = plots.importance_heatmap(comparison, "permutation", max_features=len(logged))  # the file: 20
    tips = _visible_texts(ElementTree.fromstring(plots.render(every_feature)))
    for name in noise:
        assert (
            f"forest 1 (tests) / {name}: 0.0000% of the run's total (permutation importance (negative as 0) 0)" in tips
        )
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", (tmp_path / "report.html").read_text(encoding="utf-8"))
    assert cells and not [cell for cell in cells if SIGNED_ZERO.search(cell)]


def test_the_logged_metric_and_table_say_0(tracking_uri):
    model, X, y = breast_cancer_forest()
    config = {"permutation": {"n_repeats": 3}, "shap": {"max_rows": 30, "local_rows": 0, "dependence_top_k": 0}}
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain(model, X, y, config=config)
    result = explanation.permutation
    raw = result.importances[result.primary_scorer].mean(axis=1)
    noise = [name for name, value in zip(result.feature_names, raw, strict=True) if 0 < abs(value) < 1e-12]
    assert noise, "explain() computes what the fixture does"
    logged = mlflow.get_run(run.info.run_id).data.metrics
    keys = key_parts(explanation.reported_features)
    assert all(logged[f"permutation_importance/{keys[name]}"] == 0 for name in noise)
    path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="explain/importances.csv")
    table = pd.read_csv(path).query("method == 'permutation'").set_index("feature")
    assert (table.loc[noise, "importance"] == 0).all()
