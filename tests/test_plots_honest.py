"""Plots and tables that cannot mislead (issue 16 items 6, 7 and 9), on generated data and real models."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from shap.plots.colors import red_blue
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mlflow_explain.engines.comparison import compare_runs
from mlflow_explain.engines.diagnostics import diagnose
from mlflow_explain.methods.permutation import permutation_importance
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task
from mlflow_explain.output import plots, svg, text
from mlflow_explain.output.report import render_report
from mlflow_explain.results import Comparison, Explanation, RunImportances

SVG = "{http://www.w3.org/2000/svg}"
SIZES = ["small", "medium", "large"]  # an ordered categorical, in an order that is not alphabetical
N_NOISE = 22


def categorical_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """An ordered categorical, a string column, a year and noise columns; the target depends on the first three."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(
        {
            "size": pd.Categorical(rng.choice(SIZES, n), categories=SIZES, ordered=True),
            "colour": rng.choice(["red", "green", "blue", "yellow"], n),
            "year": rng.randint(1995, 2021, n),
        }
    )
    for k in range(N_NOISE):
        X[f"noise_{k}"] = rng.randn(n)
    logit = 1.5 * (X["size"].cat.codes - 1) + (X["colour"] == "red") + (X["year"] - 2008) / 6
    return X, (logit + 0.5 * rng.randn(n) > 0).astype(int).to_numpy()


def categorical_model(forest: bool = False):
    encode = ColumnTransformer([("categories", OneHotEncoder(), ["size", "colour"])], remainder="passthrough")
    if forest:
        return make_pipeline(encode, RandomForestClassifier(n_estimators=30, random_state=0))
    return make_pipeline(encode, GradientBoostingClassifier(n_estimators=30, random_state=0))


def explain_categorical(forest: bool = False) -> Explanation:
    """A Pipeline fitted on one sample and explained on another (so noise features score below zero)."""
    X, y = categorical_frame(300, seed=0)
    X_valid, y_valid = categorical_frame(200, seed=1)
    model = categorical_model(forest).fit(X, y)
    task = detect_task(model, y_valid)
    names = list(X.columns)
    return Explanation(
        task=task,
        feature_names=names,
        n_rows=len(X_valid),
        config={},
        results={
            "permutation": permutation_importance(model, X_valid, y_valid, n_repeats=3),
            "shap": shap_values(model, X_valid, task, feature_names=names, max_rows=150),
        },
    )


@pytest.fixture(scope="module")
def categorical():
    return explain_categorical()


def _svg(chart) -> ElementTree.Element:
    return ElementTree.fromstring(plots.render(chart))


def _texts(root: ElementTree.Element, css_class: str) -> list[str]:
    return [node.text for node in root.iter(f"{SVG}text") if node.get("class") == css_class]


def _ticks(root: ElementTree.Element, axis: str) -> dict[str, float]:
    """Tick label -> its pixel position along the axis."""
    return {node.text: float(node.get(axis)) for node in root.iter(f"{SVG}text") if node.get("class") == f"tick-{axis}"}


def _dots(root: ElementTree.Element) -> list[tuple[str, float, float]]:
    """(colour, x, y) of every dot drawn."""
    dots = []
    for path in root.iter(f"{SVG}path"):
        if path.get("class") == "points":
            for x, y in re.findall(r"M([-\d.]+) ([-\d.]+)h0", path.get("d")):
                dots.append((path.get("stroke"), float(x), float(y)))
    return dots


def _nearest(position: float, ticks: dict[str, float], baseline: float = 0.0) -> str:
    """The tick label nearest a dot's pixel ``position`` (a y tick label's baseline sits 0.35 em below its tick)."""
    return min(ticks, key=lambda label: abs(position + baseline - ticks[label]))


def _legend(root: ElementTree.Element, title: str) -> list[str]:
    """The entries of one legend section, in order."""
    entries, inside = [], False
    for node in root.iter(f"{SVG}text"):
        if node.get("class") == "legend-title":
            inside = node.text == title
        elif inside and node.get("class") == "legend":
            entries.append(node.text)
    return entries


def test_categories_are_coloured_and_ordered_by_their_labels_numbers_on_shaps_colour_map(categorical):
    result = categorical.shap
    root = _svg(plots.shap_beeswarm(result, 1))
    assert _legend(root, "size") == SIZES, "an ordered categorical in its own order, not sorted"
    assert _legend(root, "colour") == ["blue", "green", "red", "yellow"], "other labels sorted"
    assert _texts(root, "colour-tick") == ["high", "low"], "the numbers' colour bar: no category codes on it"

    rows = _ticks(root, "y")
    dots = [(colour, _nearest(y, rows, text.FONT_SIZE * 0.35)) for colour, _, y in _dots(root)]
    for k, size in enumerate(SIZES):  # each category's dots in its legend colour, in the size row
        assert dots.count((svg.PALETTE[k], "size")) == int((result.data["size"] == size).sum())
    shap_colours = set(svg._palette(red_blue))
    year_colours = {colour for colour, row in dots if row == "year"}
    assert year_colours <= shap_colours and len(year_colours) > 10
    rgb = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in shap_colours])
    assert (rgb.max(axis=1) - rgb.min(axis=1)).min() > 60, "no grey in the map: grey is for missing values"


def test_dependence_plots_show_categories_in_order_and_years_as_years(categorical):
    result = categorical.shap
    root = _svg(plots.dependence(result, "size", 1))
    ticks = _ticks(root, "x")
    assert list(ticks) == SIZES
    codes = result.data["size"].cat.codes.to_numpy()
    values = result.values[:, result.feature_names.index("size"), 1]
    columns = [_nearest(x, ticks) for _, x, _ in _dots(root)]
    for k, size in enumerate(SIZES):  # every row's dot within its category's column
        assert columns.count(size) == int((codes == k).sum())
    assert values[codes == 2].mean() > values[codes == 0].mean(), "large pushes up, as generated"

    year = _svg(plots.dependence(result, "year", 1))
    assert {"2000", "2010"} <= set(_ticks(year, "x")), "a year reads as a year"
    assert not any("e+" in tick for tick in _ticks(year, "x"))
    label = " ".join(_texts(year, "ylabel"))
    assert label == f"SHAP value of year (impact on the log-odds (margin) of class '{result.output_names[1]}')"
    assert len(_texts(year, "ylabel")) > 1, "wrapped to the plot's height rather than cut at both ends"


def test_beeswarm_and_bar_end_with_the_other_features_summed(categorical):
    result = categorical.shap
    n_other = len(result.feature_names) - 19
    beeswarm = _svg(plots.shap_beeswarm(result, 1))
    y_ticks = _ticks(beeswarm, "y")
    assert len(y_ticks) == 20 and max(y_ticks, key=y_ticks.get) == f"{n_other} other features", "the bottom row"
    other_x = sorted(x for colour, x, y in _dots(beeswarm) if colour == "#000000")
    assert len(other_x) == result.n_explained, "one dot per row: its summed SHAP values of the other features"

    bar = _svg(plots.shap_bar(result, outputs=[1]))
    tips = [node.text for node in bar.iter(f"{SVG}title")]
    other = next(tip for tip in tips if tip.startswith(f"{n_other} other features"))
    order = np.argsort(-result.mean_abs()[:, 1], kind="stable")
    assert float(other.rsplit(": ", 1)[1]) == pytest.approx(result.mean_abs()[order[19:], 1].sum(), rel=1e-3)


def test_the_permutation_chart_shows_the_negative_features_the_diagnostics_name(categorical):
    result = categorical.permutation
    X_valid, _ = categorical_frame(200, seed=1)
    noise = next(f for f in diagnose(categorical, X_valid) if f.kind == "noise_features")
    mean = pd.Series(result.mean(result.primary_scorer), index=result.feature_names)
    negative = [name for name in noise.features if mean[name] < 0]
    assert negative, "the held-out rows give some noise features a negative importance"
    root = _svg(plots.permutation_bar(result, result.primary_scorer, max_features=5))
    shown = set(_ticks(root, "y"))
    assert set(negative) <= shown, "each named one is on the chart, beyond the top 5"
    n_hidden = len(mean) - 5 - len(negative)
    assert f"{n_hidden} other features" in shown
    assert "mean ± 1 std" in " ".join(_texts(root, "xlabel"))


def test_waterfall_and_force_plot_numbers_for_reading():
    assert [svg.format_number(v) for v in (2010.0, 1234.5, 0.012345, 152.133)] == ["2010", "1234", "0.0123", "152"]
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y)
    result = shap_values(model, X, detect_task(model, y), feature_names=list(X.columns), max_rows=50)
    root = _svg(plots.waterfall(result, 3, 0))
    label = " ".join(_texts(root, "xlabel"))
    base, output = (float(v) for v in re.findall(r"= (-?[\d.]+)", label))
    decimals = len(re.search(r"E\[f\(X\)\] = -?\d+\.(\d+)", label).group(1))
    assert decimals >= 1, "the base value keeps its decimals"
    assert base == pytest.approx(result.base_values[3, 0], abs=10**-decimals)
    assert output == pytest.approx(result.base_values[3, 0] + result.values[3, :, 0].sum(), abs=10**-decimals)
    assert _texts(root, "title") == [f"Row {result.row_positions[3]}"]

    force = _svg(plots.force_plot(result, 3, 0))
    assert _texts(force, "title") == [f"Row {result.row_positions[3]}: force plot"]
    assert sorted(_texts(force, "marker")) == [f"base value = {base:.{decimals}f}", f"f(x) = {output:.{decimals}f}"]
    assert " ".join(_texts(force, "xlabel")).startswith("Model output: prediction.")


def comparison_of_two_output_spaces() -> Comparison:
    """A forest (SHAP in probability) and a boosted model (SHAP in log-odds) of one experiment, a forest of another."""
    forest, boosting = explain_categorical(forest=True), explain_categorical()
    assert (forest.shap.output_space, boosting.shap.output_space) == ("probability", "margin")
    runs = [
        RunImportances("a" * 32, "forest", "churn study", 1, forest.importances),
        RunImportances("b" * 32, "boosting", "churn study", 2, boosting.importances),
        RunImportances("c" * 32, "forest", "churn study, new data", 3, forest.importances),
    ]
    return compare_runs(runs)


def _cells(root: ElementTree.Element) -> pd.DataFrame:
    """The heatmap's cells from their tooltips: run, feature, share, raw value."""
    pattern = r"(.+) / (.+): ([\d.]+)% of the run's total \(mean \|SHAP value\| ([-\d.e+]+)\)"
    rows = [
        re.fullmatch(pattern, node.find(f"{SVG}title").text).groups()
        for node in root.iter(f"{SVG}rect")
        if node.get("class") == "cell"
    ]
    cells = pd.DataFrame(rows, columns=["run", "feature", "share", "raw"])
    return cells.astype({"share": float, "raw": float})


def test_heatmap_compares_shares_of_each_run_and_labels_runs_once():
    comparison = comparison_of_two_output_spaces()
    n_features = len(comparison.importances["feature"].unique())
    root = _svg(plots.importance_heatmap(comparison, "shap", max_features=n_features))
    cells = _cells(root)
    assert cells.groupby("run")["share"].sum().to_numpy() == pytest.approx([100] * 3, abs=0.01), "each run's total"
    top = cells.loc[cells.groupby("run")["raw"].idxmax()].set_index("run")
    forest, boosting = top.loc["forest (churn study)"], top.loc["boosting (churn study)"]
    assert boosting["raw"] > 3 * forest["raw"], "log-odds dwarf probabilities in raw units"
    assert forest["share"] > 20 and boosting["share"] > 20, "as shares both stand out"
    assert "share of the run's total mean |SHAP value|" in _texts(root, "colour-label")

    assert _texts(root, "tick-y") == ["forest", "boosting", "forest"], "run names, not the experiment in each"
    assert _texts(root, "group") == ["churn study", "churn study, new data"], "each experiment named once"
    ranks = _svg(plots.rank_shift(comparison, "shap"))
    assert "1" in _ticks(ranks, "y"), "rank 1 has its tick"


def test_the_spread_is_one_std_in_the_weights_table_the_chart_and_the_metrics(categorical):
    from mlflow_explain.publish.tracking import explanation_metrics

    result = categorical.permutation
    html = render_report(categorical, {})
    assert "<th>Weight (mean ± 1 std)</th>" in html
    table = dict(
        (feature, (float(weight), float(spread)))
        for weight, spread, feature in re.findall(r">(-?[\d.]+) ± ([\d.]+)</td><td>([^<]+)</td>", html)
    )
    assert set(table) == set(result.feature_names)
    metrics = explanation_metrics(categorical)
    std = result.std(result.primary_scorer)
    assert std.max() > 1e-3, "a spread to see"
    for j, feature in enumerate(result.feature_names):
        assert table[feature][1] == pytest.approx(std[j], abs=5e-5)
        assert metrics[f"permutation_importance_std/{feature}"] == pytest.approx(std[j])
    root = _svg(plots.permutation_bar(result, result.primary_scorer))
    assert "(mean ± 1 std over 3 repeats)" in " ".join(_texts(root, "xlabel"))
    tips = [node.text for node in root.iter(f"{SVG}title")]
    written = {feature: text for text, feature in re.findall(r">(-?[\d.]+ ± [\d.]+)</td><td>([^<]+)</td>", html)}
    top = result.feature_names[int(np.argmax(result.mean(result.primary_scorer)))]
    assert f"{top}: {written[top]} (1 std)" in tips, "the tooltip writes the weight as the table does"
