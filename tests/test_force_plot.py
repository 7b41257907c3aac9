"""The force plot (output/force_plot.py): shap's additive layout, round ticks, labels that fit, escaped names."""

from __future__ import annotations

import math
import re
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor

from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task
from mlflow_explain.output import plots
from mlflow_explain.output.force_plot import NEGATIVE, POSITIVE, ForcePlot, nice_ticks, spread
from mlflow_explain.output.text import text_width

SVG = "{http://www.w3.org/2000/svg}"
LONG_SUFFIX = " of the cell nuclei (mm)"  # makes most breast-cancer names 30 to 40 characters


@pytest.fixture(scope="module")
def cancer():
    """A boosted model of the breast-cancer data, explained by TreeSHAP in log-odds: (model, rows, result)."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X.columns = [f"{name}{LONG_SUFFIX}" for name in X.columns]
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(X[:400], y[:400])
    rows = X[400:]
    result = shap_values(model, rows, detect_task(model, y.to_numpy()), feature_names=list(X.columns), max_rows=60)
    return model, rows, result


def _root(figure) -> ElementTree.Element:
    return ElementTree.fromstring(plots.render(figure))


def _lines(node: ElementTree.Element) -> list[str]:
    """A text's lines: its tspans' (a wrapped label), or its own text."""
    return [tspan.text for tspan in node] or [node.text]


def _texts(root: ElementTree.Element, css_class: str) -> list[str]:
    """The texts of ``css_class``, a wrapped label's lines joined by the spaces it was wrapped at."""
    return [" ".join(_lines(node)) for node in root.iter(f"{SVG}text") if node.get("class") == css_class]


def _segments(root: ElementTree.Element) -> list[tuple[float, float, str]]:
    """(leftmost x, rightmost x, fill) of each segment of the band, from its path."""
    spans = []
    for node in root.iter(f"{SVG}path"):
        if node.get("class") == "segment":
            xs = [float(x) for x in re.findall(r"[MLV]?(-?[\d.]+) -?[\d.]+", node.get("d"))]
            spans.append((min(xs), max(xs), node.get("fill")))
    return spans


def test_f_x_and_the_base_value_are_the_model_output_and_the_explainer_expectation(cancer):
    """The marked f(x) is the model's own decision function for the row; the segments add up from the base value."""
    model, rows, result = cancer
    for row in range(5):
        output = result.explained_output(row)
        root = _root(plots.force_plot(result, row, output))
        markers = dict(text.split(" = ") for text in _texts(root, "marker"))
        decimals = len(markers["f(x)"].split(".")[1])
        margin = model.decision_function(rows.iloc[[result.row_positions[row]]])[0] * (1 if output == 1 else -1)
        assert float(markers["f(x)"]) == pytest.approx(margin, abs=10**-decimals)
        assert float(markers["base value"]) == pytest.approx(result.base_values[row, output], abs=10**-decimals)
        assert "log-odds (margin) of class" in " ".join(_texts(root, "xlabel")), "the output space is named"


def test_the_band_is_red_then_blue_and_fills_the_frame(cancer):
    """Red segments (pushing up) left of f(x), blue right of it, the band spanning the image but its margins."""
    _, _, result = cancer
    for row in range(5):
        output = result.explained_output(row)
        figure = plots.force_plot(result, row, output)
        spans = _segments(_root(figure))
        values = result.values[row, :, output]
        fills = [fill for _, _, fill in spans]
        assert fills == [POSITIVE] * int((values > 0).sum()) + [NEGATIVE] * int((values < 0).sum())
        left, right = min(s[0] for s in spans), max(s[1] for s in spans)
        assert (right - left) / figure.width > 0.9, "no blank frame"


def _is_round(value: float, step: float) -> bool:
    """``value`` a multiple of ``step``, and ``step`` 1, 2, 2.5 or 5 times a power of ten."""
    mantissa = step / 10 ** math.floor(math.log10(step))
    return any(math.isclose(mantissa, nice) for nice in (1, 2, 2.5, 5, 10)) and math.isclose(
        value / step, round(value / step), abs_tol=1e-6
    )


@pytest.mark.parametrize(
    ("low", "high"), [(-16.22, 23.78), (3.783, 18.21), (-0.0042, 0.0131), (0.12, 0.97), (1520.0, 98000.0), (-7, -6.2)]
)
def test_ticks_are_round_numbers(low, high):
    ticks = nice_ticks(low, high, 8)
    assert 2 <= len(ticks) <= 8
    assert all(low <= tick <= high for tick in ticks)
    step = ticks[1] - ticks[0]
    assert np.allclose(np.diff(ticks), step) and all(_is_round(tick, step) for tick in ticks)


def test_tick_labels_in_the_plot_are_round_and_clear_of_the_markers(cancer):
    _, _, result = cancer
    for row in range(5):
        figure = plots.force_plot(result, row, result.explained_output(row))
        root = _root(figure)
        ticks = [float(text) for text in _texts(root, "tick-x")]
        assert len(ticks) >= 2
        steps = np.diff(ticks)
        step = float(steps.min())
        assert all(_is_round(tick, step) for tick in ticks), ticks


def _label_boxes(root: ElementTree.Element, css_class: str) -> list[tuple[float, float]]:
    """(left, right) of each centred text of ``css_class``, measured as the layout measures it."""
    boxes = []
    for node in root.iter(f"{SVG}text"):
        if node.get("class") == css_class:
            half = max(text_width(line) for line in _lines(node)) / 2
            boxes.append((float(node.get("x")) - half, float(node.get("x")) + half))
    return boxes


def test_labels_fit_side_by_side_and_the_rest_are_counted(cancer):
    """Every feature with a segment is labelled or counted in a "+N more"; the labels are whole and apart."""
    _, _, result = cancer
    for row in range(5):
        output = result.explained_output(row)
        figure = plots.force_plot(result, row, output)
        root = _root(figure)
        labels = _texts(root, "feature")
        more = [int(re.fullmatch(r"\+(\d+) more", label).group(1)) for label in labels if label.endswith(" more")]
        named = [label for label in labels if not label.endswith(" more")]
        values = result.values[row, :, output]
        assert len(named) >= 3 and len(named) + sum(more) == int((values != 0).sum())
        assert all(label.split(" = ")[0].endswith(LONG_SUFFIX) for label in named), "names whole, never cut"
        largest = [f"{name} =" for name in np.asarray(result.feature_names)[np.argsort(-np.abs(values))[:3]]]
        assert all(any(label.startswith(name) for label in named) for name in largest), "the largest are named"
        boxes = sorted(_label_boxes(root, "feature"))
        assert boxes[0][0] >= 0 and boxes[-1][1] <= figure.width
        assert _apart([left for left, _ in boxes], [right - left for left, right in boxes], 0), "no two overlap"


def test_probability_and_regression_outputs_are_named():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    regressor = RandomForestRegressor(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
    result = shap_values(regressor, X, detect_task(regressor, y.to_numpy()), feature_names=list(X.columns), max_rows=20)
    assert " ".join(_texts(_root(plots.force_plot(result, 0, 0)), "xlabel")).startswith("Model output: prediction.")

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    forest = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X, y)
    result = shap_values(forest, X, detect_task(forest, y.to_numpy()), feature_names=list(X.columns), max_rows=20)
    assert result.output_space == "probability"
    caption = " ".join(_texts(_root(plots.force_plot(result, 0, 1)), "xlabel"))
    assert caption.startswith("Model output: probability of class '1'.")


def test_features_without_effect_are_said_and_an_all_zero_row_still_draws():
    figure = ForcePlot("Row 0: force plot", 0.25, [0.5, 0.0, -0.125, 0.0], ["a = 1", "b = 2", "c = 3", "d = 4"], "x")
    root = _root(figure)
    assert "2 features with a SHAP value of 0 not drawn." in " ".join(_texts(root, "xlabel"))
    assert sorted(_texts(root, "feature")) == ["a = 1", "c = 3"]
    flat = _root(ForcePlot("Row 1: force plot", 2.0, [0.0, 0.0], ["a = 1", "b = 2"], "prediction"))
    assert sorted(_texts(flat, "marker")) == ["base value = 2.000", "f(x) = 2.000"]
    assert not _segments(flat) and len(_texts(flat, "tick-x")) >= 2


def test_a_narrow_plot_groups_labels_rather_than_cutting_them():
    rng = np.random.RandomState(0)
    values = rng.randn(40)
    labels = [f"a rather long feature name number {j} = {j * 1.5}" for j in range(40)]
    figure = ForcePlot("Row 7: force plot", 0.0, values, labels, "prediction", width=480)
    root = _root(figure)
    shown = _texts(root, "feature")
    assert all(label in labels or re.fullmatch(r"\+\d+ more", label) for label in shown)
    boxes = sorted(_label_boxes(root, "feature"))
    assert boxes[0][0] >= 0 and boxes[-1][1] <= 480
    assert _apart([left for left, _ in boxes], [right - left for left, right in boxes], 0)


def _apart(lefts: list[float], widths: list[float], gap: float) -> bool:
    return all(left + width + gap <= right + 1e-9 for left, width, right in zip(lefts, widths, lefts[1:], strict=False))


def test_spread_keeps_order_gaps_and_bounds():
    widths = [40, 40, 40, 40]
    lefts = spread([50, 52, 54, 300], widths, -200, 500, 10)
    assert _apart(lefts, widths, 10)
    assert lefts[1] + 20 == pytest.approx(52), "a crowd is centred on its anchors' mean"
    assert lefts[3] == 280, "a box clear of the others is centred on its anchor"
    lefts = spread([50, 52, 54, 300], widths, 0, 320, 10)
    assert _apart(lefts, widths, 10) and lefts[0] == 0 and lefts[3] + 40 <= 320, "and they stay within the bounds"


def test_a_script_name_is_escaped_text():
    name = "<script>alert(1)</script>"
    X = pd.DataFrame(np.random.RandomState(0).randn(80, 2), columns=[name, "b"])
    y = X[name] * 2 + X["b"]
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, y)
    result = shap_values(model, X, detect_task(model, y.to_numpy()), feature_names=[name, "b"], max_rows=10)
    svg = plots.render(plots.force_plot(result, 0, 0)).decode()
    assert name not in svg and "&lt;script&gt;" in svg
    assert not [node for node in ElementTree.fromstring(svg).iter() if node.tag == f"{SVG}script"]
