"""Bad input gets one clear InvalidInputError (or ConfigError) sentence naming the problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

import mlflow_explain
from mlflow_explain import InvalidInputError


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y), X, y


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True, as_frame=True)
    return RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y), X, y


def _fails(match, *args, **kwargs):
    with pytest.raises(InvalidInputError, match=match) as caught:
        mlflow_explain.explain(*args, **kwargs)
    assert "\n" not in str(caught.value), "one sentence, not a traceback"


def test_missing_columns(diabetes, tracking_uri):
    model, X, y = diabetes
    _fails(r"lacks column\(s\) the model was trained on: bmi, s5", model, X.drop(columns=["bmi", "s5"]), y)


def test_extra_columns(diabetes, tracking_uri):
    model, X, y = diabetes
    _fails(r"not trained on: zip_code", model, X.assign(zip_code=1), y)


def test_wrong_number_of_array_columns(diabetes, tracking_uri):
    model, X, y = diabetes
    fitted_on_array = RandomForestRegressor(n_estimators=5).fit(X.to_numpy(), y)
    _fails(r"has 9 feature columns but the model expects 10", fitted_on_array, X.to_numpy()[:, :9], y)


def test_empty_validation_set(diabetes, tracking_uri):
    model, X, y = diabetes
    _fails(r"validation data is empty", model, X.iloc[:0], y.iloc[:0])


def test_nan_target(diabetes, tracking_uri):
    model, X, y = diabetes
    _fails(r"target has 2 missing \(NaN\) value", model, X, y.where(y.index > 1))


def test_string_target_for_regressor(diabetes, tracking_uri):
    model, X, y = diabetes
    _fails(r"target of a regressor must be numeric, but it holds 'high'", model, X, np.where(y > 100, "high", "low"))


def test_labels_the_classifier_never_saw(wine, tracking_uri):
    model, X, y = wine
    _fails(r"label\(s\) the classifier was not trained on \('class_0'", model, X, y.map(lambda v: f"class_{v}"))


def test_target_column_by_name_absent(diabetes, tracking_uri):
    model, X, y = diabetes
    _fails(
        r"Target column 'progression' is not in the validation data; its columns are: age, sex",
        model,
        X.assign(target=y),
        target="progression",
    )


def test_target_column_by_name_works(diabetes, tracking_uri):
    model, X, y = diabetes
    explanation = mlflow_explain.explain(
        model,
        X.assign(progression=y),
        target="progression",
        config={"shap": {"enabled": False}, "logging": {"report": False}},
    )
    assert explanation.status == "ok" and "progression" not in explanation.feature_names


def test_one_dimensional_X(diabetes, tracking_uri):
    model, X, y = diabetes
    _fails(r"X must be 2-D .* reshape it with X.reshape\(-1, 1\)", model, X["bmi"].to_numpy(), y)
    _fails(r"single Series", model, X["bmi"], y)


def test_target_length_mismatch(diabetes, tracking_uri):
    model, X, y = diabetes
    _fails(r"target has 100 values but the validation data has 442 rows", model, X, y.iloc[:100])


def test_no_target(diabetes, tracking_uri):
    model, X, _ = diabetes
    _fails(r"No target given", model, X)


def test_model_not_fitted(diabetes, tracking_uri):
    _, X, y = diabetes
    _fails(r"model \(RandomForestRegressor\) is not fitted", RandomForestRegressor(), X, y)


def test_not_a_model(diabetes, tracking_uri):
    _, X, y = diabetes
    _fails(r"has no predict method", object(), X, y)


def test_missing_validation_file(diabetes, tracking_uri):
    model, _, _ = diabetes
    _fails(r"does not exist", model, "nowhere/val.parquet", target="y")


def test_sample_weight_length(diabetes, tracking_uri):
    model, X, y = diabetes
    _fails(r"sample_weight has 3 values", model, X, y, sample_weight=[1, 2, 3])


def test_columns_in_another_order_are_reordered(diabetes, tracking_uri):
    model, X, y = diabetes
    shuffled = X[list(reversed(X.columns))]
    explanation = mlflow_explain.explain(
        model, shuffled, y, config={"shap": {"enabled": False}, "logging": {"report": False}}
    )
    assert explanation.feature_names == list(X.columns)


def test_unknown_config_key_is_named(diabetes, tracking_uri):
    model, X, y = diabetes
    with pytest.raises(mlflow_explain.ConfigError, match=r"shap.max_row\b"):
        mlflow_explain.explain(model, X, y, config={"shap": {"max_row": 10}})


def test_validation_data_from_config_path(diabetes, tracking_uri, tmp_path):
    model, X, y = diabetes
    X.assign(y=y).to_parquet(tmp_path / "val.parquet")
    explanation = mlflow_explain.explain(
        model,
        config={
            "validation": {"path": str(tmp_path / "val.parquet"), "target": "y"},
            "shap": {"enabled": False},
            "logging": {"report": False},
        },
    )
    assert explanation.n_rows == len(X)
    pd.testing.assert_index_equal(pd.Index(explanation.feature_names), X.columns)


def test_frame_for_a_model_fitted_on_an_array_keeps_its_names(diabetes, tracking_uri, recwarn):
    _, X, y = diabetes
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(X.to_numpy(), y)
    explanation = mlflow_explain.explain(model, X, y, config={"logging": {"report": False}})
    assert explanation.feature_names == list(X.columns) and explanation.status == "ok"
    assert set(explanation.importances["feature"]) == set(X.columns), "both methods report the frame's names"
    assert not [w for w in recwarn if "feature names" in str(w.message)], "no sklearn feature-name warnings"
