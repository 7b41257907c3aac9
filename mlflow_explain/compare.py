"""Cross-run comparison of importance tables and explanation drift (pure computation, no MLflow).

Every run's ``importances.csv`` is the same long table, so comparing runs is comparing tables:
for each method, importance per feature per run, their ranks, and pairwise stability (Spearman
rank correlation, top-k overlap, nDCG@k of one ranking against the other's importances, the
score SageMaker Clarify's model monitor uses for feature-attribution drift).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from . import plots, report, tracking
from .config import ConfigSource, ExplainConfig, load_config
from .errors import InvalidInputError
from .results import Drift, RunImportances

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Comparison:
    """Importances of several runs side by side, their pairwise stability, and what was left out."""

    runs: list[RunImportances]
    importances: pd.DataFrame
    stability: pd.DataFrame
    top_k: int
    notes: list[str]
    run_id: str | None = None  # the comparison run it was logged to

    def methods(self) -> list[str]:
        return sorted(self.importances["method"].unique())

    def matrix(self, method: str) -> pd.DataFrame:
        """Importance as runs (rows, in order) x features (columns, most important overall first)."""
        rows = self.importances[self.importances["method"] == method]
        matrix = rows.pivot_table(index="run_label", columns="feature", values="importance", sort=False)
        matrix = matrix.reindex([run.label for run in self.runs]).dropna(how="all")
        return matrix[matrix.mean().sort_values(ascending=False).index]


def summary_importance(table: pd.DataFrame, method: str) -> pd.Series:
    """One importance per feature for ``method``: SHAP over all outputs, or the primary permutation scorer."""
    chosen = table["method"].to_numpy(dtype=object) == method  # plain arrays: pandas' string ops cost far more
    if not chosen.any():
        return pd.Series(dtype=float)
    outputs = table["output"].to_numpy(dtype=object)[chosen]
    chosen[chosen] = outputs == ("all" if method == "shap" else outputs[0])
    features = pd.Index(table["feature"].to_numpy(dtype=object)[chosen].tolist(), name="feature")
    return pd.Series(table["importance"].to_numpy(dtype=float)[chosen], index=features, name="importance")


def spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman rank correlation of two importance series over their shared features."""
    shared = a.index.intersection(b.index)
    if len(shared) < 2:
        return float("nan")
    return float(spearmanr(a[shared], b[shared]).statistic)


def top_k_overlap(a: pd.Series, b: pd.Series, k: int) -> float:
    """Share of the top-k features of ``a`` that are also in the top k of ``b``."""
    k = min(k, len(a), len(b))
    if k == 0:
        return float("nan")
    return len(set(a.nlargest(k).index) & set(b.nlargest(k).index)) / k


def ndcg_at_k(reference: pd.Series, other: pd.Series, k: int) -> float:
    """nDCG@k of ``other``'s ranking, with ``reference``'s importances (clipped at 0) as relevance.

    1.0 when ``other`` puts the reference's top features first in the reference's order. Ties in
    ``other`` keep their order in ``other``'s index.
    """
    relevance = reference.clip(lower=0)
    k = min(k, len(relevance))
    ideal = relevance.sort_values(ascending=False).iloc[:k].to_numpy()
    ranked = relevance.reindex(other.sort_values(ascending=False, kind="stable").index[:k]).fillna(0).to_numpy()
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    best = float(ideal @ discounts[: len(ideal)])
    return float(ranked @ discounts[: len(ranked)]) / best if best > 0 else float("nan")


def drift(baseline: RunImportances, current: pd.DataFrame, k: int, threshold: float) -> Drift | None:
    """Drift of ``current`` (an importance table) against ``baseline``, on SHAP if both have it."""
    for method in ("shap", "permutation"):
        old, new = summary_importance(baseline.table, method), summary_importance(current, method)
        if len(old.index.intersection(new.index)) >= 2:
            ranks = pd.DataFrame(
                {
                    "baseline_rank": old.rank(ascending=False, method="first"),
                    "rank": new.rank(ascending=False, method="first"),
                }
            ).dropna()
            ranks["shift"] = ranks["baseline_rank"] - ranks["rank"]
            moved = ranks[ranks["shift"] != 0].sort_values("shift", key=np.abs, ascending=False)
            return Drift(
                baseline_run_id=baseline.run_id,
                baseline_label=baseline.label,
                method=method,
                ndcg=ndcg_at_k(old, new, k),
                spearman=spearman(old, new),
                top_k_overlap=top_k_overlap(old, new, k),
                top_k=k,
                threshold=threshold,
                moved=moved.rename_axis("feature").reset_index(),
            )
    return None


def compare_runs(runs: list[RunImportances], top_k: int = 10, notes: list[str] | None = None) -> Comparison:
    """Side-by-side importances and pairwise stability of ``runs`` (ordered by ``order_value``, else start time)."""
    runs = sorted(runs, key=lambda run: run.order_value if run.order_value is not None else run.start_time)
    notes = list(notes or [])
    frames = []
    for run in runs:
        for method in sorted(run.table["method"].unique()):
            importance = summary_importance(run.table, method)
            frames.append(
                pd.DataFrame(
                    {
                        "run_id": run.run_id,
                        "run_label": run.label,
                        "experiment": run.experiment_name,
                        "start_time": run.start_time,
                        "method": method,
                        "feature": importance.index,
                        "importance": importance.to_numpy(),
                        "rank": importance.rank(ascending=False, method="first").astype(int).to_numpy(),
                    }
                )
            )
    feature_sets = {run.run_id: frozenset(run.table["feature"]) for run in runs}
    if len(set(feature_sets.values())) > 1:
        notes.append("The runs do not all have the same features; stability is computed on the shared ones.")
    return Comparison(
        runs, pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), _stability(runs, top_k), top_k, notes
    )


def _stability(runs: list[RunImportances], k: int) -> pd.DataFrame:
    rows = []
    for a, b in itertools.combinations(runs, 2):
        for method in ("permutation", "shap"):
            first, second = summary_importance(a.table, method), summary_importance(b.table, method)
            shared = first.index.intersection(second.index)
            if len(shared) < 2:
                continue
            first, second = first[shared], second[shared]
            rows.append(
                {
                    "run_a": a.run_id,
                    "run_b": b.run_id,
                    "label_a": a.label,
                    "label_b": b.label,
                    "method": method,
                    "shared_features": len(shared),
                    "spearman": spearman(first, second),
                    f"top_{k}_overlap": top_k_overlap(first, second, k),
                    f"ndcg_at_{k}": ndcg_at_k(first, second, k),
                }
            )
    return pd.DataFrame(rows)


def baseline_drift(
    run_id: str, importances: pd.DataFrame, config: ExplainConfig, features: list[str] | None = None
) -> Drift | None:
    """Drift of a new explanation against the baseline run ``config.compare.baseline`` names, if any.

    The baseline's importances are read from its metrics, their keys mapped back to ``features``
    (default: the features of ``importances``; pass the explanation's reported features).
    """
    baseline_run = tracking.find_baseline(run_id, config.compare.baseline)
    if baseline_run is None:
        logger.info("No baseline run with an explanation to compare run %s with.", run_id)
        return None
    names = features if features is not None else list(dict.fromkeys(importances["feature"]))
    baseline = tracking.logged_importances(baseline_run, names)
    if baseline is None:
        return None
    return drift(baseline, importances, config.compare.top_k, config.compare.drift_threshold)


def compare(
    experiment_names: list[str] | None = None,
    experiment_ids: list[str] | None = None,
    run_ids: list[str] | None = None,
    filter_string: str | None = None,
    max_runs: int = 50,
    log_to: str | None = None,
    order_by: str | None = None,
    config: ConfigSource = None,
) -> Comparison:
    """Compare the explanations of several runs, across experiments, and log the comparison.

    Parameters
    ----------
    experiment_names, experiment_ids : list of str, optional
        Experiments whose runs are compared (up to ``max_runs`` newest, filtered by ``filter_string``).
    run_ids : list of str, optional
        Exactly these runs instead.
    filter_string : str, optional
        An MLflow search filter, e.g. ``"params.model = 'rf'"``.
    max_runs : int, default=50
    log_to : str, optional
        Experiment (created if needed) that receives the comparison run; default the first run's.
    order_by : str, optional
        Metric ordering the runs in the plots (ascending); default their start time.
    config : path, dict or ExplainConfig, optional
        ``compare.top_k`` and ``logging.artifact_dir`` are read from it.

    Returns
    -------
    Comparison
        Importances by run, pairwise stability, notes on skipped runs, and the comparison run id.
    """
    cfg = load_config(config)
    runs, notes = tracking.find_runs(experiment_names, experiment_ids, run_ids, filter_string or "", max_runs)
    if not runs:
        raise InvalidInputError("No runs matched: " + (" ".join(notes) or "check the experiments and the filter."))
    explained = []
    for run in runs:
        importances = tracking.read_importances(run, cfg.logging.artifact_dir, order_by)
        if importances is None:
            notes.append(f"Run {run.info.run_name or run.info.run_id} has no explanation; skipped.")
        else:
            explained.append(importances)
    if not explained:
        raise InvalidInputError(f"None of the {len(runs)} matching run(s) has an explanation to compare.")
    if len(explained) == 1:
        notes.append("Only one run has an explanation: there is nothing to compare it with.")
    comparison = compare_runs(explained, cfg.compare.top_k, notes)
    for note in comparison.notes:
        logger.warning("mlflow_explain.compare: %s", note)
    with tempfile.TemporaryDirectory(prefix="mlflow_explain_compare_") as folder:
        directory = Path(folder)
        images = {name: plots.render(figure) for name, figure in plots.comparison_figures(comparison).items()}
        for name, svg in images.items():
            (directory / name).write_bytes(svg)
        comparison.importances.to_csv(directory / "importances_by_run.csv", index=False)
        comparison.stability.to_csv(directory / "stability.csv", index=False)
        (directory / "report.html").write_text(report.render_comparison(comparison, images), encoding="utf-8")
        experiment_id = tracking.experiment_id(log_to) if log_to else runs[0].info.experiment_id
        comparison.run_id = tracking.log_comparison(
            directory, experiment_id, f"compare {len(explained)} runs", _summary_metrics(comparison)
        )
    return comparison


def _summary_metrics(comparison: Comparison) -> dict[str, float]:
    metrics: dict[str, float] = {"compare/runs": len(comparison.runs)}
    if len(comparison.stability):
        k = comparison.top_k
        for method, rows in comparison.stability.groupby("method"):
            metrics[f"compare/mean_spearman.{method}"] = rows["spearman"].mean()
            metrics[f"compare/min_ndcg_at_k.{method}"] = rows[f"ndcg_at_{k}"].min()
    return metrics
