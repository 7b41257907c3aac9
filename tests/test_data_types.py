"""Real data types: native categoricals, polars frames, validation weights, multi-output regressors, text."""

from __future__ import annotations

import itertools
import math

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest
import shap
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import make_pipeline

import mlflow_explain
from mlflow_explain.errors import InvalidInputError

NO_SHAP = {"permutation": {"n_repeats": 3}, "shap": {"enabled": False}}
FAST = {"permutation": {"n_repeats": 3}, "shap": {"max_rows": 60, "dependence_top_k": 1, "local_rows": 1}}


@pytest.fixture
def diabetes():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:250], y.iloc[:250], X.iloc[250:350], y.iloc[250:350]


def _importances(explanation):
    permutation = explanation.permutation
    return pd.Series(permutation.mean(permutation.primary_scorer), index=permutation.feature_names)


def _logged_importances(run_id, features):
    metrics = MlflowClient().get_run(run_id).data.metrics
    return pd.Series([metrics[f"permutation_importance/{feature}"] for feature in features], index=features)


# (a) HistGradientBoosting on native categoricals


def _categorical_frame(n_rows=300, seed=0):
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(
        {
            "amount": rng.normal(size=n_rows),
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n_rows)),
            "size": pd.Categorical(rng.choice(["S", "M", "L"], n_rows)),
        }
    )
    y = X["amount"] + 2.0 * (X["colour"] == "red") + (X["size"] == "L") + rng.normal(scale=0.1, size=n_rows)
    return X, y.to_numpy()


def _interventional_shapley(predict, rows: pd.DataFrame, background: pd.DataFrame) -> np.ndarray:
    """Exact interventional Shapley values by their definition: v(S) = mean over background rows b of
    f(x on S, b elsewhere), weighted over every coalition S (the reference, raw category values kept)."""
    n_features = rows.shape[1]
    values = np.zeros(rows.shape)
    value_of = {}
    for size in range(n_features + 1):
        for coalition in itertools.combinations(range(n_features), size):
            mixed = pd.concat([background] * len(rows), ignore_index=True)
            for j in coalition:
                mixed.iloc[:, j] = np.repeat(rows.iloc[:, j].to_numpy(), len(background))
            value_of[coalition] = predict(mixed).reshape(len(rows), len(background)).mean(axis=1)
    for coalition, value in value_of.items():
        for j in set(range(n_features)) - set(coalition):
            weight = math.factorial(len(coalition)) * math.factorial(n_features - len(coalition) - 1)
            values[:, j] += weight / math.factorial(n_features) * (value_of[tuple(sorted((*coalition, j)))] - value)
    return values


def test_native_categoricals_get_exact_model_agnostic_shap(tracking_uri):
    X, y = _categorical_frame()
    model = HistGradientBoostingRegressor(categorical_features="from_dtype", max_iter=20, random_state=0).fit(X, y)
    rows = X.iloc[:40]
    explanation = mlflow_explain.explain(model, rows, y[:40], config=FAST)
    result = explanation.shap
    assert explanation.status == "ok" and result.algorithm == "exact"
    assert "native categorical" in result.reason, "the reason names why TreeExplainer was not used"
    assert result.max_additivity_error < 1e-6 and result.n_background == len(rows)
    expected = _interventional_shapley(model.predict, rows.iloc[result.row_positions], rows)
    np.testing.assert_allclose(result.values[:, :, 0], expected, atol=1e-8)
    assert result.feature_names == ["amount", "colour", "size"]


# (b) polars frames


def test_polars_frame_with_a_target_column_explains_as_pandas(tracking_uri, diabetes):
    X_train, y_train, X_val, y_val = diabetes
    model = Ridge().fit(X_train, y_train)
    frame = pl.from_pandas(X_val.assign(progression=y_val.to_numpy()))
    from_polars = mlflow_explain.explain(model, frame, target="progression", config=NO_SHAP)
    from_pandas = mlflow_explain.explain(model, X_val, y_val, config=NO_SHAP)
    assert from_polars.status == "ok"
    pd.testing.assert_series_equal(_importances(from_polars), _importances(from_pandas))


def test_polars_frames_in_autolog_and_a_polars_fitted_model(tracking_uri, diabetes, fresh_autolog):
    X_train, y_train, X_val, y_val = diabetes
    mlflow_explain.autolog(validation_data=(pl.from_pandas(X_val), pl.Series(y_val.to_numpy())), config=NO_SHAP)
    with mlflow.start_run() as run:
        model = Ridge().fit(pl.from_pandas(X_train), y_train.to_numpy())
    expected = permutation_importance(model, X_val, y_val, n_repeats=3, random_state=0).importances_mean
    logged = _logged_importances(run.info.run_id, list(X_val.columns))
    np.testing.assert_allclose(logged.to_numpy(), expected, rtol=1e-9)


def test_polars_background_of_a_logged_explainer(tracking_uri, diabetes, monkeypatch):
    monkeypatch.setattr("mlflow.utils.environment._infer_requirements", lambda *args, **kwargs: [])
    X_train, y_train, X_val, _ = diabetes
    model = Ridge().fit(X_train, y_train)
    info = mlflow_explain.log_explainer(model, background=pl.from_pandas(X_val.iloc[:30]))
    served = mlflow.pyfunc.load_model(info.model_uri).predict(X_val.iloc[:3])
    assert len(served) == 3 and "prediction" in served.columns


# (c) validation weights


def _weights(n_rows):
    return np.random.RandomState(1).uniform(0.1, 5.0, n_rows)


def test_explain_weights_match_scikit_learn(tracking_uri, diabetes):
    X_train, y_train, X_val, y_val = diabetes
    model = Ridge().fit(X_train, y_train)
    weights = _weights(len(X_val))
    explanation = mlflow_explain.explain(model, X_val, y_val, sample_weight=weights, config=NO_SHAP)
    expected = permutation_importance(
        model, X_val, y_val, n_repeats=3, random_state=0, sample_weight=weights
    ).importances_mean
    np.testing.assert_allclose(_importances(explanation).to_numpy(), expected, rtol=1e-9)


@pytest.mark.parametrize("how", ["autolog", "set_validation_data"])
def test_autolog_honours_validation_weights(tracking_uri, diabetes, fresh_autolog, how):
    X_train, y_train, X_val, y_val = diabetes
    weights = _weights(len(X_val))
    if how == "autolog":
        mlflow_explain.autolog(validation_data=(X_val, y_val, weights), config=NO_SHAP)
    else:
        mlflow_explain.autolog(config=NO_SHAP)
    with mlflow.start_run() as run:
        if how == "set_validation_data":
            mlflow_explain.set_validation_data(X_val, y_val, sample_weight=weights)
        model = Ridge().fit(X_train, y_train)
    logged = _logged_importances(run.info.run_id, list(X_val.columns))
    weighted = permutation_importance(model, X_val, y_val, n_repeats=3, random_state=0, sample_weight=weights)
    unweighted = permutation_importance(model, X_val, y_val, n_repeats=3, random_state=0)
    np.testing.assert_allclose(logged.to_numpy(), weighted.importances_mean, rtol=1e-9)
    assert not np.allclose(logged.to_numpy(), unweighted.importances_mean, rtol=1e-3), "the weights changed them"


def test_evaluation_set_weights_of_an_xgboost_fit_are_honoured(tracking_uri, diabetes, fresh_autolog):
    xgboost = pytest.importorskip("xgboost")
    X_train, y_train, X_val, y_val = diabetes
    weights = _weights(len(X_val))
    mlflow_explain.autolog(config=NO_SHAP)
    with mlflow.start_run() as run:
        model = xgboost.XGBRegressor(n_estimators=10, max_depth=2).fit(
            X_train, y_train, eval_set=[(X_val, y_val)], sample_weight_eval_set=[weights], verbose=False
        )
    logged = _logged_importances(run.info.run_id, list(X_val.columns))
    expected = permutation_importance(model, X_val, y_val, n_repeats=3, random_state=0, sample_weight=weights)
    np.testing.assert_allclose(logged.to_numpy(), expected.importances_mean, rtol=1e-6)


@pytest.mark.parametrize("rows", [("X",), ("X", "y", "w", "extra")])
def test_a_validation_tuple_of_another_length_is_one_clear_error(fresh_autolog, rows):
    with pytest.raises(InvalidInputError, match=r"\(X, y\) or \(X, y, sample_weight\) tuple, not a tuple of"):
        mlflow_explain.autolog(validation_data=rows)


# (d) multi-output regressors


@pytest.fixture
def two_outputs(diabetes):
    """Diabetes with two targets: progression, and a mix of bmi and blood pressure (bmi left out of X)."""
    X_train, y_train, X_val, y_val = diabetes

    def targets(X, y):
        return pd.DataFrame({"progression": y.to_numpy(), "mix": 100 * X["bmi"].to_numpy() + X["bp"].to_numpy()})

    return (
        X_train.drop(columns="bmi"),
        targets(X_train, y_train),
        X_val.drop(columns="bmi").iloc[:60],
        targets(X_val, y_val).iloc[:60],
    )


def test_a_forest_on_a_2d_target_is_explained_per_output(tracking_uri, two_outputs):
    X_train, Y_train, X_val, Y_val = two_outputs
    model = RandomForestRegressor(n_estimators=10, max_depth=3, random_state=0).fit(X_train, Y_train)
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain(model, X_val, Y_val, config=FAST)
    result = explanation.shap
    assert explanation.status == "ok" and result.algorithm == "tree" and result.output_names == ["progression", "mix"]
    rows = X_val.iloc[result.row_positions]
    expected = shap.TreeExplainer(model).shap_values(rows)  # (rows, features, outputs)
    np.testing.assert_allclose(result.values, expected, atol=1e-8)
    assert result.max_additivity_error < 1e-6
    reference = permutation_importance(model, X_val, Y_val, n_repeats=3, random_state=0)  # R² averaged over outputs
    np.testing.assert_allclose(_importances(explanation).to_numpy(), reference.importances_mean, rtol=1e-9)
    metrics = MlflowClient().get_run(run.info.run_id).data.metrics
    for k, output in enumerate(["progression", "mix"]):
        assert metrics[f"shap_mean_abs.{output}/bp"] == pytest.approx(np.abs(expected[:, 2, k]).mean(), abs=1e-6)
    assert "shap_mean_abs/bp" in metrics and "permutation_importance/bp" in metrics


def test_a_multi_output_regressor_is_explained_per_output(tracking_uri, two_outputs):
    X_train, Y_train, X_val, Y_val = two_outputs
    model = MultiOutputRegressor(Ridge()).fit(X_train, Y_train)
    explanation = mlflow_explain.explain(model, X_val, Y_val.to_numpy(), config=FAST)
    result = explanation.shap
    assert explanation.status == "ok" and result.output_names == ["y0", "y1"]
    assert result.max_additivity_error < 1e-6
    rows = X_val.iloc[result.row_positions]
    for k, estimator in enumerate(model.estimators_):  # interventional SHAP of a linear model: coef * (x - mean)
        expected = shap.LinearExplainer(estimator, X_val).shap_values(rows)
        np.testing.assert_allclose(result.values[:, :, k], expected, atol=1e-6)


def test_a_classifier_of_a_2d_target_is_one_clear_error(tracking_uri, diabetes):
    X_train, y_train, X_val, y_val = diabetes
    labels = pd.DataFrame({"high": y_train > 140, "low": y_train < 90})
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X_train, labels)
    with pytest.raises(InvalidInputError, match="multi-output classifiers are not supported yet"):
        mlflow_explain.explain(model, X_val, pd.DataFrame({"high": y_val > 140, "low": y_val < 90}))


# (e) a text column


def test_a_text_series_for_a_model_that_reads_no_text_is_one_sentence(tracking_uri):
    """A text pipeline takes a Series of texts (tests/test_tokens.py); a model fitted on numbers is told apart."""
    texts = pd.Series(["good film", "bad film", "great plot", "awful plot"] * 10)
    labels = np.array([1, 0, 1, 0] * 10)
    model = LogisticRegression().fit(np.c_[labels, labels], labels)
    with pytest.raises(InvalidInputError, match="single column of text .* does not start with a text vectorizer"):
        mlflow_explain.explain(model, texts, labels)
    text_model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels)
    assert mlflow_explain.explain(text_model, texts, labels, config=NO_SHAP).status == "ok"


def test_a_numeric_series_advice_works(tracking_uri, diabetes):
    X_train, y_train, X_val, y_val = diabetes
    model = Ridge().fit(X_train[["bmi"]], y_train)
    with pytest.raises(InvalidInputError, match=r"X.to_frame\(\)"):
        mlflow_explain.explain(model, X_val["bmi"], y_val, config=NO_SHAP)
    assert mlflow_explain.explain(model, X_val["bmi"].to_frame(), y_val, config=NO_SHAP).status == "ok"
