"""Candidates to drop only where permutation importance and SHAP agree; correlated features reported as clusters."""

from __future__ import annotations

import itertools

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

import mlflow_explain
from mlflow_explain.engines.redundancy import (
    CLUSTER_ABOVE,
    DROP_SHAP_FRACTION,
    NOISE_STDS,
    correlation_clusters,
    within_noise,
)

FAST = {
    "permutation": {"n_repeats": 5},
    "shap": {"max_rows": 200, "dependence_top_k": 0, "local_rows": 0},
    "logging": {"report": False},
}


@pytest.fixture(scope="module")
def breast_cancer_forest(migrated_store, tmp_path_factory):
    """A random forest on breast cancer (30 features, many correlated), explained on 30% held-out rows."""
    from tests.helpers import copy_sqlite_store

    folder, previous_uri = tmp_path_factory.mktemp("store"), mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(copy_sqlite_store(migrated_store, folder))
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("forest", (folder / "artifacts").as_uri()))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X_train, y_train)
    with mlflow.start_run():
        explanation = mlflow_explain.explain(model, X_val, y_val, config=FAST)
    yield explanation, X_val
    mlflow.set_tracking_uri(previous_uri)


def _finding(explanation, kind):
    (finding,) = [finding for finding in explanation.diagnostics if finding.kind == kind]
    return finding


def _per_feature(explanation) -> pd.DataFrame:
    permutation, shap = explanation.permutation, explanation.shap
    return pd.DataFrame(
        {
            "mean": permutation.mean(permutation.primary_scorer),
            "std": permutation.std(permutation.primary_scorer),
            "shap": pd.Series(shap.mean_abs().mean(axis=1), index=shap.feature_names),
        },
        index=permutation.feature_names,
    )


def test_candidates_to_drop_are_only_features_both_methods_put_within_noise(breast_cancer_forest):
    explanation, X = breast_cancer_forest
    table = _per_feature(explanation)
    permutation_noise = set(table.index[table["mean"] <= NOISE_STDS * table["std"]])
    shap_small = set(table.index[table["shap"] < DROP_SHAP_FRACTION * table["shap"].mean()])
    assert set(within_noise(explanation)) == permutation_noise & shap_small
    assert permutation_noise - shap_small, "features permutation importance alone would call droppable"

    candidates = _finding(explanation, "noise_features")
    assert set(candidates.features) <= permutation_noise & shap_small
    assert 0 < len(candidates.features) < len(table.index[table["mean"] <= 0]), "fewer than the zero importances"
    clustered = {name for cluster in correlation_clusters(X) for name in cluster}
    assert not set(candidates.features) & clustered, "a feature within noise in a used cluster is not droppable"
    assert "Candidates to drop" in candidates.message and all(
        f"'{n}'" in candidates.message for n in candidates.features
    )


def test_correlated_features_are_reported_as_clusters_of_high_rank_correlation(breast_cancer_forest):
    explanation, X = breast_cancer_forest
    clusters = correlation_clusters(X)
    finding = _finding(explanation, "correlated_features")
    assert finding.value == len(clusters) >= 3
    assert finding.features == tuple(name for cluster in clusters for name in cluster)
    radius = next(cluster for cluster in clusters if "mean radius" in cluster)
    assert {"mean perimeter", "mean area", "worst radius"} <= set(radius), radius
    for cluster in clusters:
        for a, b in itertools.combinations(cluster, 2):
            assert abs(spearmanr(X[a], X[b]).statistic) >= CLUSTER_ABOVE - 1e-9, (a, b)
    assert "{'mean radius', 'mean perimeter', 'mean area'" in finding.message, finding.message


def test_a_redundant_copy_is_clustered_with_its_original_and_pure_noise_is_the_candidate(tracking_uri):
    rng = np.random.RandomState(0)
    n_rows = 800
    X = pd.DataFrame({"signal": rng.randn(n_rows), "other": rng.randn(n_rows), "noise": rng.randn(n_rows)})
    X["signal_copy"] = X["signal"] + 0.05 * rng.randn(n_rows)
    y = (X["signal"] + 0.5 * X["other"] + 0.3 * rng.randn(n_rows) > 0).astype(int).to_numpy()
    model = RandomForestClassifier(n_estimators=50, random_state=0).fit(X[:400], y[:400])
    with mlflow.start_run():
        explanation = mlflow_explain.explain(model, X[400:], y[400:], config=FAST)
    assert correlation_clusters(X[400:]) == [("signal", "signal_copy")]
    assert _finding(explanation, "noise_features").features == ("noise",)
    assert _finding(explanation, "correlated_features").features == ("signal", "signal_copy")


def test_without_shap_no_feature_is_called_a_candidate(tracking_uri):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=30, random_state=0).fit(X[::2], y[::2])
    with mlflow.start_run():
        explanation = mlflow_explain.explain(model, X[1::2], y[1::2], config={**FAST, "shap": {"enabled": False}})
    assert explanation.permutation is not None and explanation.shap is None
    assert not [finding for finding in explanation.diagnostics if finding.kind == "noise_features"]
