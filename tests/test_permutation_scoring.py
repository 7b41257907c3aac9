"""The scorer table equals scikit-learn's scorers, bit for bit, and its statistics add up over blocks of rows."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer
from sklearn.preprocessing import StandardScaler

from mlflow_explain.methods import permutation_scoring
from mlflow_explain.methods.permutation import permutation_importance
from mlflow_explain.methods.permutation_scoring import SCORES, Targets


@functools.cache
def _regressor():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y), X, y.to_numpy()


@functools.cache
def _binary():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y), X, y.to_numpy()


@functools.cache
def _multiclass():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return LogisticRegression(max_iter=1000).fit(X, y), X, y


CASES = [
    (name, make)
    for name, entry in SCORES.items()
    for make in ([_regressor] if entry.numeric else [_binary, _multiclass])
]


def _weights(n_rows, weighted):
    return np.random.RandomState(1).uniform(0.2, 3.0, n_rows) if weighted else None


def _sklearn_score(name, model, X, y, weights):
    scorer = get_scorer(name)
    return scorer(model, X, y) if weights is None else scorer(model, X, y, sample_weight=weights)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name, make", CASES, ids=[f"{name}-{make.__name__[1:]}" for name, make in CASES])
def test_table_entry_equals_sklearn_scorer_and_adds_up_over_blocks(name, make, weighted):
    model, X, y = make()
    entry, weights = SCORES[name], _weights(len(y), weighted)
    response = np.asarray(getattr(model, entry.response)(X))
    classes = getattr(model, "classes_", None)
    statistics = entry.statistics(response[None], Targets(X, y, weights), classes)
    assert statistics.shape == (1, len(entry.statistic_names))
    assert entry.score(statistics)[0] == _sklearn_score(name, model, X, y, weights)  # bit for bit

    # Two blocks of rows (partitions) sharing one center: their summed statistics give the whole's score.
    center, half = float(np.mean(y)) if entry.numeric else None, len(y) // 2
    blocks = [slice(0, half), slice(half, None)]
    summed = sum(
        entry.statistics(
            response[None, rows], Targets(None, y[rows], None if weights is None else weights[rows], center), classes
        )
        for rows in blocks
    )
    assert entry.score(summed)[0] == pytest.approx(entry.score(statistics)[0], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name, make", CASES, ids=[f"{name}-{make.__name__[1:]}" for name, make in CASES])
def test_local_engine_scores_through_the_table_as_sklearn_does(name, make, weighted, monkeypatch):
    model, X, y = make()
    weights = _weights(len(y), weighted)

    def no_scorer_call(*args, **kwargs):
        raise AssertionError(f"{name} was scored by scikit-learn's scorer, not by the table")

    kwargs = dict(scoring=[name], n_repeats=2, random_state=4, max_samples=0.7, sample_weight=weights)
    theirs = sklearn_permutation_importance(model, X, y, **kwargs)[name]
    monkeypatch.setattr(permutation_scoring, "_call", no_scorer_call)
    ours = permutation_importance(model, X, y, **kwargs)
    assert ours.baseline_scores[name] == _sklearn_score(name, model, X, y, weights)
    np.testing.assert_array_equal(ours.importances[name], theirs.importances)
