"""autolog(): explanations after every top-level fit, into the right run, never breaking training."""

from __future__ import annotations

import importlib
import logging

import mlflow
import pytest
import xgboost
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlflow_explain

autolog_module = importlib.import_module("mlflow_explain.autolog")  # the package's autolog name is the function

FAST = {"permutation": {"n_repeats": 2}, "shap": {"max_rows": 100, "dependence_top_k": 1, "local_rows": 1}}


@pytest.fixture
def data():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:300], y.iloc[:300], X.iloc[300:], y.iloc[300:]


@pytest.fixture
def explained(monkeypatch):
    """Records every model autolog explains, and switches autolog off afterwards."""
    calls = []
    real_explain = autolog_module.explain

    def counting_explain(model, X, y, **kwargs):
        calls.append(type(model).__name__)
        return real_explain(model, X, y, **kwargs)

    monkeypatch.setattr(autolog_module, "explain", counting_explain)
    yield calls
    mlflow_explain.autolog(disable=True)
    mlflow.sklearn.autolog(disable=True)
    autolog_module._state.run_data.clear()


def _run(run_id):
    return MlflowClient().get_run(run_id)


def test_explains_into_the_users_active_run(tracking_uri, data, explained):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=FAST)
    with mlflow.start_run() as run:
        model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X_train, y_train)
    assert isinstance(model, RandomForestRegressor) and explained == ["RandomForestRegressor"]
    logged = _run(run.info.run_id)
    assert logged.data.tags["mlflow_explain.status"] == "ok"
    assert "permutation_importance/bmi" in logged.data.metrics and "shap_mean_abs/bmi" in logged.data.metrics
    assert logged.data.metrics["explain/rows_validation"] == len(X_val)


def test_without_an_active_run_it_starts_one(tracking_uri, data, explained):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=FAST)
    Ridge().fit(X_train, y_train)
    assert mlflow.active_run() is None
    run = mlflow.last_active_run()
    assert "permutation_importance/bmi" in _run(run.info.run_id).data.metrics


@pytest.mark.parametrize("mlflow_first", [True, False], ids=["mlflow-autolog-first", "mlflow-autolog-second"])
def test_with_mlflow_sklearn_autolog_explains_into_its_managed_run(tracking_uri, data, explained, mlflow_first):
    X_train, y_train, X_val, y_val = data
    if mlflow_first:
        mlflow.sklearn.autolog(serialization_format="cloudpickle")
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=FAST)
    if not mlflow_first:
        mlflow.sklearn.autolog(serialization_format="cloudpickle")
    RandomForestRegressor(n_estimators=10, random_state=0).fit(X_train, y_train)
    run = mlflow.last_active_run()
    logged = _run(run.info.run_id)
    assert logged.data.params["n_estimators"] == "10", "MLflow's own autologging still logs params"
    assert "training_score" in logged.data.metrics and "permutation_importance/bmi" in logged.data.metrics
    assert logged.data.tags["mlflow_explain.status"] == "ok"
    assert len(MlflowClient().search_runs([run.info.experiment_id])) == 1, "one run, not a second one for explain"
    assert explained == ["RandomForestRegressor"]


def test_grid_search_explains_best_estimator_once(tracking_uri, data, explained):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=FAST)
    search = GridSearchCV(make_pipeline(StandardScaler(), Ridge()), {"ridge__alpha": [0.1, 1.0, 10.0]}, cv=3)
    with mlflow.start_run() as run:
        search.fit(X_train, y_train)
    assert explained == ["Pipeline"], "only the best estimator, no nested fit"
    assert "shap_mean_abs/bmi" in _run(run.info.run_id).data.metrics


def test_pipeline_and_cross_validation_do_not_trigger_nested_fits(tracking_uri, data, explained):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=FAST)
    with mlflow.start_run():
        cross_val_score(RandomForestRegressor(n_estimators=5), X_train, y_train, cv=3)
        assert explained == []
        make_pipeline(StandardScaler(), Ridge()).fit(X_train, y_train)
    assert explained == ["Pipeline"]


def test_xgboost_eval_set_is_the_validation_data(tracking_uri, data, explained):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(config=FAST)
    with mlflow.start_run() as run:
        xgboost.XGBRegressor(n_estimators=20).fit(X_train, y_train, eval_set=[(X_val, y_val)], verbose=False)
    logged = _run(run.info.run_id)
    assert logged.data.metrics["explain/rows_validation"] == len(X_val)
    assert "shap_mean_abs/bmi" in logged.data.metrics and explained == ["XGBRegressor"]


def test_set_validation_data_comes_first(tracking_uri, data, explained):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=FAST)
    with mlflow.start_run() as run:
        mlflow_explain.set_validation_data(X_val.iloc[:50], y_val.iloc[:50])
        Ridge().fit(X_train, y_train)
    assert _run(run.info.run_id).data.metrics["explain/rows_validation"] == 50


def test_validation_file_from_config(tracking_uri, data, explained, tmp_path):
    X_train, y_train, X_val, y_val = data
    X_val.assign(target=y_val).to_csv(tmp_path / "val.csv", index=False)
    mlflow_explain.autolog(config={**FAST, "validation": {"path": str(tmp_path / "val.csv"), "target": "target"}})
    with mlflow.start_run() as run:
        Ridge().fit(X_train, y_train)
    assert _run(run.info.run_id).data.metrics["explain/rows_validation"] == len(X_val)


def test_no_validation_data_warns_once_and_skips(tracking_uri, data, explained, caplog):
    X_train, y_train, _, _ = data
    mlflow_explain.autolog(config=FAST)
    with caplog.at_level(logging.WARNING, logger="mlflow_explain"), mlflow.start_run() as run:
        Ridge().fit(X_train, y_train)
        Ridge().fit(X_train, y_train)
    assert sum("no validation data" in record.message for record in caplog.records) == 1
    assert explained == [] and "mlflow_explain.status" not in _run(run.info.run_id).data.tags


def test_failing_explanation_never_breaks_training(tracking_uri, data, explained, tmp_path):
    X_train, y_train, X_val, y_val = data
    mlflow.sklearn.autolog(serialization_format="cloudpickle")
    mlflow_explain.autolog(validation_data=(X_val.drop(columns=["bmi"]), y_val), config=FAST)
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X_train, y_train)
    assert model.predict(X_val).shape == (len(X_val),), "fit returned the fitted model"
    run = mlflow.last_active_run()
    logged = _run(run.info.run_id)
    assert logged.data.tags["mlflow_explain.status"] == "failed"
    assert logged.data.params["n_estimators"] == "10" and "training_score" in logged.data.metrics
    assert not any(key.startswith("permutation_importance") for key in logged.data.metrics)
    client = MlflowClient()
    error = open(client.download_artifacts(run.info.run_id, "explain/error.txt", str(tmp_path))).read()
    assert error.startswith("InvalidInputError") and "bmi" in error
    reloaded = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    assert (reloaded.predict(X_val) == model.predict(X_val)).all(), "the logged model is intact"


def test_on_error_raise_propagates(tracking_uri, data, explained):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(validation_data=(X_val.drop(columns=["bmi"]), y_val), config={"on_error": "raise"})
    with mlflow.start_run(), pytest.raises(mlflow_explain.InvalidInputError, match="bmi"):
        Ridge().fit(X_train, y_train)


def test_disable_restores_the_original_methods_exactly(explained):
    classes = autolog_module._estimator_classes()
    before = {cls: cls.__dict__["fit"] for cls in classes}
    forest_fit = RandomForestRegressor.fit
    mlflow_explain.autolog(validation_data=None)
    assert RandomForestRegressor.fit is not forest_fit
    mlflow_explain.autolog(disable=True)
    assert {cls: cls.__dict__["fit"] for cls in classes} == before
    assert RandomForestRegressor.fit is forest_fit
    assert xgboost.XGBModel in before and len(before) > 100


def test_bad_config_fails_at_autolog_time(explained):
    with pytest.raises(mlflow_explain.ConfigError, match="shap.rows"):
        mlflow_explain.autolog(config={"shap": {"rows": 5}})


def test_unreachable_tracking_server_does_not_break_fit(data, explained, monkeypatch, caplog):
    X_train, y_train, X_val, y_val = data
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri("http://127.0.0.1:9")  # nothing listens on the discard port
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=FAST)
    try:
        with caplog.at_level(logging.WARNING, logger="mlflow_explain"):
            model = Ridge().fit(X_train, y_train)
    finally:
        mlflow.set_tracking_uri(previous)
    assert model.coef_.shape == (10,), "fit returned the fitted model"
    assert any("training is unaffected" in record.message for record in caplog.records)
