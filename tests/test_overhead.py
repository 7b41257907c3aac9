"""The shortcuts that cut the methods' fixed cost per call give exactly what the slow way gives."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlflow_explain.data import take_columns
from mlflow_explain.methods.permutation import permutation_importance
from mlflow_explain.methods.pipeline_split import structural_problem
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task, origin_check_groups, raw_column_origins, response


@pytest.mark.parametrize(
    "make",
    [
        lambda: (RandomForestClassifier(n_estimators=15, random_state=0), *load_wine(return_X_y=True, as_frame=True)),
        lambda: (RandomForestRegressor(n_estimators=15, random_state=0), *load_diabetes(return_X_y=True)),
        lambda: (ExtraTreesRegressor(n_estimators=15, random_state=0), *load_diabetes(return_X_y=True, as_frame=True)),
    ],
    ids=["forest-classifier-frame", "forest-regressor-array", "extra-trees-frame"],
)
def test_forest_response_is_bit_identical_to_its_own_predict(make):
    model, X, y = make()
    if is_classifier(model):
        y = np.array(["red", "green", "blue"])[np.asarray(y)]  # labels that are not 0..k-1
    model.fit(X, y)
    assert np.array_equal(response(model, X, "predict"), model.predict(X))
    if hasattr(model, "predict_proba"):
        assert np.array_equal(response(model, X, "predict_proba"), model.predict_proba(X))


def test_every_pair_of_columns_is_separated_by_some_shuffled_group():
    for n_columns in (1, 2, 5, 9, 33, 64, 65):
        groups = [set(group.tolist()) for group in origin_check_groups(n_columns)]
        assert set().union(*groups) == set(range(n_columns))
        assert len(groups) <= max(n_columns, 2 * int(np.ceil(np.log2(max(n_columns, 2)))))
        for i in range(n_columns):
            for j in range(n_columns):
                assert i == j or any(i in group and j not in group for group in groups), (n_columns, i, j)


class _MixingScaler(StandardScaler):
    """A scaler whose output column 3 also moves with input column 10."""

    def transform(self, X, copy=None):
        scaled = super().transform(X, copy=copy)
        scaled[:, 3] += 0.1 * scaled[:, 10]
        return scaled


def test_grouped_origin_check_finds_an_output_that_mixes_two_of_many_columns():
    X = load_breast_cancer(as_frame=True).data.iloc[:, :12]
    names = list(X.columns)
    clean = StandardScaler().fit(X)
    np.testing.assert_array_equal(raw_column_origins(clean, X.iloc[:50], names), np.arange(12))
    with pytest.raises(ValueError, match=f"changes output column 3, assigned to raw column {names[3]!r}"):
        raw_column_origins(_MixingScaler().fit(X), X.iloc[:50], names)


def test_take_columns_keeps_dtypes_and_takes_each_column_at_its_own_rows():
    X = pd.DataFrame(
        {
            "color": pd.Categorical(["red", "blue", "red", None]),
            "city": ["a", None, "c", "d"],
            "age": [1.5, np.nan, 3.0, 4.0],
            "n": [1, 2, 3, 4],
        }
    )
    takes = [np.array([3, 0]), np.array([1, 2]), np.array([1, 1]), np.array([0, 3])]
    taken = take_columns(X, takes)
    assert taken.dtypes.equals(X.dtypes) and list(taken.columns) == list(X.columns)
    for position, rows in enumerate(takes):
        pd.testing.assert_series_equal(taken.iloc[:, position], X.iloc[rows, position].reset_index(drop=True))
    array = X[["age", "n"]].to_numpy()
    np.testing.assert_array_equal(take_columns(array, takes[2:]), np.column_stack([array[[1, 1], 0], array[[0, 3], 1]]))


class _BatchCenteredScaler(StandardScaler):
    """Known by its class, but centers on the rows it is given: not row-wise."""

    def transform(self, X, copy=None):
        scaled = super().transform(X, copy=copy)
        return scaled - scaled.mean(axis=0)


def test_only_exactly_known_steps_share_one_transform_call_with_other_rows():
    X = np.array([[0.0, 1.0, 2.0], [1.0, 3.0, 2.0], [2.0, 2.0, 5.0]])
    steps = ColumnTransformer([("numeric", _BatchCenteredScaler(), [0, 1]), ("kind", OneHotEncoder(), [2])]).fit(X)
    assert structural_problem(steps) is None  # a StandardScaler, by isinstance: the data checks must catch it
    assert "_BatchCenteredScaler is not known" in structural_problem(steps, exact=True)
    plain = ColumnTransformer([("numeric", StandardScaler(), [0, 1]), ("kind", OneHotEncoder(), [2])]).fit(X)
    assert structural_problem(plain, exact=True) is None


def test_pipeline_shap_values_equal_shap_on_the_rows_transformed_alone():
    X, y = load_wine(return_X_y=True, as_frame=True)
    X = X.assign(kind=np.where(X["alcohol"] > 13, "high", "low"))
    numeric = [c for c in X.columns if c != "kind"]
    preprocess = ColumnTransformer([("numeric", StandardScaler(), numeric), ("kind", OneHotEncoder(), ["kind"])])
    model = Pipeline([("pre", preprocess), ("model", RandomForestClassifier(n_estimators=10, random_state=0))])
    model.fit(X, y)
    result = shap_values(model, X, detect_task(model, y.to_numpy()), feature_names=list(X.columns), max_rows=40)
    assert result.algorithm == "tree" and "summed back to 14 raw columns" in result.reason
    rows = model[:-1].transform(X.iloc[result.row_positions])
    reference = shap.TreeExplainer(model[-1]).shap_values(rows)
    np.testing.assert_array_equal(result.values[:, :13, :], reference[:, :13, :])
    np.testing.assert_allclose(result.values[:, 13, :], reference[:, 13:, :].sum(axis=1), rtol=0, atol=1e-12)
    assert result.max_additivity_error < 1e-9


def test_models_fitted_on_frames_take_arrays_silently_with_identical_results():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = pd.DataFrame(StandardScaler().fit_transform(X), columns=X.columns)
    filters = list(warnings.filters)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a feature-name warning (or any other) fails the test
        logistic = LogisticRegression(max_iter=5000).fit(X, y)
        ours = permutation_importance(logistic, X, y.to_numpy(), n_repeats=3, random_state=1)
        ridge = Ridge().fit(X, y)
        explained = shap_values(ridge, X, detect_task(ridge, y.to_numpy()), feature_names=list(X.columns))
    assert warnings.filters == filters
    theirs = sklearn_permutation_importance(logistic, X, y, n_repeats=3, random_state=1)
    np.testing.assert_array_equal(ours.importances["accuracy"], theirs.importances)
    assert explained.algorithm == "linear" and explained.max_additivity_error < 1e-9
