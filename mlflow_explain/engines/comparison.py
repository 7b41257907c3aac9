"""Cross-run comparison of importance tables and explanation drift: the metrics (pure computation, no MLflow).

Every run's ``importances.csv`` is the same long table, so comparing runs is comparing tables:
for each method, importance per feature per run, their ranks, and pairwise stability (Spearman
rank correlation, top-k overlap, nDCG@k of one ranking against the other's importances, the
score SageMaker Clarify's model monitor uses for feature-attribution drift).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..results import BaselineCandidate, Comparison, Drift, RunImportances

_SAME_FAMILY_RULE = (
    "drift is measured only against a run of the same model family and features "
    "(compare.baseline_match: family; 'any' compares any two runs)"
)


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
    """Drift of ``current`` (an importance table) against ``baseline``: on SHAP if both have it, else on token
    attributions (a model whose only input is text), else on permutation importance."""
    for method in ("shap", "tokens", "permutation"):
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


def no_baseline_reason(spec: str, family: str, n_features: int, candidate: BaselineCandidate | None) -> str:
    """The sentence saying why an explanation has no baseline run, so no drift.

    Parameters
    ----------
    spec : str
        ``compare.baseline``: ``previous``, ``best:<metric>`` or a run id.
    family : str
        The explanation's model family.
    n_features : int
        Its number of features.
    candidate : BaselineCandidate or None
        The run ``spec`` names, or the latest (best) explained run of any family; None when there is none.
        A candidate of the same family differs by its features.
    """
    metric = spec.split(":", 1)[1] if spec.startswith("best:") else None
    if candidate is None:
        if metric:
            return f"No drift measured: no explained run in this experiment has the metric {metric!r} to compare with."
        return "No drift measured: no earlier run in this experiment has an explanation to compare with."
    if candidate.family is None:
        why = "records no model family (it was explained by an earlier mlflow_explain)"
    elif candidate.family != family:
        why = f"is a {candidate.family} model"
    else:
        why = f"has other features than these {n_features}"
    if spec == "previous" or metric:
        which = "the latest" if spec == "previous" else f"the best by {metric}"
        wanted = f"a {family} model on these {n_features} features"
        return (
            f"No drift measured: no explained run in this experiment is {wanted} ({which}, {candidate.label}, "
            f"{why}); {_SAME_FAMILY_RULE}."
        )
    this = f", this one a {family}" if candidate.family not in (None, family) else ""
    return f"No drift measured: the baseline run {candidate.label} {why}{this}; {_SAME_FAMILY_RULE}."


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
