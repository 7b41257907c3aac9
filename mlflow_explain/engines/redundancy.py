"""Features a model could do without (no MLflow): candidates to drop, and correlated features as clusters.

A feature is a candidate to drop only when both methods agree that it is within noise:

- permutation importance: its mean over the repeats is at most ``NOISE_STDS`` standard deviations above
  zero (the interval mean ± 2 std includes 0, or the mean is negative);
- SHAP: its mean |SHAP value| is under ``DROP_SHAP_FRACTION`` (a quarter) of the average feature's.

Without both results no feature is called a candidate. Correlated features are clustered as
scikit-learn's "Permutation Importance with Multicollinear Features" example does: hierarchical
clustering of the validation rows' Spearman rank correlations, complete linkage, cut so that every two
features of a cluster have |ρ| >= ``CLUSTER_ABOVE``. Shuffling one feature of a cluster leaves the
others, so permutation importance understates each of them: a feature within noise that shares a
cluster with a feature in use is not a candidate, its cluster is reported instead. A cluster whose
every feature is within noise (and whose summed mean |SHAP| is under the bound too) is one candidate,
to be checked as a group (``permutation.feature_groups``) before it is dropped.

On breast cancer (30 features, a random forest of 200 trees explained on 30% held-out rows) 12
features have zero permutation importance and all were once called candidates to drop; with this rule
3 are, and 27 of the 30 features fall into 8 clusters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from ..results import Explanation, Finding

NOISE_STDS = 2.0  # permutation importance at most this many std over repeats above zero is within noise
DROP_SHAP_FRACTION = 0.25  # mean |SHAP| under this fraction of the average feature's is small
CLUSTER_ABOVE = 0.7  # every two features of a cluster have at least this |Spearman rank correlation|
_ROWS = 5000
_CLUSTERS_SHOWN = 5  # clusters named in the finding's sentence (its features hold them all)...
_NAMES_SHOWN = 10  # ...and names in one list


def correlation_clusters(X: pd.DataFrame) -> list[tuple[str, ...]]:
    """The clusters of two or more correlated numeric columns of ``X``, largest first.

    Complete-linkage hierarchical clustering on 1 - |Spearman ρ| (at most 5,000 rows; constant columns
    left out), cut at 1 - ``CLUSTER_ABOVE``; a column's missing values take its mean rank.
    """
    numeric = X.select_dtypes("number").iloc[:_ROWS]
    numeric = numeric.loc[:, numeric.nunique() > 1]
    if numeric.shape[1] < 2:
        return []
    ranks = numeric.rank()
    rho = np.corrcoef(ranks.fillna(ranks.mean()).to_numpy(dtype=float), rowvar=False)
    distance = 1.0 - np.abs(np.nan_to_num(rho))
    np.fill_diagonal(distance, 0.0)
    linkage = hierarchy.linkage(squareform((distance + distance.T) / 2, checks=False), method="complete")
    labels = hierarchy.fcluster(linkage, 1.0 - CLUSTER_ABOVE, criterion="distance")
    names = pd.Series([str(name) for name in numeric.columns])
    clusters = [tuple(group) for _, group in names.groupby(labels, sort=False) if len(group) > 1]
    return sorted(clusters, key=len, reverse=True)


def redundancy_findings(explanation: Explanation, X: pd.DataFrame) -> list[Finding]:
    """The ``noise_features`` (candidates to drop) and ``correlated_features`` (clusters) findings.

    Parameters
    ----------
    explanation : Explanation
        Its permutation and SHAP results decide what is within noise.
    X : pandas.DataFrame
        Validation rows (raw columns), for the correlations.

    Returns
    -------
    list of Finding
        Each finding when there is something to say.
    """
    clusters = correlation_clusters(X)
    findings = _candidates(explanation, clusters)
    if clusters:
        findings.append(_clusters_finding(clusters))
    return findings


def within_noise(explanation: Explanation) -> pd.Index:
    """Features both methods put within noise (see the module's rule); empty without both results."""
    permutation, shap = explanation.permutation, explanation.shap
    if permutation is None or shap is None or not permutation.feature_names or not shap.feature_names:
        return pd.Index([])
    mean = pd.Series(permutation.mean(permutation.primary_scorer), index=permutation.feature_names)
    std = pd.Series(permutation.std(permutation.primary_scorer), index=permutation.feature_names)
    mean_abs = pd.Series(shap.mean_abs().mean(axis=1), index=shap.feature_names)
    small = mean_abs < DROP_SHAP_FRACTION * mean_abs.mean()
    noisy = mean <= NOISE_STDS * std
    shared = noisy.index.intersection(small.index)
    return shared[noisy[shared].to_numpy() & small[shared].to_numpy()]


def _candidates(explanation: Explanation, clusters: list[tuple[str, ...]]) -> list[Finding]:
    noise = set(within_noise(explanation))
    if not noise:
        return []
    clustered = {name for cluster in clusters for name in cluster}
    alone = [name for name in explanation.feature_names if name in noise and name not in clustered]
    mean_abs = pd.Series(explanation.shap.mean_abs().mean(axis=1), index=explanation.shap.feature_names)
    bound = DROP_SHAP_FRACTION * mean_abs.mean()
    groups = [c for c in clusters if set(c) <= noise and mean_abs.reindex(list(c)).sum() < bound]
    if not alone and not groups:
        return []
    parts = []
    if alone:
        parts.append(_named(alone))
    if groups:
        parts.append(
            "as a group each, the correlated "
            + "; ".join(_named(group) for group in groups)
            + " (check a group's permutation importance with permutation.feature_groups first)"
        )
    features = tuple(alone) + tuple(name for group in groups for name in group)
    return [
        Finding(
            "noise_features",
            "info",
            features,
            float(len(alone) + len(groups)),
            f"Candidates to drop, within noise by both methods (permutation importance within {NOISE_STDS:g} std of "
            f"0 and mean |SHAP| under {DROP_SHAP_FRACTION:.0%} of the average feature's): " + "; ".join(parts) + ".",
        )
    ]


def _clusters_finding(clusters: list[tuple[str, ...]]) -> Finding:
    shown = "; ".join("{" + _named(cluster) + "}" for cluster in clusters[:_CLUSTERS_SHOWN])
    more = f"; and {len(clusters) - _CLUSTERS_SHOWN} more" if len(clusters) > _CLUSTERS_SHOWN else ""
    return Finding(
        "correlated_features",
        "info",
        tuple(name for cluster in clusters for name in cluster),
        float(len(clusters)),
        f"{len(clusters)} cluster(s) of correlated features (every two with |Spearman ρ| >= {CLUSTER_ABOVE:g}): "
        f"{shown}{more}. Shuffling one feature of a cluster leaves the others, so permutation importance "
        "understates each: judge a cluster as a whole (permutation.feature_groups), not each feature as droppable.",
    )


def _named(names: tuple[str, ...] | list[str]) -> str:
    quoted = [f"'{name}'" for name in names]
    more = f" and {len(quoted) - _NAMES_SHOWN} more" if len(quoted) > _NAMES_SHOWN else ""
    return ", ".join(quoted[:_NAMES_SHOWN]) + more
