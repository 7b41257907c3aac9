"""The permutation engine's fast paths give exactly what permuting the raw input and re-predicting gives."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from mlflow_explain.methods import permutation
from mlflow_explain.methods.permutation import permutation_importance
from tests.helpers import mixed_frame, mixed_pipeline

SCORING = ["accuracy", "roc_auc", "neg_log_loss"]


def _assert_equal(ours, reference, scoring):
    for name in scoring:
        np.testing.assert_allclose(ours.importances[name], reference[name].importances, rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def pipeline_data():
    X, y = mixed_frame(n_rows=400)
    return mixed_pipeline(LogisticRegression(max_iter=1000)).fit(X, y), X, y


def test_pipeline_transformed_once_equals_whole_pipeline_and_sklearn(pipeline_data):
    model, X, y = pipeline_data
    weights = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    kwargs = dict(scoring=SCORING, n_repeats=3, random_state=5, max_samples=0.7, sample_weight=weights)
    split = permutation_importance(model, X, y, **kwargs)
    whole = permutation_importance(model, X, y, split_pipeline=False, **kwargs)
    assert split.path == "pipeline_transformed_once"
    assert "checked" in split.path_reason
    assert whole.path == "full_pipeline"
    for name in SCORING:
        np.testing.assert_allclose(split.importances[name], whole.importances[name], rtol=0, atol=1e-9)
    # sklearn permutes each raw column and re-runs the whole Pipeline, with the same seeds.
    _assert_equal(split, sklearn_permutation_importance(model, X, y, **kwargs), SCORING)
    assert np.abs(split.importances["roc_auc"]).max() > 0.01, "some raw column must matter"


def test_pipeline_parallel_workers_give_identical_results(pipeline_data, monkeypatch):
    model, X, y = pipeline_data
    monkeypatch.setattr(permutation, "_MIN_CELLS_PER_WORKER", 1)  # this small job would otherwise run on one
    sequential = permutation_importance(model, X, y, scoring=SCORING, n_repeats=3, n_jobs=1)
    parallel = permutation_importance(model, X, y, scoring=SCORING, n_repeats=3, n_jobs=2)
    assert parallel.n_predict_calls >= 2, "both workers must get a batch"
    for name in SCORING:
        np.testing.assert_array_equal(sequential.importances[name], parallel.importances[name])


class _BatchCenteredScaler(StandardScaler):
    """A scaler (so structurally 'known') that centers on the mean of the rows it transforms: not row-wise."""

    def transform(self, X, copy=None):
        scaled = super().transform(X, copy=copy)
        return scaled - scaled.mean(axis=0)


class _LeakyScaler(StandardScaler):
    """A scaler whose first output column also moves with the second input column."""

    def transform(self, X, copy=None):
        scaled = super().transform(X, copy=copy)
        scaled[:, 0] += 0.5 * scaled[:, 1]
        return scaled


@pytest.mark.parametrize(
    "step, why",
    [
        (Normalizer(), "Normalizer is not known"),
        (PCA(n_components=3), "PCA is not known"),
        (_BatchCenteredScaler(), "transforming a block of rows"),
        (_LeakyScaler(), "changes output column 0"),
    ],
    ids=["normalizer", "pca", "not-row-wise", "mixes-columns"],
)
def test_unsafe_preprocessing_falls_back_to_the_whole_pipeline(step, why):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X, y = X.iloc[:150], y.to_numpy()[:150]
    model = Pipeline([("pre", step), ("model", RandomForestRegressor(n_estimators=10, random_state=0))]).fit(X, y)
    ours = permutation_importance(model, X, y, n_repeats=2, random_state=3)
    assert ours.path == "full_pipeline"
    assert why in ours.path_reason
    theirs = sklearn_permutation_importance(model, X, y, n_repeats=2, random_state=3)
    np.testing.assert_allclose(ours.importances["r2"], theirs.importances, rtol=0, atol=1e-9)


def test_vectorized_scores_equal_sklearn_scorers_with_weights():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y)
    weights = np.random.RandomState(1).uniform(0.1, 3.0, len(y))
    scoring = ["r2", "neg_mean_squared_error", "neg_root_mean_squared_error", "neg_mean_absolute_error"]
    ours = permutation_importance(model, X, y.to_numpy(), scoring=scoring, n_repeats=2, sample_weight=weights)
    theirs = sklearn_permutation_importance(
        model, X, y.to_numpy(), scoring=scoring, n_repeats=2, random_state=0, sample_weight=weights
    )
    for name in scoring:
        baseline = get_scorer(name)(model, X, y.to_numpy(), sample_weight=weights)
        assert ours.baseline_scores[name] == pytest.approx(baseline, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(ours.importances[name], theirs[name].importances, rtol=1e-12, atol=1e-9)


def test_string_labels_accuracy_equals_sklearn():
    X, y = mixed_frame(n_rows=300)
    labels = np.where(y == 1, "yes", "no")
    model = mixed_pipeline(RandomForestClassifier(n_estimators=10, random_state=0)).fit(X, labels)
    ours = permutation_importance(model, X, labels, n_repeats=2)
    theirs = sklearn_permutation_importance(model, X, labels, n_repeats=2, random_state=0)
    np.testing.assert_allclose(ours.importances["accuracy"], theirs.importances, rtol=0, atol=1e-12)
