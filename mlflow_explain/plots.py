"""Figures from explanation results as SVG charts (:mod:`.svg`) and Grad-CAM image grids (no MLflow).

Charts are written as SVG text, so a figure costs milliseconds rather than a matplotlib layout
and raster pass; the MLflow UI's artifact viewer and the report show them as images.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import shap

from . import image_plots
from .keys import file_parts
from .results import Comparison, Drift, Explanation, PermutationResult, ShapResult
from .svg import PALETTE, Chart, Drawing, colours, format_number

_MAX_LABEL = 40
_ROW = 22.0  # pixels per feature row in bar charts
_BLUE = "#1f77b4"
_POSITIVE, _NEGATIVE = "#ff0051", "#008bfb"  # shap's red (pushes the output up) and blue (down)
_FEATURE_CMAP = "coolwarm"


def permutation_bar(result: PermutationResult, scorer: str, max_features: int = 20) -> Chart:
    """Mean permutation importance per feature with its standard deviation as error bars."""
    mean, std = result.mean(scorer), result.std(scorer)
    order = np.argsort(-mean)[:max_features][::-1]
    chart = Chart(
        f"Permutation importance ({result.n_rows} rows)",
        f"decrease in {scorer} when the feature is shuffled (mean ± std over {result.n_repeats} repeats)",
        plot_height=_ROW * len(order),
    )
    names = [_label(result.feature_names[i]) for i in order]
    chart.y.categories = names
    positions = np.arange(len(order))
    chart.hbars(
        positions,
        np.zeros(len(order)),
        mean[order],
        _BLUE,
        tooltips=[f"{name}: {mean[i]:.4g} ± {std[i]:.4g}" for name, i in zip(names, order, strict=True)],
    )
    chart.error_bars(positions, mean[order] - std[order], mean[order] + std[order])
    chart.rule(x=0)
    return chart


def shap_bar(result: ShapResult, max_features: int = 20, outputs: list[int] | None = None) -> Chart:
    """Mean |SHAP| per feature averaged over ``outputs`` (default: all), each output's share in its colour.

    A bar's length is the feature's ``shap_mean_abs`` metric. A binary classifier's two outputs
    mirror each other, so its caller passes only the positive class.
    """
    outputs = list(range(len(result.output_names))) if outputs is None else outputs
    shares = result.mean_abs()[:, outputs] / len(outputs)
    order = np.argsort(-shares.sum(axis=1))[:max_features][::-1]
    unit = _space_unit(result, outputs[0] if len(outputs) == 1 else None)
    averaged = ", averaged over the classes: each class's share in its colour" if len(outputs) > 1 else ""
    chart = Chart(
        f"SHAP feature importance ({result.n_explained} rows, {result.algorithm} explainer)",
        f"mean |SHAP value| ({unit}){averaged}",
        plot_height=_ROW * len(order),
    )
    names = [_label(result.feature_names[i]) for i in order]
    chart.y.categories = names
    left = np.zeros(len(order))
    for k, output in enumerate(outputs):
        width = shares[order, k]
        chart.hbars(
            np.arange(len(order)),
            left,
            left + width,
            PALETTE[k % len(PALETTE)],
            tooltips=[f"{name}, {result.output_names[output]}: {w:.4g}" for name, w in zip(names, width, strict=True)],
        )
        left = left + width
    if len(outputs) > 1:
        chart.legend(
            [(_label(result.output_names[output]), PALETTE[k % len(PALETTE)]) for k, output in enumerate(outputs)],
            "class",
        )
    return chart


def shap_beeswarm(result: ShapResult, output: int, max_features: int = 20) -> Chart:
    """Every row's SHAP value per feature (one dot each, stacked where they crowd), coloured by the feature value."""
    values = result.values[:, :, output]
    data = _numeric(result.data)
    order = np.argsort(-np.abs(values).mean(axis=0))[:max_features][::-1]
    shown = "" if len(order) == values.shape[1] else f", top {len(order)} of {values.shape[1]} features"
    title = " ".join(
        part for part in ("SHAP values", _output_title(result, output), f"({result.n_explained} rows{shown})") if part
    )
    chart = Chart(title, f"SHAP value ({_space_unit(result, output)})", plot_height=28.0 * len(order))
    chart.y.categories = [_label(result.feature_names[j]) for j in order]
    for position, j in enumerate(order):
        low, high = _colour_limits(data[:, j])
        chart.points(
            values[:, j],
            position + _swarm_offsets(values[:, j]),
            colours(data[:, j], _FEATURE_CMAP, low, high),
            radius=2.2,
        )
    chart.rule(x=0)
    chart.colour_bar(_FEATURE_CMAP, 0, 1, "feature value (grey: missing)", "low", "high")
    return chart


def dependence(result: ShapResult, feature: str, output: int) -> Chart:
    """SHAP value of ``feature`` against its raw value, coloured by its strongest co-varying feature."""
    j = result.feature_names.index(feature)
    shap_column = result.values[:, j, output]
    raw = result.data[feature]
    chart = Chart(f"Dependence: {_label(feature)} {_output_title(result, output)}", width=640, plot_height=300)
    chart.y.label = f"SHAP value of {_label(feature)} ({_space_unit(result, output)})"
    if pd.api.types.is_numeric_dtype(raw) and not isinstance(raw.dtype, pd.CategoricalDtype):
        x = raw.to_numpy(dtype=float, na_value=np.nan)
        chart.x.label = f"{_label(feature)} (raw value)"
    else:
        categories = [str(c) for c in pd.unique(raw.dropna().astype(str))]
        codes = pd.Index(categories).get_indexer(raw.astype(str)).astype(float)
        missing = raw.isna().to_numpy()
        codes[missing] = len(categories)
        x = codes + np.random.RandomState(0).uniform(-0.2, 0.2, len(codes))
        chart.x.categories = [_label(c) for c in categories] + (["missing"] if missing.any() else [])
        chart.x.rotate = 30
        chart.x.label = f"{_label(feature)} (category)"
    partner = _interaction_partner(result, j, output)
    if partner is None:
        chart.points(x, shap_column, _BLUE)
    else:
        partner_values = _numeric(result.data[[partner]])[:, 0]
        low, high = _colour_limits(partner_values)
        chart.points(x, shap_column, colours(partner_values, _FEATURE_CMAP, low, high))
        chart.colour_bar(_FEATURE_CMAP, low, high, f"{_label(partner)} (value)")
    chart.rule(y=0)
    return chart


def waterfall(result: ShapResult, row: int, output: int, max_display: int = 12) -> Chart:
    """How each feature moves one explained row's output from the base value E[f(X)] to f(x).

    Bars run from the bottom (base value) to the top (the row's output); features beyond
    ``max_display - 1`` are summed into one bar.
    """
    values = result.values[row, :, output]
    base = float(result.base_values[row, output])
    order = np.argsort(-np.abs(values))
    shown = order[: max_display - 1] if len(values) > max_display else order
    labels = [f"{_label(result.feature_names[j])} = {_value_text(result.data.iloc[row, j])}" for j in shown]
    contributions = list(values[shown])
    if len(shown) < len(values):
        labels.append(f"{len(values) - len(shown)} other features")
        contributions.append(float(values.sum() - values[shown].sum()))
    labels, contributions = labels[::-1], np.asarray(contributions[::-1])  # bottom row first
    ends = base + np.cumsum(contributions)
    starts = ends - contributions
    unit = _space_unit(result, output).replace("impact on the ", "")
    chart = Chart(
        f"{row_title(result, row)} {_output_title(result, output)}",
        f"model output: {unit}; E[f(X)] = {format_number(base)}, f(x) = {format_number(float(ends[-1]))}",
        plot_height=_ROW * len(labels),
    )
    chart.y.categories = labels
    positions = np.arange(len(labels))
    chart.hbars(
        positions,
        starts,
        ends,
        [_POSITIVE if c > 0 else _NEGATIVE for c in contributions],
        tooltips=[f"{label}: {c:+.4g}" for label, c in zip(labels, contributions, strict=True)],
    )
    for y, start, end, contribution in zip(positions, starts, ends, contributions, strict=True):
        chart.text(max(start, end), y, f"{contribution:+.3g}", dx=4, size=10)
    chart.rule(x=base, dashed=True)
    chart.rule(x=float(ends[-1]), dashed=True)
    x_low, x_high = min(starts.min(), ends.min()), max(starts.max(), ends.max())
    chart.x.limits = (x_low - 0.05 * (x_high - x_low or 1), x_high + 0.15 * (x_high - x_low or 1))  # room for labels
    return chart


def force_plot_html(result: ShapResult, row: int, output: int) -> str:
    """A self-contained HTML page (shap's JavaScript inline) with the interactive force plot of one row."""
    plot = shap.plots.force(
        float(result.base_values[row, output]),
        result.values[row, :, output],
        features=np.asarray(result.data.iloc[row].astype(str).to_numpy(), dtype=object),
        feature_names=list(result.feature_names),
        out_names=result.output_names[output],
        matplotlib=False,
    )
    page = io.StringIO()
    shap.save_html(page, plot)
    # shap writes the plot's data as raw JSON inside a <script>: a feature name holding "</script>" would end the
    # script there and turn the rest of the name into markup. "<" as \u003c is the same JSON, and inert.
    data = json.dumps(plot.data)
    return page.getvalue().replace(data, data.replace("<", "\\u003c"))


def drift_ranks(drift: Drift, max_features: int = 15) -> Chart:
    """Rank of each moved feature in the baseline run (left) and in this run (right)."""
    moved = drift.moved.head(max_features)
    chart = Chart(
        f"Features that moved (nDCG@{drift.top_k} {drift.ndcg:.2f}, threshold {drift.threshold:.2f})",
        ylabel=f"rank by {drift.method} importance (1 = most important)",
        width=560,
        plot_height=24.0 * max(len(moved), 4),
    )
    chart.x.categories = ["baseline run", "this run"]
    chart.x.limits = (-0.3, 1.9)
    chart.y.inverted = chart.y.integer = True
    for row in moved.itertuples():
        chart.line(
            [0, 1], [row.baseline_rank, row.rank], "#1a7f37" if row.shift > 0 else "#c62828", label=str(row.feature)
        )
        chart.text(1, row.rank, _label(row.feature), dx=8)
    return chart


def importance_heatmap(comparison: Comparison, method: str, max_features: int = 20) -> Chart:
    """Runs (rows) x top features (columns) of one method, coloured by importance."""
    matrix = comparison.matrix(method).iloc[:, :max_features]
    values = matrix.to_numpy(dtype=float)
    unit = "mean |SHAP value|" if method == "shap" else "permutation importance (score drop)"
    chart = Chart(
        f"{method} importance by run",
        "feature (most important overall first)",
        "run (experiment)",
        width=max(640, 34 * matrix.shape[1] + 420),
        plot_height=max(26.0 * matrix.shape[0], 120.0),
    )
    chart.x.categories = [_label(c) for c in matrix.columns]
    chart.x.rotate = 45
    chart.y.categories = [_label(r) for r in matrix.index]
    chart.y.inverted = True
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    fills = np.asarray(colours(values.ravel(), "viridis", low, high)).reshape(values.shape)
    for i, run in enumerate(matrix.index):
        for j, feature in enumerate(matrix.columns):
            chart.rect(
                j - 0.5,
                j + 0.5,
                i - 0.5,
                i + 0.5,
                fills[i, j],
                f"{run} / {feature}: {values[i, j]:.4g}",
                css_class="cell",
            )
    chart.colour_bar("viridis", low, high, unit)
    return chart


def rank_shift(comparison: Comparison, method: str, max_features: int = 10) -> Chart:
    """Rank of each top feature from run to run, runs in comparison order."""
    rows = comparison.importances[comparison.importances["method"] == method]
    ranks = rows.pivot_table(index="run_label", columns="feature", values="rank", sort=False)
    ranks = ranks.reindex([run.label for run in comparison.runs]).dropna(how="all")
    top = ranks.mean().sort_values().index[:max_features]
    chart = Chart(
        f"How the top features' {method} ranks moved",
        "run (in comparison order)",
        f"rank by {method} importance (1 = most important)",
        width=max(640, 90 * len(ranks) + 420),
    )
    chart.x.categories = [_label(r) for r in ranks.index]
    chart.x.rotate = 30
    chart.y.inverted = chart.y.integer = True
    entries = []
    for k, feature in enumerate(top):
        colour = PALETTE[k % len(PALETTE)]
        chart.line(np.arange(len(ranks)), ranks[feature].to_numpy(dtype=float), colour, label=str(feature))
        entries.append((_label(feature), colour))
    chart.legend(entries, "feature")
    return chart


def comparison_figures(comparison: Comparison) -> dict[str, Chart]:
    """The heatmap and rank-shift chart of every method, keyed by file name."""
    figures = {}
    for method in comparison.methods():
        figures[f"importance_heatmap.{method}.svg"] = importance_heatmap(comparison, method)
        figures[f"rank_shift.{method}.svg"] = rank_shift(comparison, method)
    return figures


def render(figure: Drawing) -> bytes:
    """A chart or an image grid as the bytes of its SVG document."""
    return figure.to_svg().encode("utf-8")


def explanation_figures(explanation: Explanation, dependence_top_k: int) -> dict[str, Drawing]:
    """Every figure of one explanation, keyed by its path under the artifact folder ."""
    figures: dict[str, Drawing] = {}
    permutation = explanation.permutation
    if permutation is not None:
        scorers = file_parts(permutation.scorer_names)
        for scorer in permutation.scorer_names:
            suffix = "" if scorer == permutation.primary_scorer else f".{scorers[scorer]}"
            figures[f"permutation_importance{suffix}.svg"] = permutation_bar(permutation, scorer)
    if explanation.drift is not None and len(explanation.drift.moved):
        figures["compare/drift_ranks.svg"] = drift_ranks(explanation.drift)
    if explanation.gradcam is not None:
        figures.update(image_plots.gradcam_figures(explanation.gradcam))
    result = explanation.shap
    if result is None:
        return figures
    features = file_parts(explanation.reported_features)
    outputs = file_parts(result.output_names)
    positive_class = [len(result.output_names) - 1] if explanation.task.kind == "binary" else None
    figures["shap_bar.svg"] = shap_bar(result, outputs=positive_class)
    if explanation.task.kind == "multiclass":
        for k, output in enumerate(result.output_names):
            figures[f"shap_beeswarm.{outputs[output]}.svg"] = shap_beeswarm(result, k)
    else:
        figures["shap_beeswarm.svg"] = shap_beeswarm(result, len(result.output_names) - 1)
    mean_abs = result.mean_abs()
    for j in np.argsort(-mean_abs.sum(axis=1))[:dependence_top_k]:
        output = int(np.argmax(mean_abs[j])) if explanation.task.kind == "multiclass" else len(result.output_names) - 1
        feature = result.feature_names[j]
        figures[f"dependence/{features[feature]}.svg"] = dependence(result, feature, output)
    for row in result.local_positions:
        row = int(row)
        figures[f"local/waterfall_row{result.user_row(row)}.svg"] = waterfall(result, row, result.explained_output(row))
    return figures


def row_title(result: ShapResult, row: int) -> str:
    """Which of the user's rows explained row ``row`` is: its position in the data passed, and its index label."""
    label = result.user_label(row)
    shown = "" if label is None else f" (index {_label(label)})"
    return f"Row {result.user_row(row)}{shown}"


def _interaction_partner(result: ShapResult, j: int, output: int) -> str | None:
    """The feature whose SHAP values correlate most (in absolute value) with feature ``j``'s."""
    values = result.values[:, :, output]
    if values.shape[1] < 2 or values.shape[0] < 3 or np.std(values[:, j]) == 0:
        return None
    deviations = values.std(axis=0)
    correlations = np.zeros(values.shape[1])
    valid = deviations > 0
    centred = values[:, valid] - values[:, valid].mean(axis=0)
    own = values[:, j] - values[:, j].mean()
    correlations[valid] = np.abs(centred.T @ own) / (deviations[valid] * np.std(values[:, j]) * len(own))
    correlations[j] = -1
    best = int(np.argmax(correlations))
    return result.feature_names[best] if correlations[best] > 0 else None


def _numeric(frame: pd.DataFrame) -> np.ndarray:
    """A frame as floats for colouring: non-numeric columns become category codes, NaN stays NaN."""
    columns = []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) and not isinstance(column.dtype, pd.CategoricalDtype):
            columns.append(column.to_numpy(dtype=float, na_value=np.nan))
        else:
            codes = pd.Categorical(column.astype("string")).codes.astype(float)
            codes[codes < 0] = np.nan
            columns.append(codes)
    return np.column_stack(columns)


def _space_unit(result: ShapResult, output: int | None = None) -> str:
    if result.output_space == "prediction":
        return "impact on the prediction"
    target = "" if output is None else f" of class '{_label(result.output_names[output])}'"
    if result.output_space == "probability":
        return f"impact on the probability{target}"
    return f"impact on the log-odds (margin){target}"


def _output_title(result: ShapResult, output: int) -> str:
    return "" if result.output_space == "prediction" else f"(class '{_label(result.output_names[output])}')"


def _label(name: object) -> str:
    """A name fit for a plot: at most 40 characters."""
    text = str(name)
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"


def _value_text(value: object) -> str:
    """A raw feature value as the waterfall shows it: numbers to 4 significant digits, missing as 'missing'."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "missing"
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return f"{float(value):.4g}"
    return _label(value)


def _colour_limits(values: np.ndarray) -> tuple[float, float]:
    """The 5th and 95th percentiles of the finite values (their range when those coincide), as shap colours."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0
    low, high = np.percentile(finite, [5, 95])
    return (float(low), float(high)) if high > low else (float(finite.min()), float(finite.max()))


def _swarm_offsets(values: np.ndarray, spread: float = 0.4, bins: int = 100) -> np.ndarray:
    """Vertical offsets that stack dots with nearly equal values (0, +1, -1, +2, ... steps within a bin)."""
    offsets = np.zeros(len(values))
    finite = np.isfinite(values)
    if not finite.any():
        return offsets
    low, high = values[finite].min(), values[finite].max()
    binned = np.zeros(len(values), dtype=int)
    if high > low:
        binned[finite] = np.minimum(((values[finite] - low) / (high - low) * bins).astype(int), bins - 1)
    rank = pd.Series(binned).groupby(binned).cumcount().to_numpy()
    steps = np.where(rank % 2 == 1, (rank + 1) // 2, -(rank // 2))
    widest = max(int(np.bincount(binned).max()), 2)
    return steps * min(0.08, 2 * spread / widest)
