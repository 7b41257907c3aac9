"""No redundant or noisy metrics: one set of SHAP metrics for a binary classifier, float noise as 0 (issue 16)."""

from __future__ import annotations

import copy

import mlflow
import numpy as np
import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

import mlflow_explain
from mlflow_explain.publish.tracking import explanation_metrics

CONFIG = {
    "permutation": {"n_repeats": 2},
    "shap": {"max_rows": 120, "local_rows": 0, "dependence_top_k": 0},
    "logging": {"report": False},
}


@pytest.fixture(scope="module")
def breast_cancer_forest():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0).fit(X.iloc[::2], y.iloc[::2])
    return model, X.iloc[1::2], y.iloc[1::2]


def test_a_binary_classifier_logs_one_set_of_shap_metrics_of_the_positive_class(
    breast_cancer_forest, tracking_uri, tmp_path
):
    model, X, y = breast_cancer_forest
    with mlflow.start_run() as run:
        mlflow_explain.explain(model, X, y, config=CONFIG)
    metrics = MlflowClient().get_run(run.info.run_id).data.metrics
    shap_keys = sorted(key for key in metrics if key.startswith("shap_mean_abs"))
    assert shap_keys == sorted(f"shap_mean_abs/{feature}" for feature in X.columns), "30 keys, not 90"
    path = MlflowClient().download_artifacts(run.info.run_id, "explain/shap_values.parquet", str(tmp_path))
    table = pq.read_table(path).to_pandas()
    for feature in ("worst radius", "mean texture"):
        assert metrics[f"shap_mean_abs/{feature}"] == pytest.approx(table[f"shap:1:{feature}"].abs().mean(), rel=1e-9)


def test_importances_within_float_noise_of_zero_are_logged_as_zero(breast_cancer_forest, tracking_uri):
    model, X, y = breast_cancer_forest
    explanation = mlflow_explain.explain(model, X, y, config=CONFIG)
    noisy = copy.deepcopy(explanation)
    scorer = noisy.permutation.primary_scorer
    j = noisy.permutation.feature_names.index("mean symmetry")
    noise = (0.1 + 0.2) - 0.3  # 5.6e-17: what a score minus the same score summed in another order leaves
    noisy.permutation.importances[scorer][j] = np.array([-noise, -3 * noise])
    metrics = explanation_metrics(noisy)
    assert metrics["permutation_importance/mean symmetry"] == 0.0
    assert metrics["permutation_importance_std/mean symmetry"] == 0.0
    table = noisy.importances.query("method == 'permutation' and feature == 'mean symmetry'")
    assert table["importance"].tolist() == [0.0], "importances.csv holds what the metrics hold"
    untouched = explanation_metrics(explanation)
    for key in ("permutation_importance/worst radius", "shap_mean_abs/worst radius"):
        assert metrics[key] == untouched[key] != 0.0, "real importances are left as they are"
    means = dict(zip(explanation.permutation.feature_names, explanation.permutation.mean(scorer), strict=True))
    small = {feature: mean for feature, mean in means.items() if 0 < abs(mean) < 0.01}
    assert small, "the data has small real importances (one row of 285 is 0.0035 of accuracy)"
    for feature, mean in small.items():
        assert untouched[f"permutation_importance/{feature}"] == mean, "small but real: kept"
