"""Findings a debugger wants from one explanation (no MLflow): target leakage, noise, disagreement.

Each finding is a small record with a kind, a severity, the features involved, a value and one
readable sentence; they go into summary.json and the report.

Target leakage (``target_leakage``, a warning) is told apart from a strong, honest feature
(``dominant_feature``, information) by what the feature does on its own, not by its share of the
importance. Each of the ``LEAK_CANDIDATES`` most important features (by either method) makes a
cluster with the numeric features that share its value beyond the target: |Pearson r| >=
``LEAK_CLUSTER_ABOVE`` and still >= ``LEAK_PARTIAL_ABOVE`` once the target is known (within classes,
or after regressing both on the target). Two pieces of one leaked value (a spending amount and its
ratio to income, r = 0.83) stay correlated given the target; an honest feature and a copy of the
target do not, so the copy is named alone. A decision tree on the cluster's columns only is scored
out of fold on the validation rows (3 seeded folds, at most 5,000 rows): R² for a regressor, for a
classifier 1 - error / error of always predicting the majority class. A skill of at least
``LEAKAGE_SKILL`` means the cluster alone predicts the target nearly perfectly, which no honest
feature of a problem worth a model does: the finding names the whole cluster. On the generated data
of ``tests/test_leakage.py`` a leaked copy of the target and the split leak score 1.0, a strong honest
feature (a derogatory-reports count holding most of the importance, the outcome noisy around it)
0.77, the best single diabetes feature 0.19 (R²). Known limit: a leak no most-important feature
belongs to is not looked for, and categorical features make clusters of one.

The permutation-vs-SHAP disagreement ranks only the features above noise (permutation importance
more than ``NOISE_STDS`` standard deviations over the repeats above zero and at least ``NOISE_SHARE``
of the largest): features the model does not use tie near zero in both methods, and their order is
noise (22 such features made a healthy model's rankings "disagree"). A disagreement of fewer than
``DISAGREEMENT_MIN_FEATURES`` ranked features is information, not a warning: among four features two
swaps of neighbours already make Spearman 0.4.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ..results import Explanation, Finding, Task

DOMINANT_SHARE = 0.5  # one feature holding more than this share of the importance is worth saying
DISAGREEMENT_BELOW = 0.5  # Spearman correlation of the two rankings under which they disagree...
DISAGREEMENT_MIN_FEATURES = 5  # ...when at least this many features are ranked (4 give Spearman in steps of 0.2)
CORRELATED_ABOVE = 0.9  # |Pearson r| above which two features can split importance between them
LEAKAGE_SKILL = 0.98  # out-of-fold skill of a feature cluster alone from which it is a leakage suspect
LEAK_CLUSTER_ABOVE = 0.7  # |Pearson r| joining features into one cluster for the leakage check...
LEAK_PARTIAL_ABOVE = 0.3  # ...when they stay correlated this much once the target is known
LEAK_CANDIDATES = 10  # the leakage check fits the clusters of this many most important features
NOISE_STDS = 2.0  # permutation importance above this many std over repeats is above noise...
NOISE_SHARE = 0.01  # ...and at least this share of the largest importance
_CORRELATION_ROWS = 5000
_PAIRS_SHOWN = 5
_FOLDS = 3
_MIN_LEAF = 5


def diagnose(explanation: Explanation, X: pd.DataFrame, y: np.ndarray | None = None) -> list[Finding]:
    """Every finding for ``explanation`` computed on validation rows ``X`` (raw columns) and their target ``y``.

    Without ``y``, with a target of several columns (a multi-output regressor) or with fewer rows than
    folds there is no leakage check.
    """
    importances = _importances(explanation)
    leaks = [] if y is None or np.ndim(y) != 1 else _leakage(explanation.task, importances, X, np.asarray(y))
    leaked = {feature for finding in leaks for feature in finding.features}
    findings = list(leaks)
    for method, importance in importances.items():
        findings += [finding for finding in _dominant(method, importance) if finding.features[0] not in leaked]
    if explanation.permutation is not None:
        findings += _noise(explanation)
    findings += _disagreement(explanation, importances)
    findings += _correlated(X)
    return findings


def _importances(explanation: Explanation) -> dict[str, pd.Series]:
    """Importance per feature of each method: primary-scorer permutation importance and mean |SHAP| (all outputs)."""
    series = {}
    permutation, shap = explanation.permutation, explanation.shap
    if permutation is not None and permutation.feature_names:
        series["permutation"] = pd.Series(permutation.mean(permutation.primary_scorer), index=permutation.feature_names)
    if shap is not None and shap.feature_names:
        series["shap"] = pd.Series(shap.mean_abs().mean(axis=1), index=shap.feature_names)
    return series


def _dominant(method: str, importance: pd.Series) -> list[Finding]:
    positive = importance.clip(lower=0)
    if positive.sum() <= 0 or len(positive) < 2:
        return []
    share = positive / positive.sum()
    top = share.idxmax()
    if share[top] <= DOMINANT_SHARE:
        return []
    label = "permutation importance" if method == "permutation" else "mean |SHAP value|"
    return [
        Finding(
            "dominant_feature",
            "info",
            (top,),
            float(share[top]),
            f"'{top}' carries {share[top]:.0%} of the {label}; on its own it does not predict the target "
            "nearly perfectly (no sign of target leakage, see target_leakage).",
        )
    ]


def _noise(explanation: Explanation) -> list[Finding]:
    result = explanation.permutation
    mean = result.mean(result.primary_scorer)
    noise = tuple(name for name, value in zip(result.feature_names, mean, strict=True) if value <= 0)
    if not noise:
        return []
    shown = ", ".join(f"'{name}'" for name in noise[:10]) + (" ..." if len(noise) > 10 else "")
    return [
        Finding(
            "noise_features",
            "info",
            noise,
            float(len(noise)),
            f"{len(noise)} feature(s) with zero or negative permutation importance ({shown}): "
            "shuffling them does not hurt the score; candidates to drop.",
        )
    ]


def _disagreement(explanation: Explanation, importances: dict[str, pd.Series]) -> list[Finding]:
    """How the two rankings agree on the features above noise (ties near zero are noise, not disagreement)."""
    if len(importances) < 2:
        return []
    permutation, shap = importances["permutation"], importances["shap"]
    shared = permutation.index.intersection(shap.index)
    above = shared.intersection(above_noise(explanation))
    if len(above) < 3:
        return []
    rho = float(spearmanr(permutation[above], shap[above]).statistic)
    if np.isnan(rho):
        return []
    disagree = rho < DISAGREEMENT_BELOW
    alarm = disagree and len(above) >= DISAGREEMENT_MIN_FEATURES
    verdict = "agree" if not disagree else ("disagree" if alarm else "differ")
    few = disagree and not alarm
    caveat = f", too few features to call it a disagreement (under {DISAGREEMENT_MIN_FEATURES})" if few else ""
    return [
        Finding(
            "method_disagreement",
            "warning" if alarm else "info",
            tuple(above),
            rho,
            f"Permutation importance and mean |SHAP| rankings of the {len(above)} features above noise "
            f"{verdict} (Spearman {rho:.2f}{caveat}; {len(shared) - len(above)} "
            "features at noise level not ranked).",
        )
    ]


def above_noise(explanation: Explanation) -> pd.Index:
    """Features whose primary-scorer permutation importance is above noise.

    Above noise: more than ``NOISE_STDS`` std over the repeats above zero, and at least ``NOISE_SHARE``
    of the largest importance.
    """
    result = explanation.permutation
    mean, std = result.mean(result.primary_scorer), result.std(result.primary_scorer)
    floor = NOISE_SHARE * max(float(mean.max()), 0.0) if len(mean) else 0.0
    return pd.Index(result.feature_names)[(mean > 0) & (mean > NOISE_STDS * std) & (mean >= floor)]


def _leakage(task: Task, importances: dict[str, pd.Series], X: pd.DataFrame, y: np.ndarray) -> list[Finding]:
    """A ``target_leakage`` warning per cluster of correlated features that alone predicts ``y`` nearly perfectly."""
    X, y = X.iloc[:_CORRELATION_ROWS].reset_index(drop=True), y[:_CORRELATION_ROWS]
    if len(y) < 2 * _FOLDS * _MIN_LEAF or (task.is_classification and pd.Series(y).value_counts().min() < _FOLDS):
        return []
    clusters = _leak_clusters(X, y, task, importances)
    findings = []
    for cluster in clusters:
        skill = _skill_alone(task, X[list(cluster)], y)
        if skill < LEAKAGE_SKILL or any(set(cluster) < set(other) for other in clusters):
            continue  # not near-deterministic, or part of a larger cluster that is named
        named = ", ".join(f"'{name}'" for name in cluster)
        measure = "skill over the majority class" if task.is_classification else "R²"
        verb, pronoun = ("predict", "them") if len(cluster) > 1 else ("predicts", "it")
        findings.append(
            Finding(
                "target_leakage",
                "warning",
                cluster,
                skill,
                f"{named} alone {verb} the target nearly perfectly on the validation rows (out-of-fold {measure} "
                f"{skill:.3f} of a decision tree on {pronoun} only): check for target leakage, a value known only "
                "once the outcome is.",
            )
        )
    return findings


def _leak_clusters(
    X: pd.DataFrame, y: np.ndarray, task: Task, importances: dict[str, pd.Series]
) -> list[tuple[str, ...]]:
    """Each of the most important features with the numeric features that share its value beyond the target.

    Feature ``g`` joins ``f`` when |r(f, g)| >= ``LEAK_CLUSTER_ABOVE`` and their correlation given the target
    (within classes, or after regressing both on the target) is at least ``LEAK_PARTIAL_ABOVE``: two pieces of
    one leaked value stay correlated once the target is known, an honest feature and a copy of the target do not.
    """
    top = dict.fromkeys(
        name
        for importance in importances.values()
        for name in importance.sort_values(ascending=False).index[:LEAK_CANDIDATES]
        if name in X.columns
    )
    numeric = X.select_dtypes("number")
    numeric = numeric.loc[:, numeric.nunique() > 1]
    correlation = numeric.corr()
    given_target = _given_target(numeric, y, task).corr()
    clusters = []
    for name in top:
        if name not in correlation.columns:
            clusters.append((name,))
            continue
        linked = (correlation[name].abs() >= LEAK_CLUSTER_ABOVE) & (given_target[name].abs() >= LEAK_PARTIAL_ABOVE)
        clusters.append(tuple(dict.fromkeys([name, *(str(other) for other in correlation.index[linked])])))
    return list(dict.fromkeys(tuple(sorted(cluster, key=list(X.columns).index)) for cluster in clusters))


def _given_target(numeric: pd.DataFrame, y: np.ndarray, task: Task) -> pd.DataFrame:
    """The columns less what the target explains: minus their class means, or their least-squares fit on ``y``."""
    if task.is_classification:
        return numeric - numeric.groupby(y).transform("mean")
    centred = y - y.mean()
    slope = (numeric - numeric.mean()).mul(centred, axis=0).sum() / max(float(centred @ centred), 1e-300)
    return numeric - numeric.mean() - np.outer(centred, slope)


def _skill_alone(task: Task, columns: pd.DataFrame, y: np.ndarray) -> float:
    """Out-of-fold skill of a decision tree on ``columns`` only: R², or 1 - error / majority-class error."""
    encoded = pd.DataFrame(
        {
            name: column
            if pd.api.types.is_numeric_dtype(column)
            else pd.Series(pd.factorize(column)[0]).where(column.notna().to_numpy())
            for name, column in columns.items()
        }
    ).to_numpy(dtype=float)
    if task.is_classification:
        tree = DecisionTreeClassifier(min_samples_leaf=_MIN_LEAF, random_state=0)
        folds = StratifiedKFold(_FOLDS, shuffle=True, random_state=0)
        error = float(np.mean(cross_val_predict(tree, encoded, y, cv=folds) != y))
        majority_error = 1.0 - pd.Series(y).value_counts(normalize=True).iloc[0]
        return 1.0 - error / majority_error if majority_error > 0 else 0.0
    tree = DecisionTreeRegressor(min_samples_leaf=_MIN_LEAF, random_state=0)
    predicted = cross_val_predict(tree, encoded, y, cv=KFold(_FOLDS, shuffle=True, random_state=0))
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - predicted) ** 2)) / total if total > 0 else 0.0


def _correlated(X: pd.DataFrame) -> list[Finding]:
    numeric = X.select_dtypes("number").iloc[:_CORRELATION_ROWS]
    numeric = numeric.loc[:, numeric.nunique() > 1]
    if numeric.shape[1] < 2:
        return []
    correlation = numeric.corr().to_numpy()
    names = [str(name) for name in numeric.columns]
    pairs = sorted(
        (
            (abs(correlation[i, j]), correlation[i, j], names[i], names[j])
            for i, j in zip(*np.triu_indices(len(names), k=1), strict=True)
            if abs(correlation[i, j]) > CORRELATED_ABOVE
        ),
        reverse=True,
    )
    if not pairs:
        return []
    shown = "; ".join(f"'{a}' and '{b}' (r = {r:.2f})" for _, r, a, b in pairs[:_PAIRS_SHOWN])
    more = f"; and {len(pairs) - _PAIRS_SHOWN} more" if len(pairs) > _PAIRS_SHOWN else ""
    features = tuple(dict.fromkeys(name for _, _, a, b in pairs for name in (a, b)))
    return [
        Finding(
            "correlated_features",
            "info",
            features,
            float(len(pairs)),
            f"{len(pairs)} correlated feature pair(s), |r| > {CORRELATED_ABOVE}: {shown}{more}. Shuffling one "
            "feature of a pair leaves the other, so permutation importance may be split between them.",
        )
    ]
