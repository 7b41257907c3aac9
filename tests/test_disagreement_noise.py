"""The permutation-vs-SHAP disagreement ranks only the features above noise: unused features tie near zero."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingClassifier

import mlflow_explain
from mlflow_explain.engines.diagnostics import DISAGREEMENT_BELOW

SIGNALS = ["signal_0", "signal_1", "signal_2", "signal_3"]


def test_a_healthy_model_with_many_unused_features_does_not_raise_a_disagreement(tracking_uri):
    rng = np.random.RandomState(3)
    X = pd.DataFrame(rng.randn(1200, 26), columns=SIGNALS + [f"noise_{i}" for i in range(22)])
    y = (X[SIGNALS] @ np.array([2.0, 1.5, 1.0, 0.7]) + 0.5 * rng.randn(len(X)) > 0).astype(int).to_numpy()
    model = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(X.iloc[:600], y[:600])
    config = {"shap": {"max_rows": 300, "dependence_top_k": 0, "local_rows": 0}, "logging": {"report": False}}
    with mlflow.start_run():
        explanation = mlflow_explain.explain(model, X.iloc[600:], y[600:], config=config)
    table = explanation.importances
    permutation = table[table.method == "permutation"].set_index("feature")["importance"]
    shap = table[(table.method == "shap") & (table.output == "all")].set_index("feature")["importance"]
    all_features = spearmanr(permutation, shap.reindex(permutation.index)).statistic
    assert all_features < DISAGREEMENT_BELOW, "over every feature, the 22 unused ones' order would raise the alarm"

    (finding,) = [finding for finding in explanation.diagnostics if finding.kind == "method_disagreement"]
    ranked = list(finding.features)
    assert set(SIGNALS) <= set(ranked) and len(ranked) < 10, ranked
    assert finding.severity == "info" and "agree" in finding.message, finding.message
    assert finding.value == pytest.approx(spearmanr(permutation[ranked], shap[ranked]).statistic)
