"""Figures from explanation results as SVG charts (:mod:`.svg`) and image attribution grids (no MLflow).

Charts are written as SVG text, so a figure costs milliseconds rather than a matplotlib layout
and raster pass; the MLflow UI's artifact viewer and the report show them as images. They look
like shap's: its red-blue colour map for feature values (grey only for missing values), the
features beyond the shown ones summed into one last row, and categorical features coloured
and ordered by their categories, named in a legend.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable

import numpy as np
import pandas as pd
from shap.plots.colors import red_blue

from ..keys import file_parts
from ..results import (
    Comparison,
    Drift,
    Explanation,
    ImageAttributionResult,
    PermutationResult,
    RunImportances,
    ShapResult,
)
from . import image_plots, token_views
from .force_plot import ForcePlot
from .svg import NAN_COLOUR, PALETTE, Chart, Drawing, colours, format_fixed, format_number, significant_decimals

_MAX_LABEL = 40
_MAX_AXIS_CATEGORIES = 30  # categories a dependence plot's x axis names; the rarest beyond are one "other"
_ROW = 22.0  # pixels per feature row in bar charts
_BLUE = "#1f77b4"
_NEGATIVE_BAR = "#ff7f0e"  # a permutation importance below zero: shuffling the feature improved the score
_OTHERS = "#000000"  # the summed SHAP values of the features not shown: no feature value to colour by
_POSITIVE, _NEGATIVE = "#ff0051", "#008bfb"  # shap's red (pushes the output up) and blue (down)
_FEATURE_CMAP = red_blue  # shap's feature-value colours: blue (low) through purple to red (high)


def permutation_bar(result: PermutationResult, scorer: str, max_features: int = 20) -> Chart:
    """Mean permutation importance per feature with ± 1 standard deviation as error bars.

    The ``max_features`` most important features, then every feature whose mean importance is
    negative (marked: shuffling it improved the score), up to ``max_features`` of them; a row
    between says how many features are not shown. The values are the result's (float noise is 0,
    not negative), written as the report's table writes them; the legend counts the negative bars drawn.
    """
    mean, std = result.mean(scorer), result.std(scorer)
    order = np.argsort(-mean, kind="stable")
    kept = [int(i) for i in order if mean[i] >= 0][:max_features]
    negatives = [int(i) for i in order if mean[i] < 0]
    negative = negatives[max(0, len(negatives) - max_features) :]  # the most negative, when there are many
    hidden = len(mean) - len(kept) - len(negative)
    others = f"{hidden} other feature" + ("s" if hidden > 1 else "")
    names = [_label(result.feature_names[i]) for i in kept] + ([others] if hidden else [])
    names += [_label(result.feature_names[i]) for i in negative]
    chart = Chart(
        f"Permutation importance ({result.n_rows} rows)",
        f"decrease in {scorer} when the feature is shuffled (mean ± 1 std over {result.n_repeats} repeats)",
        plot_height=_ROW * len(names),
    )
    chart.y.categories = names[::-1]  # bottom row first
    shown = kept + negative
    rows_from_top = list(range(len(kept))) + list(range(len(kept) + bool(hidden), len(names)))
    positions = len(names) - 1 - np.asarray(rows_from_top, dtype=float)
    chart.hbars(
        positions,
        np.zeros(len(shown)),
        mean[shown],
        [_NEGATIVE_BAR if mean[i] < 0 else _BLUE for i in shown],
        tooltips=[f"{result.feature_names[i]}: {importance_text(mean[i], std[i])} (1 std)" for i in shown],
    )
    chart.error_bars(positions, mean[shown] - std[shown], mean[shown] + std[shown])
    chart.rule(x=0)
    if negative:
        hidden_negative = f" of {len(negatives)}" if len(negatives) > len(negative) else ""
        chart.legend(
            [("below zero: the score improved", _NEGATIVE_BAR)], f"{len(negative)}{hidden_negative} negative shown"
        )
    return chart


def importance_text(mean: float, std: float) -> str:
    """A permutation importance as the report's table and the chart's tooltip both write it: "0.0123 ± 0.0045"."""
    return f"{format_fixed(mean, 4)} ± {format_fixed(std, 4)}"


def shap_bar(result: ShapResult, max_features: int = 20, outputs: list[int] | None = None) -> Chart:
    """Mean |SHAP| per feature averaged over ``outputs`` (default: all), each output's share in its colour.

    A bar's length is the feature's ``shap_mean_abs`` metric. Beyond ``max_features - 1`` features,
    the last bar sums the others' (as shap's bar plot does). A binary classifier's two outputs
    mirror each other, so its caller passes only the positive class.
    """
    outputs = list(range(len(result.output_names))) if outputs is None else outputs
    shares = result.mean_abs()[:, outputs] / len(outputs)
    shown, rest = _top(np.argsort(-shares.sum(axis=1), kind="stable"), max_features)
    rows = [shares[j] for j in shown] + ([shares[rest].sum(axis=0)] if len(rest) else [])
    names = [_label(result.feature_names[j]) for j in shown] + ([f"{len(rest)} other features"] if len(rest) else [])
    rows, names = np.asarray(rows)[::-1], names[::-1]  # bottom row first
    unit = _space_unit(result, outputs[0] if len(outputs) == 1 else None)
    averaged = ", averaged over the classes: each class's share in its colour" if len(outputs) > 1 else ""
    chart = Chart(
        f"SHAP feature importance ({result.n_explained} rows, {result.algorithm} explainer)",
        f"mean |SHAP value| ({unit}){averaged}",
        plot_height=_ROW * len(names),
    )
    chart.y.categories = names
    left = np.zeros(len(names))
    for k, output in enumerate(outputs):
        width = rows[:, k]
        chart.hbars(
            np.arange(len(names)),
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
    """Every row's SHAP value per feature (one dot each, stacked where they crowd), coloured by the feature value.

    Numbers on shap's red-blue map (low to high, a colour bar); categories each in a colour of
    their own, named in a legend; grey for missing values. Beyond ``max_features - 1`` features,
    the last row holds each row's summed SHAP values of the others (as shap's beeswarm does).
    """
    values = result.values[:, :, output]
    shown, rest = _top(np.argsort(-result.mean_abs()[:, output], kind="stable"), max_features)
    title = " ".join(
        part for part in ("SHAP values", _output_title(result, output), f"({result.n_explained} rows)") if part
    )
    n_rows = len(shown) + bool(len(rest))
    chart = Chart(title, f"SHAP value ({_space_unit(result, output)})", plot_height=28.0 * n_rows)
    chart.y.categories = ([f"{len(rest)} other features"] if len(rest) else []) + [
        _label(result.feature_names[j]) for j in shown[::-1]
    ]
    if len(rest):
        summed = values[:, rest].sum(axis=1)
        chart.points(summed, _swarm_offsets(summed), _OTHERS, radius=2.2)
    numeric = False
    for k, j in enumerate(shown):  # most important first, so the legends come in that order
        column = result.data.iloc[:, j]
        if _is_categorical(column):
            fills = _category_colours(chart, column, _label(result.feature_names[j]))
        else:
            fills = _value_colours(column)[0]
            numeric = True
        chart.points(values[:, j], n_rows - 1 - k + _swarm_offsets(values[:, j]), fills, radius=2.2)
    chart.rule(x=0)
    if numeric:
        chart.colour_bar(_FEATURE_CMAP, 0, 1, "feature value (grey: missing)", "low", "high")
    return chart


def dependence(result: ShapResult, feature: str, output: int) -> Chart:
    """SHAP value of ``feature`` against its raw value, coloured by its strongest co-varying feature.

    A categorical feature's categories are on the x axis in their order (an ordered categorical's,
    else sorted), each row's dot jittered within its category.
    """
    j = result.feature_names.index(feature)
    shap_column = result.values[:, j, output]
    raw = result.data.iloc[:, j]
    chart = Chart(f"Dependence: {_label(feature)} {_output_title(result, output)}", width=640, plot_height=300)
    chart.y.label = f"SHAP value of {_label(feature)} ({_space_unit(result, output)})"
    if _is_categorical(raw):
        categories = _categories(raw, _MAX_AXIS_CATEGORIES)
        missing = np.isnan(categories.codes)
        codes = np.where(missing, len(categories.labels), categories.codes)
        x = codes + np.random.RandomState(0).uniform(-0.2, 0.2, len(codes))
        chart.x.categories = [_label(c) for c in categories.labels] + (["missing"] if missing.any() else [])
        chart.x.rotate = 30
        chart.x.label = f"{_label(feature)} (category, {categories.order})"
    else:
        x = raw.to_numpy(dtype=float, na_value=np.nan)
        unplotted = int(np.isnan(x).sum())
        chart.x.label = f"{_label(feature)} (raw value" + (f"; {unplotted} missing not shown)" if unplotted else ")")
    partner = _interaction_partner(result, j, output)
    if partner is None:
        chart.points(x, shap_column, _BLUE)
    else:
        column = result.data.iloc[:, partner]
        name = _label(result.feature_names[partner])
        if _is_categorical(column):
            fills = _category_colours(chart, column, f"colour: {name}")
        else:
            fills, low, high = _value_colours(column)
            chart.colour_bar(_FEATURE_CMAP, low, high, f"{name} (value; grey: missing)")
        chart.points(x, shap_column, fills)
    chart.rule(y=0)
    return chart


def waterfall(result: ShapResult, row: int, output: int, max_display: int = 12) -> Chart:
    """How each feature moves one explained row's output from the base value E[f(X)] to f(x).

    Bars run from the bottom (base value) to the top (the row's output); features beyond
    ``max_display - 1`` are summed into one bar. Every number is written to the same decimals,
    3 significant digits of the largest contribution, so E[f(X)] plus the contributions shown is
    f(x) to the last digit but rounding.
    """
    values = result.values[row, :, output]
    base = float(result.base_values[row, output])
    order = np.argsort(-np.abs(values), kind="stable")
    shown, rest = _top(order, max_display)
    labels = [f"{_label(result.feature_names[j])} = {_value_text(result.data.iloc[row, j])}" for j in shown]
    contributions = list(values[shown])
    if len(rest):
        labels.append(f"{len(rest)} other features")
        contributions.append(float(values[rest].sum()))
    labels, contributions = labels[::-1], np.asarray(contributions[::-1])  # bottom row first
    ends = base + np.cumsum(contributions)
    starts = ends - contributions
    decimals = significant_decimals(contributions, digits=3)
    texts = [format_fixed(contribution, decimals, sign=True) for contribution in contributions]
    unit = _space(result, output)
    chart = Chart(
        f"{row_title(result, row)} {_output_title(result, output)}".strip(),
        f"model output: {unit}; E[f(X)] = {format_fixed(base, decimals)}, f(x) = {format_fixed(ends[-1], decimals)}",
        plot_height=_ROW * len(labels),
    )
    chart.y.categories = labels
    positions = np.arange(len(labels))
    chart.hbars(
        positions,
        starts,
        ends,
        [_POSITIVE if c > 0 else _NEGATIVE for c in contributions],
        tooltips=[f"{label}: {text}" for label, text in zip(labels, texts, strict=True)],
    )
    for y, start, end, text in zip(positions, starts, ends, texts, strict=True):
        chart.text(max(start, end), y, text, dx=4, size=10)
    chart.rule(x=base, dashed=True)
    chart.rule(x=float(ends[-1]), dashed=True)
    x_low, x_high = min(starts.min(), ends.min()), max(starts.max(), ends.max())
    chart.x.limits = (x_low - 0.05 * (x_high - x_low or 1), x_high + 0.15 * (x_high - x_low or 1))  # room for labels
    return chart


def row_title(result: ShapResult, row: int) -> str:
    """Which of the user's rows explained row ``row`` is: its position in the data passed, and its index label."""
    label = result.user_label(row)
    shown = "" if label is None else f" (index {_label(label)})"
    return f"Row {result.user_row(row)}{shown}"


def force_plot(result: ShapResult, row: int, output: int) -> ForcePlot:
    """shap's force plot of one explained row: how each feature pushes the output from E[f(X)] to f(x).

    Its labels hold the whole feature names: the force plot wraps them, or counts them in a "+N more".
    """
    labels = [f"{name} = {_value_text(result.data.iloc[row, j])}" for j, name in enumerate(result.feature_names)]
    return ForcePlot(
        f"{row_title(result, row)}: force plot {_output_title(result, output)}".strip(),
        float(result.base_values[row, output]),
        result.values[row, :, output],
        labels,
        _space(result, output),
    )


def drift_ranks(drift: Drift, max_features: int = 15) -> Chart:
    """Rank of each moved feature in the baseline run (left) and in this run (right)."""
    moved = drift.moved.head(max_features)
    chart = Chart(
        f"Features that moved by {drift.method} importance (nDCG@{drift.top_k} {drift.ndcg:.2f}, "
        f"threshold {drift.threshold:.2f})",
        ylabel="rank (1 = most important)",
        width=560,
        plot_height=24.0 * max(len(moved), 4),
    )
    chart.x.categories = ["baseline run", "this run"]
    chart.x.limits = (-0.3, 1.9)
    chart.y.inverted = chart.y.ranks = True
    for row in moved.itertuples():
        chart.line(
            [0, 1], [row.baseline_rank, row.rank], "#1a7f37" if row.shift > 0 else "#c62828", label=str(row.feature)
        )
        chart.text(1, row.rank, _label(row.feature), dx=8)
    return chart


def importance_heatmap(comparison: Comparison, method: str, max_features: int = 20) -> Chart:
    """Runs (rows, grouped by experiment) x top features (columns), coloured by each run's share of its total.

    Each run's importances are divided by their sum (negative permutation importances count as 0),
    so runs whose importances are in different units (a forest's SHAP values in probability,
    a boosted model's in log-odds) share one colour scale; the tooltips keep the raw values.
    """
    raw = comparison.matrix(method)
    positive = raw.clip(lower=0) + 0.0  # + 0.0: a -0.0 read from a run is 0, not a "-0.0000%" share
    shares = positive.div(positive.sum(axis=1).replace(0, np.nan), axis=0)
    shares = shares[shares.mean().sort_values(ascending=False).index]
    n_features = shares.shape[1]
    shares = shares.iloc[:, :max_features]
    runs, groups = _runs_by_experiment(comparison, list(shares.index))
    shares = shares.reindex([run.run_id for run in runs])
    values, raw_values = shares.to_numpy(dtype=float), raw.reindex(index=shares.index, columns=shares.columns)
    unit = "mean |SHAP value|" if method == "shap" else "permutation importance (negative as 0)"
    cut = f", top {max_features} of {n_features} features" if n_features > max_features else ""
    chart = Chart(
        f"{method} importance by run, as a share of each run's total{cut}",
        "feature (largest mean share first)",
        "experiment, run",
        width=max(640, 34 * shares.shape[1] + 420),
        plot_height=max(26.0 * len(runs), 120.0),
    )
    chart.x.categories = [_label(c) for c in shares.columns]
    chart.x.rotate = 45
    names = _run_names(runs)
    chart.y.categories = [_label(name) for name in names]
    chart.y.groups = groups
    chart.y.inverted = True
    high = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    fills = np.asarray(colours(values.ravel(), "viridis", 0.0, high)).reshape(values.shape)
    for i, (run, name) in enumerate(zip(runs, names, strict=True)):
        for j, feature in enumerate(shares.columns):
            chart.rect(
                j - 0.5,
                j + 0.5,
                i - 0.5,
                i + 0.5,
                fills[i, j],
                f"{name} ({run.experiment_name}) / {feature}: {values[i, j]:.4%} of the run's total "
                f"({unit} {raw_values.iloc[i, j]:.4g})",
                css_class="cell",
            )
    chart.colour_bar("viridis", 0.0, high, f"share of the run's total {unit}", "0%", f"{high:.0%}")
    return chart


def rank_shift(comparison: Comparison, method: str, max_features: int = 10) -> Chart:
    """Rank of each top feature from run to run: runs grouped by experiment, in comparison order within each."""
    rows = comparison.importances[comparison.importances["method"] == method]
    ranks = rows.pivot_table(index="run_id", columns="feature", values="rank", sort=False)
    runs, groups = _runs_by_experiment(comparison, list(ranks.index))
    ranks = ranks.reindex([run.run_id for run in runs])
    top = ranks.mean().sort_values().index[:max_features]
    chart = Chart(
        f"How the top features' {method} ranks moved",
        "run, grouped by experiment",
        f"rank by {method} importance (1 = most important)",
        width=max(640, 90 * len(runs) + 420),
    )
    chart.x.categories = [_label(name) for name in _run_names(runs)]
    chart.x.groups = groups
    chart.x.rotate = 30
    chart.y.inverted = chart.y.ranks = True
    entries = []
    for k, feature in enumerate(top):
        colour = PALETTE[k % len(PALETTE)]
        chart.line(np.arange(len(runs)), ranks[feature].to_numpy(dtype=float), colour, label=str(feature))
        entries.append((_label(feature), colour))
    chart.legend(entries, "feature")
    return chart


def _runs_by_experiment(
    comparison: Comparison, run_ids: list[str]
) -> tuple[list[RunImportances], list[tuple[str, int, int]]]:
    """The runs among ``run_ids``, grouped by experiment (in order of first appearance), and the groups' spans."""
    chosen = set(run_ids)
    runs = [run for run in comparison.runs if run.run_id in chosen]
    experiments = list(dict.fromkeys(run.experiment_name for run in runs))
    runs.sort(key=lambda run: experiments.index(run.experiment_name))  # stable: comparison order within each
    groups, first = [], 0
    for experiment in experiments:
        count = sum(run.experiment_name == experiment for run in runs)
        groups.append((_label(experiment), first, first + count - 1))
        first += count
    return runs, groups


def _run_names(runs: list[RunImportances]) -> list[str]:
    """A name per run: its run name (its id's first 8 characters without one), with the id where names repeat."""
    names = [run.run_name or run.run_id[:8] for run in runs]
    counts = Counter((run.experiment_name, name) for run, name in zip(runs, names, strict=True))
    return [
        f"{name} ({run.run_id[:8]})" if counts[(run.experiment_name, name)] > 1 else name
        for run, name in zip(runs, names, strict=True)
    ]


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
    """Every figure of one explanation, keyed by its path under the artifact folder.

    Each method's result is drawn by its entry in :data:`_METHOD_FIGURES` (an image attribution
    method by its grids); a method without one has no figure of its own (the report shows its table).
    """
    figures: dict[str, Drawing] = {}
    for result in explanation.results.values():
        if isinstance(result, ImageAttributionResult):
            figures.update(image_plots.image_figures(result))
        elif (draw := _METHOD_FIGURES.get(result.method)) is not None:
            figures.update(draw(result, explanation, dependence_top_k))
    if explanation.drift is not None and len(explanation.drift.moved):
        figures["compare/drift_ranks.svg"] = drift_ranks(explanation.drift)
    return figures


def _permutation_figures(
    result: PermutationResult, explanation: Explanation, dependence_top_k: int
) -> dict[str, Drawing]:
    """A bar chart per scorer: ``permutation_importance.svg`` for the primary one, ``.<scorer>.svg`` for others."""
    scorers = file_parts(result.scorer_names)
    figures: dict[str, Drawing] = {}
    for scorer in result.scorer_names:
        suffix = "" if scorer == result.primary_scorer else f".{scorers[scorer]}"
        figures[f"permutation_importance{suffix}.svg"] = permutation_bar(result, scorer)
    return figures


def _shap_figures(result: ShapResult, explanation: Explanation, dependence_top_k: int) -> dict[str, Drawing]:
    """The bar and beeswarm summaries (per class for multiclass), dependence plots of the top features, waterfalls."""
    figures: dict[str, Drawing] = {}
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
    if len(result.local_positions):  # the first local row also gets a force plot
        row = int(result.local_positions[0])
        figures[f"local/force_plot_row{result.user_row(row)}.svg"] = force_plot(
            result, row, result.explained_output(row)
        )
    return figures


_METHOD_FIGURES: dict[str, Callable[..., dict[str, Drawing]]] = {
    "permutation": _permutation_figures,
    "shap": _shap_figures,
    "tokens": token_views.token_figures,
}  # a tabular method's figures by method name: (result, explanation, dependence_top_k) -> {path: drawing}


def _top(order: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(shown, rest) of features in ``order``: all when they fit in ``limit`` rows, else ``limit - 1`` and the rest."""
    return (order, order[:0]) if len(order) <= limit else (order[: limit - 1], order[limit - 1 :])


def _interaction_partner(result: ShapResult, j: int, output: int) -> int | None:
    """The feature whose SHAP values correlate most (in absolute value) with feature ``j``'s, by position."""
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
    return best if correlations[best] > 0 else None


def _is_categorical(column: pd.Series) -> bool:
    """Categories rather than numbers: a pandas categorical, strings or other objects, booleans."""
    dtype = column.dtype
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or not (pd.api.types.is_numeric_dtype(dtype))
    )


@dataclasses.dataclass
class _Categories:
    """A categorical column's category labels in their order, and each row's position among them (NaN: missing)."""

    labels: list[str]
    codes: np.ndarray
    order: str  # how the categories are ordered, said on the axis


def _categories(column: pd.Series, limit: int) -> _Categories:
    """The categories present in ``column``: an ordered categorical's order, else sorted (numbers as numbers).

    Beyond ``limit``, the ``limit - 1`` most frequent keep their order and the rest become one last
    "other categories" entry.
    """
    present = column.dropna()
    if isinstance(column.dtype, pd.CategoricalDtype):
        seen = set(present.unique())
        levels = [level for level in column.dtype.categories if level in seen]
        ordered = bool(column.dtype.ordered)
    else:
        levels, ordered = list(pd.unique(present)), False
    if not ordered:
        try:
            levels = sorted(levels)
        except TypeError:  # mixed types: sorted as text
            levels = sorted(levels, key=str)
    codes = pd.Categorical(column, categories=levels).codes.astype(int)
    labels = [str(level) for level in levels]
    if len(levels) > limit:
        counts = np.bincount(codes[codes >= 0], minlength=len(levels))
        kept = np.sort(np.argsort(-counts, kind="stable")[: limit - 1])
        position = np.full(len(levels), limit - 1)
        position[kept] = np.arange(limit - 1)
        codes = np.where(codes >= 0, position[np.maximum(codes, 0)], -1)
        labels = [labels[k] for k in kept] + [f"{len(levels) - len(kept)} other categories"]
    return _Categories(labels, np.where(codes >= 0, codes, np.nan), "in their order" if ordered else "sorted")


def _category_colours(chart: Chart, column: pd.Series, title: str) -> list[str]:
    """A colour per row by its category (in the categories' order), the legend section ``title`` naming them."""
    categories = _categories(column, len(PALETTE))
    missing = np.isnan(categories.codes)
    entries = [(_label(label), PALETTE[k]) for k, label in enumerate(categories.labels)]
    chart.legend(entries + ([("missing", NAN_COLOUR)] if missing.any() else []), title)
    return [NAN_COLOUR if lost else PALETTE[int(code)] for code, lost in zip(categories.codes, missing, strict=True)]


def _value_colours(column: pd.Series) -> tuple[list[str], float, float]:
    """A colour per row on shap's red-blue map between the 5th and 95th percentiles (returned), grey for missing."""
    values = column.to_numpy(dtype=float, na_value=np.nan)
    low, high = _colour_limits(values)
    return colours(values, _FEATURE_CMAP, low, high), low, high


def _space(result: ShapResult, output: int | None = None) -> str:
    """What the model output is: 'prediction', or the probability or log-odds (of a class)."""
    if result.output_space == "prediction":
        return "prediction"
    if len(result.output_names) == 1:  # a regression explained before its link (a booster's log or logistic link)
        return "raw score (margin, before the link)"
    target = "" if output is None else f" of class '{_label(result.output_names[output])}'"
    if result.output_space == "probability":
        return f"probability{target}"
    return f"log-odds (margin){target}"


def _space_unit(result: ShapResult, output: int | None = None) -> str:
    return f"impact on the {_space(result, output)}"


def _output_title(result: ShapResult, output: int) -> str:
    if result.output_space == "prediction" or len(result.output_names) == 1:
        return ""
    return f"(class '{_label(result.output_names[output])}')"


def _label(name: object) -> str:
    """A name fit for a plot: at most 40 characters."""
    text = str(name)
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"


def _value_text(value: object) -> str:
    """A raw feature value as the waterfall shows it: numbers for reading (4 digits), missing as 'missing'."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "missing"
    if isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)):
        return format_number(float(value), digits=4)
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
