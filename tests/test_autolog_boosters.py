"""autolog() after native booster training: xgboost.train, lightgbm.train and CatBoost's fit explained on their
validation sets into the right run, beside MLflow's own autolog; fits without validation rows said at WARNING; the
scikit-learn models' internal train calls left to the estimator path."""

from __future__ import annotations

import json
import logging

import catboost
import lightgbm
import mlflow
import numpy as np
import pytest
import xgboost
import xgboost as xgb
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes

import mlflow_explain
from mlflow_explain.triggers.autolog import boosters as autolog_boosters

from . import test_autolog

# Fixtures shared with test_autolog: breast-cancer rows, the models autolog explains, MLflow's model logging made quick.
labelled, explained = test_autolog.labelled, test_autolog.explained
quick_model_logging = test_autolog.quick_model_logging

FAST = {
    "permutation": {"n_repeats": 2},
    "shap": {"max_rows": 20, "dependence_top_k": 1, "local_rows": 1},
    "logging": {"report": False},
}
XGB_PARAMS = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}
LGB_PARAMS = {"objective": "binary", "num_leaves": 4, "verbose": -1, "num_threads": 1}


def _train_xgboost(X_train, y_train, X_val, y_val):
    evals = [(xgb.DMatrix(X_train, y_train), "train"), (xgb.DMatrix(X_val, y_val), "val")]
    return xgb.train(XGB_PARAMS, xgb.DMatrix(X_train, y_train), 5, evals=evals, verbose_eval=False)


def _train_lightgbm(X_train, y_train, X_val, y_val):
    train_set = lightgbm.Dataset(X_train, y_train)
    return lightgbm.train(LGB_PARAMS, train_set, 5, valid_sets=[train_set, lightgbm.Dataset(X_val, y_val)])


def _fit_catboost(X_train, y_train, X_val, y_val):
    model = catboost.CatBoostClassifier(iterations=5, depth=2, verbose=0, thread_count=1, allow_writing_files=False)
    return model.fit(X_train, y_train, eval_set=(X_val, y_val))


TRAININGS = {"xgb.train": _train_xgboost, "lgb.train": _train_lightgbm, "CatBoostClassifier.fit": _fit_catboost}


def _summary(run_id):
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="explain/summary.json")
    with open(path) as file:
        return json.load(file)


@pytest.mark.parametrize("training", TRAININGS.values(), ids=TRAININGS.keys())
def test_a_native_booster_training_is_explained_as_a_classifier_on_its_validation_set(
    tracking_uri, labelled, explained, training
):
    X_train, y_train, X_val, y_val = labelled
    mlflow_explain.autolog(config=FAST)
    with mlflow.start_run() as run:
        training(X_train, y_train, X_val, y_val)
    logged = MlflowClient().get_run(run.info.run_id)
    assert len(explained) == 1
    assert logged.data.tags["mlflow_explain.status"] == "ok"
    assert logged.data.metrics["explain/rows_validation"] == len(X_val), "the validation set, not the training set"
    assert {f"shap_mean_abs/{name}" for name in X_val.columns} <= set(logged.data.metrics)
    summary = _summary(run.info.run_id)
    assert summary["task"]["kind"] == "binary" and summary["task"]["classes"] == [0, 1]


def test_a_bare_catboost_regression_is_explained_as_a_regression_on_its_eval_pool(tracking_uri, explained):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    mlflow_explain.autolog(config=FAST)
    params = {"loss_function": "RMSE", "iterations": 5, "depth": 2, "verbose": 0, "allow_writing_files": False}
    with mlflow.start_run() as run:
        catboost.CatBoost(params).fit(catboost.Pool(X[:300], y[:300]), eval_set=catboost.Pool(X[300:], y[300:]))
    assert explained == ["CatBoost"]
    assert MlflowClient().get_run(run.info.run_id).data.metrics["explain/rows_validation"] == len(X) - 300
    summary = _summary(run.info.run_id)
    assert summary["task"]["kind"] == "regression" and summary["feature_names"] == list(X.columns)


ORDERS = {"explain-then-mlflow": ("E", "M"), "mlflow-then-explain": ("M", "E")}
BESIDE_MLFLOW = {  # flavor, training, a metric MLflow logs from the validation set
    "xgb.train": (mlflow.xgboost, _train_xgboost, "val-logloss"),
    "lgb.train": (mlflow.lightgbm, _train_lightgbm, "valid_1-binary_logloss"),
}


@pytest.mark.slow  # MLflow logs a model per case
@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
@pytest.mark.parametrize("library", BESIDE_MLFLOW)
def test_a_training_beside_mlflows_autolog_is_explained_into_mlflows_run(
    tracking_uri, labelled, explained, quick_model_logging, library, order
):
    X_train, y_train, X_val, y_val = labelled
    flavor, training, mlflow_metric = BESIDE_MLFLOW[library]
    for step in order:
        mlflow_explain.autolog(config=FAST) if step == "E" else flavor.autolog()
    training(X_train, y_train, X_val, y_val)
    (run,) = MlflowClient().search_runs([mlflow.get_experiment_by_name("tests").experiment_id])
    assert explained == ["Booster"], "explained once"
    assert run.data.tags["mlflow_explain.status"] == "ok"
    assert run.data.params["objective"] == "binary" + (":logistic" if library == "xgb.train" else ""), "MLflow's params"
    assert mlflow_metric in run.data.metrics, "MLflow's metrics"
    assert run.outputs.model_outputs, "MLflow's logged model"
    assert "shap_mean_abs/mean radius" in run.data.metrics


def test_a_native_training_without_validation_rows_is_said_once_at_warning(tracking_uri, labelled, explained, caplog):
    X_train, y_train, X_val, y_val = labelled
    mlflow_explain.autolog(config=FAST)
    with caplog.at_level(logging.WARNING, logger=autolog_boosters.__name__), mlflow.start_run() as run:
        for _ in range(2):
            xgb.train(XGB_PARAMS, xgb.DMatrix(X_train, y_train), 2)
    said = [record.getMessage() for record in caplog.records if record.name == autolog_boosters.__name__]
    assert len(said) == 1 and "xgboost.train without evals and no validation data set" in said[0]
    assert explained == [] and "mlflow_explain.status" not in MlflowClient().get_run(run.info.run_id).data.tags


def test_a_quantile_dmatrix_in_evals_is_said_not_read_as_rows(tracking_uri, labelled, explained, caplog):
    X_train, y_train, X_val, y_val = labelled
    mlflow_explain.autolog(config=FAST)
    with caplog.at_level(logging.WARNING, logger=autolog_boosters.__name__), mlflow.start_run():
        train = xgb.QuantileDMatrix(X_train, y_train)
        xgb.train(XGB_PARAMS, train, 2, evals=[(xgb.QuantileDMatrix(X_val, y_val, ref=train), "val")])
    assert explained == [] and "QuantileDMatrix in evals" in caplog.text


def test_a_dataset_whose_raw_rows_are_freed_is_said_and_set_validation_data_is_used(
    tracking_uri, labelled, explained, caplog
):
    X_train, y_train, X_val, y_val = labelled
    mlflow_explain.autolog(config=FAST)
    train_set = lightgbm.Dataset(X_train, y_train)
    valid_set = lightgbm.Dataset(X_val, y_val, reference=train_set).construct()  # frees its raw rows
    with caplog.at_level(logging.WARNING, logger=autolog_boosters.__name__), mlflow.start_run() as run:
        lightgbm.train(LGB_PARAMS, train_set, 3, valid_sets=[valid_set])
        assert explained == [] and "free_raw_data=False" in caplog.text
        mlflow_explain.set_validation_data(X_val.iloc[:50], y_val.iloc[:50])
        lightgbm.train(LGB_PARAMS, train_set, 3, valid_sets=[valid_set])
    assert explained == ["Booster"]
    assert MlflowClient().get_run(run.info.run_id).data.metrics["explain/rows_validation"] == 50


SCIKIT_LEARN_MODELS = {
    "XGBClassifier": lambda: xgboost.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1),
    "LGBMClassifier": lambda: lightgbm.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1, n_jobs=1),
}


@pytest.mark.parametrize("make_model", SCIKIT_LEARN_MODELS.values(), ids=SCIKIT_LEARN_MODELS.keys())
def test_a_scikit_learn_booster_is_explained_once_not_again_through_its_train_call(
    tracking_uri, labelled, explained, make_model
):
    X_train, y_train, X_val, y_val = labelled
    mlflow_explain.autolog(config=FAST)
    with mlflow.start_run():
        model = make_model().fit(X_train, y_train, eval_set=[(X_val, y_val)])
    assert explained == [type(model).__name__]


def test_a_dmatrix_is_read_back_with_its_missing_values_zeros_column_names_and_weights(labelled):
    X_train, y_train, _, _ = labelled
    X, y, weight = X_train.iloc[:20].copy(), y_train.iloc[:20], np.linspace(0.5, 2.0, 20)
    X.iloc[0, 0], X.iloc[1, 1], X.iloc[2, 2] = np.nan, 0.0, -0.0
    rows = autolog_boosters._xgboost_eval_rows([(xgb.DMatrix(X, y, weight=weight), "val")])
    np.testing.assert_array_equal(rows.X.to_numpy(), X.to_numpy(dtype=np.float32))  # NaN where NaN, zeros kept
    assert list(rows.X.columns) == list(X.columns)
    assert rows.y.dtype.kind == "i" and list(rows.y) == list(y)
    np.testing.assert_allclose(rows.sample_weight, weight, rtol=1e-6)
    assert autolog_boosters._xgboost_eval_rows([(xgb.DMatrix(X, y), "val")]).sample_weight is None


def test_the_weights_of_a_lightgbm_valid_set_and_of_a_catboost_eval_pool_are_kept(labelled):
    X_train, y_train, X_val, y_val = labelled
    weight = np.linspace(0.5, 2.0, len(X_val))
    train_set = lightgbm.Dataset(X_train, y_train)
    read = autolog_boosters._lightgbm_valid_rows([lightgbm.Dataset(X_val, y_val, weight=weight)], None, train_set)
    np.testing.assert_array_equal(read().sample_weight, weight)
    pool = catboost.Pool(X_val, y_val, weight=weight)
    rows = autolog_boosters._catboost_eval_rows(catboost.CatBoostClassifier(), (X_train, y_train), {"eval_set": pool})
    np.testing.assert_allclose(rows.sample_weight, weight, rtol=1e-6)
    unweighted = catboost.Pool(X_val, y_val)
    assert autolog_boosters._catboost_eval_rows(catboost.CatBoost(), (unweighted,), {"eval_set": unweighted})[2] is None


def test_switching_autolog_off_puts_the_training_functions_and_catboosts_fit_back(explained):
    originals = (xgboost.train, lightgbm.train, catboost.CatBoostClassifier.fit)
    mlflow_explain.autolog()
    assert xgboost.train is not originals[0] and lightgbm.train is not originals[1]
    assert catboost.CatBoostClassifier.fit is not originals[2]
    mlflow_explain.autolog(disable=True)
    assert (xgboost.train, lightgbm.train, catboost.CatBoostClassifier.fit) == originals
