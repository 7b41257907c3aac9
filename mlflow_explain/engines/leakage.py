"""Target leakage told apart from a strong, honest feature (no MLflow): the ``target_leakage`` findings.

What a feature does on its own decides, not its share of the importance. Each of the ``LEAK_CANDIDATES``
most important features (by either method) makes a cluster with the numeric features that share its
value beyond the target: |Pearson r| >= ``LEAK_CLUSTER_ABOVE`` and still >= ``LEAK_PARTIAL_ABOVE`` once
the target is known (within classes, or after regressing both on the target). Two pieces of one leaked
value (a spending amount and its ratio to income, r = 0.83) stay correlated given the target; an honest
feature and a copy of the target do not, so the copy is named alone.

A decision tree on the cluster's columns only is scored out of fold on the validation rows (3 seeded
folds, at most 5,000 rows): R² for a regressor, for a classifier 1 - error / error of always predicting
the majority class. A cluster is a leakage suspect when

- its skill is at least ``LEAKAGE_SKILL`` (0.98): it predicts the target nearly perfectly, which no honest
  feature of a problem worth a model does; or
- its skill is at least ``NEAR_LEAK_SKILL`` (0.85) and it *matches the label*: for a classifier, in every
  class at least ``LABEL_MATCH`` (90%) of the rows have that class's own most common value, a different
  one per class; for a regressor, a single column equals an affine function of the target (within
  ``MATCH_TOLERANCE``, 1% of its standard deviation) on at least ``LABEL_MATCH`` of the rows. That is a
  value recorded because of the label with a few rows disagreeing (a copy of the label with 3% of it
  flipped: skill 0.92, match 97%; diabetes' target copied with 3% of the rows shuffled: R² 0.93, match 97%).

The label match is what tells such a leak from an honest feature as strong: iris's petal width alone
has skill 0.93 (and the model is no better) but takes many values within each class (the most common
one covers 22% of a class); the best breast-cancer feature has skill 0.72, and the generated strong honest
feature of ``tests/test_leakage.py`` (a derogatory-reports count holding most of the importance) 0.77.
Known limits: a leak no most-important feature belongs to is not looked for; categorical features make
clusters of one; a regressor's cluster of several columns is matched by the first rule only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ..results import Finding, Task

LEAKAGE_SKILL = 0.98  # out-of-fold skill of a feature cluster alone from which it is a leakage suspect...
NEAR_LEAK_SKILL = 0.85  # ...or from which it is one when it also matches the label (classifiers)
LABEL_MATCH = 0.9  # share of rows (of each class) whose value is the one the label gives: the value matches the label
MATCH_TOLERANCE = 0.01  # a regressor's feature matches the target within this share of its standard deviation
LEAK_CLUSTER_ABOVE = 0.7  # |Pearson r| joining features into one cluster for the leakage check...
LEAK_PARTIAL_ABOVE = 0.3  # ...when they stay correlated this much once the target is known
LEAK_CANDIDATES = 10  # the leakage check fits the clusters of this many most important features
_MATCH_LINEAR = 0.99  # |r| of the matching rows with the target: they follow it, not one constant value
_ROWS = 5000
_FOLDS = 3
_MIN_LEAF = 5


def leakage_findings(task: Task, importances: dict[str, pd.Series], X: pd.DataFrame, y: np.ndarray) -> list[Finding]:
    """A ``target_leakage`` warning per cluster of correlated features that alone predicts ``y`` as a leak would.

    Parameters
    ----------
    task : Task
        The explained model's task.
    importances : dict of str to pandas.Series
        Importance per feature of each method; the most important features are the ones checked.
    X : pandas.DataFrame
        Validation rows (raw columns).
    y : numpy.ndarray
        Their target (one column).

    Returns
    -------
    list of Finding
        One per leaking cluster not part of a larger leaking cluster; empty with too few rows (or a class
        with fewer rows than folds).
    """
    X, y = X.iloc[:_ROWS].reset_index(drop=True), y[:_ROWS]
    if len(y) < 2 * _FOLDS * _MIN_LEAF or (task.is_classification and pd.Series(y).value_counts().min() < _FOLDS):
        return []
    clusters = _leak_clusters(X, y, task, importances)
    leaks = {}
    for cluster in clusters:
        skill = _skill_alone(task, X[list(cluster)], y)
        match = label_match(X[list(cluster)], y) if task.is_classification else target_match(X[list(cluster)], y)
        if skill >= LEAKAGE_SKILL or (skill >= NEAR_LEAK_SKILL and match >= LABEL_MATCH):
            leaks[cluster] = (skill, match)
    return [
        _finding(task, cluster, skill, match)
        for cluster, (skill, match) in leaks.items()
        if not any(set(cluster) < set(other) for other in leaks)  # part of a larger cluster that is named
    ]


def _finding(task: Task, cluster: tuple[str, ...], skill: float, match: float) -> Finding:
    named = ", ".join(f"'{name}'" for name in cluster)
    measure = "skill over the majority class" if task.is_classification else "R²"
    verb, pronoun = ("predict", "them") if len(cluster) > 1 else ("predicts", "it")
    if skill >= LEAKAGE_SKILL:
        how = f"{named} alone {verb} the target nearly perfectly on the validation rows"
    elif task.is_classification:
        how = f"{named} {'match' if len(cluster) > 1 else 'matches'} the label on {match:.0%} of each class's rows"
    else:
        how = f"{named} equals an affine function of the target on {match:.0%} of the rows"
    return Finding(
        "target_leakage",
        "warning",
        cluster,
        skill,
        f"{how} (out-of-fold {measure} {skill:.3f} of a decision tree on {pronoun} only): check for target "
        "leakage, a value known only once the outcome is.",
    )


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


def label_match(columns: pd.DataFrame, y: np.ndarray) -> float:
    """How far ``columns`` are a relabelling of the classes ``y``: the smallest share, over the classes, of a
    class's rows that have its most common values; 0 when two classes share their most common values."""
    values = pd.Series(list(columns.itertuples(index=False, name=None)), dtype=object)
    modes, shares = [], []
    for label in pd.unique(y):
        counts = values[y == label].value_counts(normalize=True, dropna=False)
        modes.append(counts.index[0])
        shares.append(float(counts.iloc[0]))
    return min(shares) if len(set(modes)) == len(modes) else 0.0


def target_match(columns: pd.DataFrame, y: np.ndarray) -> float:
    """How far one numeric column is a copy of a continuous target ``y``: the share of rows where it equals an
    affine function of ``y`` within ``MATCH_TOLERANCE`` of its standard deviation (0 for several columns).

    The line is fitted twice, the second time on the half of the rows closest to the first fit, so that a
    few disagreeing rows do not bend it; the matching rows must also follow ``y`` (|r| >= 0.99), so a
    column that is mostly one value matches nothing.
    """
    if columns.shape[1] != 1 or not pd.api.types.is_numeric_dtype(columns.iloc[:, 0]):
        return 0.0
    values = columns.iloc[:, 0].to_numpy(dtype=float)
    finite = np.isfinite(values)
    values, target = values[finite], np.asarray(y, dtype=float)[finite]
    if len(values) < 3 or np.std(values) == 0 or np.std(target) == 0:
        return 0.0
    distance = np.abs(values - np.polyval(np.polyfit(target, values, 1), target))
    close = distance <= np.median(distance)
    distance = np.abs(values - np.polyval(np.polyfit(target[close], values[close], 1), target))
    matched = distance <= MATCH_TOLERANCE * np.std(values)
    if matched.sum() < 3 or np.std(target[matched]) == 0 or np.std(values[matched]) == 0:
        return 0.0
    linear = abs(float(np.corrcoef(values[matched], target[matched])[0, 1])) >= _MATCH_LINEAR
    return float(matched.sum()) / len(columns) if linear else 0.0
