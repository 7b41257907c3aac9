"""Model-agnostic SHAP of a Pipeline: Shapley values of the raw columns, exact when they are few, seeded above."""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd
import pytest
from sklearn.svm import SVC

from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task
from tests.helpers import mixed_frame, mixed_pipeline


@pytest.fixture(scope="module")
def svc_pipeline():
    """One-hot colours and cities, imputed numbers, an SVC: no tree or linear explainer fits its final step."""
    X, y = mixed_frame(n_rows=300, seed=4)
    model = mixed_pipeline(SVC(probability=True, random_state=0)).fit(X.iloc[:200], y[:200])
    return model, X.iloc[200:].reset_index(drop=True), detect_task(model, y)


def _raw_shapley(model, rows: pd.DataFrame, background: pd.DataFrame) -> np.ndarray:
    """Shapley values of P(class 1) by definition: every coalition of raw columns, the rest from each background row."""
    names, n = list(rows.columns), rows.shape[1]
    coalitions = [frozenset(c) for size in range(n + 1) for c in combinations(range(n), size)]
    mixed = []
    for _, row in rows.iterrows():
        for coalition in coalitions:
            frame = background.copy()
            for i in coalition:
                frame[names[i]] = row.iloc[i]
            mixed.append(frame)
    probability = model.predict_proba(pd.concat(mixed, ignore_index=True).astype(background.dtypes))[:, 1]
    value = probability.reshape(len(rows), len(coalitions), len(background)).mean(axis=2)
    index = {coalition: k for k, coalition in enumerate(coalitions)}
    result = np.zeros((len(rows), n))
    for coalition in coalitions:
        for i in set(range(n)) - coalition:
            weight = factorial(len(coalition)) * factorial(n - len(coalition) - 1) / factorial(n)
            result[:, i] += weight * (value[:, index[coalition | {i}]] - value[:, index[coalition]])
    return result


@pytest.mark.slow  # shap's ExactExplainer compiles its numba kernels on first use: ~20 s of CPU per process
def test_pipeline_with_few_raw_columns_gets_exact_raw_column_shapley_values(svc_pipeline):
    model, X, task = svc_pipeline
    background = X.iloc[:15]
    result = shap_values(
        model, X, task, feature_names=list(X.columns), permutation_max_rows=6, background=background, local_rows=0
    )
    assert result.algorithm == "exact", result.reason
    assert "whole Pipeline on its 5 raw columns" in result.reason and "exact_max_features = 10" in result.reason
    expected = _raw_shapley(model, X.iloc[result.row_positions], background)
    np.testing.assert_allclose(result.values[:, :, 1], expected, atol=1e-9)
    assert result.max_additivity_error < 1e-9


@pytest.mark.slow  # shap's model-agnostic explainers, as above
def test_pipeline_above_exact_max_features_is_sampled_and_seeded(svc_pipeline):
    model, X, task = svc_pipeline
    kwargs = dict(feature_names=list(X.columns), permutation_max_rows=3, background_rows=5, exact_max_features=4)
    before = np.random.get_state()[1].copy()
    first = shap_values(model, X, task, **kwargs)
    second = shap_values(model, X, task, **kwargs)
    assert first.algorithm == "permutation", first.reason
    assert "5 columns > shap.exact_max_features = 4" in first.reason and "seeded" in first.reason
    np.testing.assert_array_equal(first.values, second.values)
    np.testing.assert_array_equal(np.random.get_state()[1], before, err_msg="numpy's global generator was changed")
    assert first.max_additivity_error < 1e-9
