"""Matplotlib figures from explanation results (Agg backend, never shown, no MLflow)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import shap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from . import image_plots  # noqa: E402
from .keys import key_parts  # noqa: E402
from .results import Drift, Explanation, PermutationResult, ShapResult  # noqa: E402

if TYPE_CHECKING:
    from .compare import Comparison

_MAX_LABEL = 40


def permutation_bar(result: PermutationResult, scorer: str, max_features: int = 20) -> Figure:
    """Mean permutation importance per feature with its standard deviation as error bars."""
    mean, std = result.mean(scorer), result.std(scorer)
    order = np.argsort(-mean)[:max_features][::-1]
    figure = Figure(figsize=(7, 0.35 * len(order) + 1.5))
    axes = figure.subplots()
    axes.barh(np.arange(len(order)), mean[order], xerr=std[order], color="#1f77b4", ecolor="#333333", capsize=3)
    axes.set_yticks(np.arange(len(order)), [_label(result.feature_names[i]) for i in order])
    axes.axvline(0, color="#999999", linewidth=0.8)
    axes.set_xlabel(f"decrease in {scorer} when the feature is shuffled (mean ± std over {result.n_repeats} repeats)")
    axes.set_title(f"Permutation importance ({result.n_rows} rows)")
    return figure


def shap_bar(result: ShapResult, max_features: int = 20) -> Figure:
    """Mean |SHAP| per feature, stacked by output (class) for classifiers."""
    mean_abs = result.mean_abs()
    order = np.argsort(-mean_abs.sum(axis=1))[:max_features][::-1]
    figure = Figure(figsize=(7, 0.35 * len(order) + 1.5))
    axes = figure.subplots()
    left = np.zeros(len(order))
    for k, output in enumerate(result.output_names):
        axes.barh(np.arange(len(order)), mean_abs[order, k], left=left, label=output)
        left += mean_abs[order, k]
    axes.set_yticks(np.arange(len(order)), [_label(result.feature_names[i]) for i in order])
    axes.set_xlabel(f"mean |SHAP value| ({_space_unit(result)})")
    axes.set_title(f"SHAP feature importance ({result.n_explained} rows, {result.algorithm} explainer)")
    if len(result.output_names) > 1:
        axes.legend(title="class", loc="lower right", fontsize="small")
    return figure


def shap_beeswarm(result: ShapResult, output: int, max_features: int = 20) -> Figure:
    """shap's beeswarm plot of one output: every row's value per feature, coloured by the feature value."""
    explanation = shap.Explanation(
        values=result.values[:, :, output],
        base_values=result.base_values[:, output],
        data=_numeric(result.data),
        feature_names=[_label(name) for name in result.feature_names],
    )
    return _capture(lambda: shap.plots.beeswarm(explanation, max_display=max_features, show=False),
                    f"SHAP values {_output_title(result, output)}", f"SHAP value ({_space_unit(result, output)})")


def dependence(result: ShapResult, feature: str, output: int) -> Figure:
    """SHAP value of ``feature`` against its raw value, coloured by its strongest co-varying feature."""
    j = result.feature_names.index(feature)
    shap_column = result.values[:, j, output]
    raw = result.data[feature]
    figure = Figure(figsize=(6.5, 4.5))
    axes = figure.subplots()
    colour_feature = _interaction_partner(result, j, output)
    colour = None if colour_feature is None else _numeric(result.data[[colour_feature]])[:, 0]
    if pd.api.types.is_numeric_dtype(raw) and not isinstance(raw.dtype, pd.CategoricalDtype):
        x = raw.to_numpy(dtype=float)
        axes.set_xlabel(f"{_label(feature)} (raw value)")
    else:
        categories = pd.Index(pd.unique(raw.dropna().astype(str)))
        codes = categories.get_indexer(raw.astype(str)).astype(float)
        codes[raw.isna().to_numpy()] = -1
        x = codes + np.random.RandomState(0).uniform(-0.2, 0.2, len(codes))
        ticks = list(range(len(categories))) + ([-1] if (codes == -1).any() else [])
        labels = [_label(c) for c in categories] + (["missing"] if (codes == -1).any() else [])
        axes.set_xticks(ticks, labels, rotation=30, ha="right")
        axes.set_xlabel(f"{_label(feature)} (category)")
    points = axes.scatter(x, shap_column, c=colour, cmap="coolwarm" if colour is not None else None, s=12, alpha=0.8)
    if colour is not None:
        figure.colorbar(points, ax=axes, label=f"{_label(colour_feature)} (value)")
    axes.axhline(0, color="#999999", linewidth=0.8)
    axes.set_ylabel(f"SHAP value of {_label(feature)} ({_space_unit(result, output)})")
    axes.set_title(f"Dependence: {_label(feature)} {_output_title(result, output)}")
    return figure


def waterfall(result: ShapResult, row: int, output: int, max_display: int = 12) -> Figure:
    """shap's waterfall plot of one explained row: how each feature moves it from the base value."""
    explanation = shap.Explanation(
        values=result.values[row, :, output],
        base_values=result.base_values[row, output],
        data=np.asarray(result.data.iloc[row].to_numpy(), dtype=object),
        feature_names=[_label(name) for name in result.feature_names],
    )
    position = int(result.row_positions[row])
    unit = _space_unit(result, output).replace("impact on the ", "")
    return _capture(lambda: shap.plots.waterfall(explanation, max_display=max_display, show=False),
                    f"Row {position} {_output_title(result, output)}", f"model output: {unit}")


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
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "force.html"
        shap.save_html(str(path), plot)
        return path.read_text(encoding="utf-8")


def drift_ranks(drift: Drift, max_features: int = 15) -> Figure:
    """Rank of each moved feature in the baseline run (left) and in this run (right)."""
    moved = drift.moved.head(max_features)
    figure = Figure(figsize=(6, 0.3 * max(len(moved), 4) + 2))
    axes = figure.subplots()
    for row in moved.itertuples():
        colour = "#1a7f37" if row.shift > 0 else "#c62828"
        axes.plot([0, 1], [row.baseline_rank, row.rank], marker="o", color=colour)
        axes.annotate(_label(row.feature), (1, row.rank), xytext=(6, 0), textcoords="offset points", va="center",
                      fontsize="small")
    axes.invert_yaxis()
    axes.set_xticks([0, 1], ["baseline run", "this run"])
    axes.set_xlim(-0.2, 1.8)
    axes.set_ylabel(f"rank by {drift.method} importance (1 = most important)")
    axes.set_title(f"Features that moved (nDCG@{drift.top_k} {drift.ndcg:.2f}, threshold {drift.threshold:.2f})")
    return figure


def importance_heatmap(comparison: Comparison, method: str, max_features: int = 20) -> Figure:
    """Runs (rows) x top features (columns) of one method, coloured by importance."""
    matrix = comparison.matrix(method).iloc[:, :max_features]
    figure = Figure(figsize=(max(6, 0.45 * matrix.shape[1] + 3), 0.4 * matrix.shape[0] + 2.5))
    axes = figure.subplots()
    image = axes.imshow(matrix.to_numpy(dtype=float), aspect="auto", cmap="viridis")
    axes.set_xticks(range(matrix.shape[1]), [_label(c) for c in matrix.columns], rotation=45, ha="right")
    axes.set_yticks(range(matrix.shape[0]), [_label(r) for r in matrix.index])
    axes.set_xlabel("feature (most important overall first)")
    axes.set_ylabel("run (experiment)")
    unit = "mean |SHAP value|" if method == "shap" else "permutation importance (score drop)"
    figure.colorbar(image, ax=axes, label=unit)
    axes.set_title(f"{method} importance by run")
    return figure


def rank_shift(comparison: Comparison, method: str, max_features: int = 10) -> Figure:
    """Rank of each top feature from run to run, runs in comparison order."""
    rows = comparison.importances[comparison.importances["method"] == method]
    ranks = rows.pivot_table(index="run_label", columns="feature", values="rank", sort=False)
    ranks = ranks.reindex([run.label for run in comparison.runs]).dropna(how="all")
    top = ranks.mean().sort_values().index[:max_features]
    figure = Figure(figsize=(max(6, 0.9 * len(ranks) + 3), 5))
    axes = figure.subplots()
    for feature in top:
        axes.plot(range(len(ranks)), ranks[feature].to_numpy(), marker="o", label=_label(feature))
    axes.invert_yaxis()
    axes.set_xticks(range(len(ranks)), [_label(r) for r in ranks.index], rotation=30, ha="right")
    axes.set_xlabel("run (in comparison order)")
    axes.set_ylabel(f"rank by {method} importance (1 = most important)")
    axes.legend(fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
    axes.set_title(f"How the top features' {method} ranks moved")
    return figure


def comparison_figures(comparison: Comparison) -> dict[str, Figure]:
    """The heatmap and rank-shift chart of every method, keyed by file name."""
    figures = {}
    for method in comparison.methods():
        figures[f"importance_heatmap.{method}.png"] = importance_heatmap(comparison, method)
        figures[f"rank_shift.{method}.png"] = rank_shift(comparison, method)
    return figures


def figure_to_png(figure: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed afterwards.

    Margins come from the tight layout engine, computed within the one draw that renders the PNG
    (``bbox_inches="tight"`` would draw the whole figure twice, the costliest step of the artifacts).
    """
    buffer = io.BytesIO()
    if figure.get_layout_engine() is None:
        figure.set_layout_engine("tight")
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def explanation_figures(explanation: Explanation, dependence_top_k: int) -> dict[str, Figure]:
    """Every figure of one explanation, keyed by its path under the artifact folder."""
    figures: dict[str, Figure] = {}
    permutation = explanation.permutation
    if permutation is not None:
        scorers = key_parts(permutation.scorer_names)
        for scorer in permutation.scorer_names:
            suffix = "" if scorer == permutation.primary_scorer else f".{scorers[scorer]}"
            figures[f"permutation_importance{suffix}.png"] = permutation_bar(permutation, scorer)
    if explanation.drift is not None and len(explanation.drift.moved):
        figures["compare/drift_ranks.png"] = drift_ranks(explanation.drift)
    if explanation.gradcam is not None:
        figures.update(image_plots.gradcam_figures(explanation.gradcam))
    result = explanation.shap
    if result is None:
        return figures
    features = key_parts(explanation.reported_features)
    outputs = key_parts(result.output_names)
    figures["shap_bar.png"] = shap_bar(result)
    if explanation.task.kind == "multiclass":
        for k, output in enumerate(result.output_names):
            figures[f"shap_beeswarm.{outputs[output]}.png"] = shap_beeswarm(result, k)
    else:
        figures["shap_beeswarm.png"] = shap_beeswarm(result, len(result.output_names) - 1)
    mean_abs = result.mean_abs()
    for j in np.argsort(-mean_abs.sum(axis=1))[:dependence_top_k]:
        output = int(np.argmax(mean_abs[j])) if explanation.task.kind == "multiclass" else len(result.output_names) - 1
        feature = result.feature_names[j]
        figures[f"dependence/{features[feature]}.png"] = dependence(result, feature, output)
    for row in result.local_positions:
        row = int(row)
        figures[f"local/waterfall_row{result.row_positions[row]}.png"] = waterfall(result, row, result.explained_output(row))
    return figures


def _capture(draw, title: str, xlabel: str) -> Figure:
    """Run a shap plotting call that draws on pyplot's current figure and hand that figure back."""
    plt.figure()
    draw()
    figure = plt.gcf()
    axes = figure.axes[0]
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    return figure


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
    """A name fit for a plot: at most 40 characters, and no '$' that matplotlib would read as maths."""
    text = str(name)
    text = text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"
    return text.replace("$", r"\$")
