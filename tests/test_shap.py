"""SHAP values: the right explainer, additivity, agreement with the shap library, raw columns."""

from __future__ import annotations

import numpy as np
import pytest
import shap
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.decomposition import PCA
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task
from tests.helpers import mixed_frame, mixed_pipeline


def _explain(model, X, y, **kwargs):
    task = detect_task(model, np.asarray(y))
    names = [str(c) for c in X.columns] if hasattr(X, "columns") else [f"x{i}" for i in range(X.shape[1])]
    return shap_values(model, X, task, feature_names=names, **kwargs)


def test_tree_regressor_is_exact_and_equals_shap_library():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = RandomForestRegressor(n_estimators=30, random_state=0).fit(X, y)
    result = _explain(model, X, y, max_rows=200)
    assert result.algorithm == "tree" and "tree ensemble" in result.reason
    assert result.values.shape == (200, 10, 1) and result.output_space == "prediction"
    assert result.max_additivity_error < 1e-6
    reference = shap.TreeExplainer(model).shap_values(X.iloc[result.row_positions])
    np.testing.assert_allclose(result.values[:, :, 0], reference, atol=1e-9)
    np.testing.assert_allclose(
        result.values.sum(axis=1)[:, 0] + result.base_values[:, 0],
        model.predict(X.iloc[result.row_positions]),
        atol=1e-6,
    )


def test_boosted_binary_classifier_has_one_output_per_class_in_log_odds():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)
    result = _explain(model, X, y)
    assert result.algorithm == "tree" and result.output_space == "margin"
    assert result.output_names == ["0", "1"] and result.values.shape == (len(X), 30, 2)
    np.testing.assert_allclose(result.values[:, :, 0], -result.values[:, :, 1])
    assert result.max_additivity_error < 1e-6
    reference = shap.TreeExplainer(model).shap_values(X.iloc[result.row_positions])
    np.testing.assert_allclose(result.values[:, :, 1], reference, atol=1e-9)


def test_linear_models_are_exact():
    X, y = load_diabetes(return_X_y=True)
    ridge = _explain(Ridge().fit(X, y), X, y)
    assert ridge.algorithm == "linear" and ridge.max_additivity_error < 1e-6
    Xw, yw = load_wine(return_X_y=True)
    logistic = LogisticRegression(max_iter=5000).fit(Xw, yw)
    result = _explain(logistic, Xw, yw)
    assert result.algorithm == "linear" and result.output_space == "margin" and result.values.shape[2] == 3
    assert result.max_additivity_error < 1e-6
    rng = np.random.RandomState(0)  # the same draws as shap_values: explained-row order, then background
    rng.permutation(len(Xw))
    background = Xw[np.sort(rng.permutation(len(Xw))[:100])]
    reference = shap.LinearExplainer(logistic, background).shap_values(Xw[result.row_positions])
    np.testing.assert_allclose(result.values, reference, atol=1e-9)


def test_mixed_type_pipeline_uses_tree_explainer_per_raw_column():
    X, y = mixed_frame()
    model = mixed_pipeline(GradientBoostingClassifier(n_estimators=40, random_state=0)).fit(X, y)
    result = _explain(model, X, y, max_rows=300)
    assert result.algorithm == "tree", result.reason
    assert "summed back to 5 raw columns" in result.reason
    assert result.feature_names == list(X.columns) and result.values.shape == (300, 5, 2)
    assert result.max_additivity_error < 1e-6
    # The sum over one-hot columns equals the shap library's values on the transformed rows, summed by hand.
    transformed = model[:-1].transform(X.iloc[result.row_positions])
    reference = shap.TreeExplainer(model[-1]).shap_values(transformed)
    names = model[:-1].get_feature_names_out()
    color = [k for k, name in enumerate(names) if name.startswith("categorical__color_")]
    np.testing.assert_allclose(result.values[:, 1, 1], reference[:, color].sum(axis=1), atol=1e-9)
    age = [k for k, name in enumerate(names) if name in ("numeric__age", "numeric__missingindicator_age")]
    np.testing.assert_allclose(result.values[:, 2, 1], reference[:, age].sum(axis=1), atol=1e-9)
    # The informative columns matter more than the noise column.
    mean_abs = result.mean_abs().mean(axis=1)
    assert mean_abs[0] > mean_abs[4] and mean_abs[1] > mean_abs[4]


def test_linear_pipeline_is_explained_exactly():
    X, y = load_wine(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(X, y)
    result = _explain(model, X, y)
    assert result.algorithm == "linear" and result.max_additivity_error < 1e-6


@pytest.mark.slow  # shap's model-agnostic explainer calls an SVC's predict_proba thousands of times
def test_unsupported_model_falls_back_to_model_agnostic_explainer_and_says_why():
    X, y = load_wine(return_X_y=True, as_frame=True)
    X = X.iloc[:, :4]
    model = SVC(probability=True, random_state=0).fit(X, y)
    result = _explain(model, X, y, permutation_max_rows=12, background_rows=20)
    assert result.algorithm == "exact", "4 columns: exact Shapley values (shap.exact_max_features = 10)"
    assert "neither a tree ensemble" in result.reason
    assert result.values.shape == (12, 4, 3) and result.output_space == "probability"
    assert result.max_additivity_error < 1e-6


@pytest.mark.slow  # shap's model-agnostic explainer, as above
def test_pipeline_that_mixes_columns_is_explained_on_raw_columns():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(PCA(3), Ridge()).fit(X, y)
    result = _explain(model, X, y, permutation_max_rows=10, background_rows=20)
    assert result.algorithm == "exact" and "cannot be mapped back to raw columns" in result.reason
    assert result.values.shape == (10, 10, 1) and result.max_additivity_error < 1e-6


def test_requested_tree_algorithm_on_non_tree_model_is_an_error():
    X, y = load_wine(return_X_y=True)
    with pytest.raises(ValueError, match="TreeExplainer cannot explain SVC"):
        _explain(SVC().fit(X, y), X, y, algorithm="tree")


def test_rows_are_capped_and_seeded():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = HistGradientBoostingClassifier(max_iter=10).fit(X, y)
    first = _explain(model, X, y, max_rows=100, random_state=3, local_rows=4)
    second = _explain(model, X, y, max_rows=100, random_state=3, local_rows=4)
    assert len(first.row_positions) == 100 and len(first.local_positions) == 4
    np.testing.assert_array_equal(first.row_positions, second.row_positions)
    np.testing.assert_array_equal(first.local_positions, second.local_positions)
    assert not np.array_equal(first.row_positions, np.arange(100)), "rows must be a random sample, not the head"


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_xgboost_and_lightgbm_multiclass_take_the_tree_path(library):
    import lightgbm
    import xgboost

    X, y = load_wine(return_X_y=True, as_frame=True)
    model = (
        xgboost.XGBClassifier(n_estimators=30, max_depth=3)
        if library == "xgboost"
        else lightgbm.LGBMClassifier(n_estimators=30, verbose=-1)
    ).fit(X, y)
    result = _explain(model, X, y)
    assert result.algorithm == "tree" and result.output_space == "margin" and result.values.shape == (len(X), 13, 3)
    assert result.max_additivity_error < 1e-5, "float32 trees: additive to single precision"
    reference = shap.TreeExplainer(model).shap_values(X.iloc[result.row_positions])
    np.testing.assert_allclose(result.values, reference, atol=1e-6)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_lightgbm_native_contributions_equal_shap_tree_explainer(task):
    import lightgbm

    if task == "binary":
        X, y = load_breast_cancer(return_X_y=True, as_frame=True)
        model = lightgbm.LGBMClassifier(n_estimators=40, verbose=-1).fit(X, y)
    else:
        X, y = load_diabetes(return_X_y=True, as_frame=True)
        model = lightgbm.LGBMRegressor(n_estimators=40, verbose=-1).fit(X, y)
    result = _explain(model, X, y, max_rows=200)
    assert result.algorithm == "tree" and "pred_contrib" in result.reason
    assert result.max_additivity_error < 1e-9
    explainer = shap.TreeExplainer(model)
    reference = explainer.shap_values(X.iloc[result.row_positions])
    np.testing.assert_allclose(result.values[:, :, -1], np.asarray(reference).reshape(200, -1), atol=1e-9)
    np.testing.assert_allclose(result.base_values[:, -1], np.ravel(explainer.expected_value)[-1], atol=1e-9)
