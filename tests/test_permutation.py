"""Permutation importance equals sklearn.inspection.permutation_importance, batched."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.linear_model import LogisticRegression, Ridge

from mlflow_explain.methods import permutation
from mlflow_explain.methods.permutation import permutation_importance
from tests.helpers import mixed_frame, mixed_pipeline


def _sklearn(model, X, y, **kwargs):
    result = sklearn_permutation_importance(model, X, y, **kwargs)
    return result if "importances" not in result else {"default": result}


def _assert_same(ours, theirs, names):
    for ours_name, theirs_name in names:
        np.testing.assert_allclose(ours.importances[ours_name], theirs[theirs_name].importances, rtol=0, atol=1e-9)


def _regressor():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return RandomForestRegressor(n_estimators=30, random_state=0).fit(X, y), X, y.to_numpy()


def _binary():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y), X, y.to_numpy()


def _multiclass():
    X, y = load_wine(return_X_y=True)
    return LogisticRegression(max_iter=5000).fit(X, y), X, y


def _pipeline():
    X, y = mixed_frame()
    return mixed_pipeline(GradientBoostingClassifier(n_estimators=30, random_state=0)).fit(X, y), X, y


@pytest.mark.parametrize(
    "make", [_regressor, _binary, _multiclass, _pipeline], ids=["regressor", "binary", "multiclass", "pipeline"]
)
@pytest.mark.parametrize("max_samples", [1.0, 0.6, 50])
def test_equals_sklearn(make, max_samples):
    model, X, y = make()
    ours = permutation_importance(model, X, y, n_repeats=4, random_state=7, max_samples=max_samples)
    theirs = _sklearn(model, X, y, n_repeats=4, random_state=7, max_samples=max_samples)
    _assert_same(ours, theirs, [(ours.primary_scorer, "default")])
    assert ours.n_predict_calls < X.shape[1] * 4, "permuted copies must be evaluated in batches"


def test_several_scorers_and_sample_weight_equal_sklearn():
    model, X, y = _binary()
    weights = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    scoring = ["roc_auc", "neg_log_loss", "balanced_accuracy"]
    ours = permutation_importance(model, X, y, scoring=scoring, n_repeats=3, random_state=1, sample_weight=weights)
    theirs = _sklearn(model, X, y, scoring=scoring, n_repeats=3, random_state=1, sample_weight=weights)
    _assert_same(ours, theirs, [(name, name) for name in scoring])
    assert ours.scorer_names == scoring
    assert ours.n_predict_calls == 1


def test_callable_scorer_equals_sklearn():
    model, X, y = _regressor()

    def negative_max_error(estimator, X, y):
        return -np.max(np.abs(estimator.predict(X) - y))

    ours = permutation_importance(model, X, y, scoring=negative_max_error, n_repeats=3, random_state=2)
    theirs = _sklearn(model, X, y, scoring=negative_max_error, n_repeats=3, random_state=2)
    _assert_same(ours, theirs, [("negative_max_error", "default")])


def test_small_memory_budget_gives_same_result_in_more_calls():
    model, X, y = _regressor()
    large = permutation_importance(model, X, y, n_repeats=3, memory_budget_mb=512)
    small = permutation_importance(model, X, y, n_repeats=3, memory_budget_mb=0.1)
    assert large.n_predict_calls == 1
    assert small.n_predict_calls > 10
    np.testing.assert_array_equal(large.importances["r2"], small.importances["r2"])


@pytest.mark.parametrize("task", ["regressor", "classifier"])
def test_hist_gradient_boosting_in_several_batches_equals_sklearn(task):
    if task == "regressor":
        X, y = load_diabetes(return_X_y=True, as_frame=True)
        model = HistGradientBoostingRegressor(max_iter=20, random_state=0)
    else:
        X, y = load_breast_cancer(return_X_y=True, as_frame=True)
        model = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    model.fit(X, y)
    budget_mb = 6 * X.to_numpy().nbytes / 2**20  # three copies (and the model's working memory) per call
    ours = permutation_importance(model, X, y.to_numpy(), n_repeats=3, random_state=4, memory_budget_mb=budget_mb)
    theirs = _sklearn(model, X, y.to_numpy(), n_repeats=3, random_state=4)
    _assert_same(ours, theirs, [(ours.primary_scorer, "default")])
    assert ours.copies_per_call == 3 and ours.n_predict_calls == -(-(1 + X.shape[1] * 3) // 3)
    assert np.abs(ours.importances[ours.primary_scorer]).max() > 0.01  # the model does use its features


def test_parallel_workers_give_identical_results(monkeypatch):
    model, X, y = _regressor()
    monkeypatch.setattr(permutation, "_MIN_CELLS_PER_WORKER", 1)  # this small job would otherwise run on one
    sequential = permutation_importance(model, X, y, n_repeats=3, memory_budget_mb=0.2, n_jobs=1)
    parallel = permutation_importance(model, X, y, n_repeats=3, memory_budget_mb=0.2, n_jobs=2)
    np.testing.assert_array_equal(sequential.importances["r2"], parallel.importances["r2"])


def test_feature_group_is_permuted_together():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge().fit(X, y)
    groups = {"blood": ["s1", "s2", "s3"]}
    result = permutation_importance(model, X, y.to_numpy(), n_repeats=3, random_state=0, feature_groups=groups)
    assert result.feature_names == ["age", "sex", "bmi", "bp", "blood", "s4", "s5", "s6"]
    # Reference: shuffle the three columns with one row order per repeat, as sklearn shuffles one column.
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max + 1)
    random_state, order, shuffling = np.random.RandomState(seed), np.arange(len(X)), np.arange(len(X))
    baseline = model.score(X, y)
    expected = []
    for _ in range(3):
        random_state.shuffle(shuffling)
        order = order[shuffling]
        permuted = X.copy()
        permuted[groups["blood"]] = X[groups["blood"]].to_numpy()[order]
        expected.append(baseline - model.score(permuted, y))
    np.testing.assert_allclose(result.importances["r2"][4], expected, atol=1e-12)


def test_feature_group_errors_name_the_problem():
    model, X, y = _regressor()
    with pytest.raises(ValueError, match="'missing'"):
        permutation_importance(model, X, y, feature_groups={"g": ["age", "missing"]})
    with pytest.raises(ValueError, match="two feature groups"):
        permutation_importance(model, X, y, feature_groups={"a": ["age"], "b": ["age", "sex"]})
