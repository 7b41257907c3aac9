"""autolog(): explanations of the models a user trains, into the right run, never hurting training or tracking."""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import lightgbm
import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost
from mlflow.tracking import MlflowClient
from mlflow.utils.autologging_utils import autologging_is_disabled
from sklearn import metrics
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer, load_diabetes, make_classification
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    ExtraTreesRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
    VotingClassifier,
)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.feature_selection import SelectFromModel
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.metrics import classification_report, f1_score, log_loss
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

import mlflow_explain
from mlflow_explain.triggers import explain as api

autolog_module = importlib.import_module(
    "mlflow_explain.triggers.autolog.autolog"
)  # the package's autolog name is the function

FAST = {"permutation": {"n_repeats": 2}, "shap": {"max_rows": 100, "dependence_top_k": 1, "local_rows": 1}}
NO_SHAP = {"permutation": {"n_repeats": 2}, "shap": {"enabled": False}}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def data():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:300], y.iloc[:300], X.iloc[300:], y.iloc[300:]


@pytest.fixture
def labelled():
    """Binary classification: eight columns of the breast-cancer data, training and validation rows."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :8]
    return X.iloc[:300], y.iloc[:300], X.iloc[300:420], y.iloc[300:420]


@pytest.fixture
def explained(monkeypatch):
    """Records every model autolog explains, and switches every autolog off afterwards."""
    calls = []
    real_explain = api.explain_logged

    def counting_explain(model, X, y, **kwargs):
        calls.append(type(model).__name__)
        return real_explain(model, X, y, **kwargs)

    monkeypatch.setattr(api, "explain_logged", counting_explain)
    monkeypatch.setattr(autolog_module, "_state", autolog_module._State())
    yield calls
    mlflow_explain.autolog(disable=True)
    for flavor in (mlflow.sklearn, mlflow.xgboost, mlflow.lightgbm):
        flavor.autolog(disable=True)


@pytest.fixture
def quick_model_logging(monkeypatch):
    """MLflow logs models without its requirement-inference subprocess (seconds per model, not under test here)."""
    monkeypatch.setattr("mlflow.utils.environment._infer_requirements", lambda *args, **kwargs: [])


def _run(run_id):
    return MlflowClient().get_run(run_id)


def _runs():
    experiment = mlflow.get_experiment_by_name("tests")
    return MlflowClient().search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def _artifacts(run_id, folder="explain"):
    return {item.path.rsplit("/", 1)[-1] for item in MlflowClient().list_artifacts(run_id, folder)}


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
def test_with_mlflow_sklearn_autolog_explains_into_its_managed_run(
    tracking_uri, data, explained, quick_model_logging, mlflow_first
):
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


# 1. Explain only what a user trained.

SIDE_FITS = {
    "StandardScaler.fit(X)": lambda X, y: StandardScaler().fit(X),
    "StandardScaler.fit(X, y)": lambda X, y: StandardScaler().fit(X, y),
    "LabelEncoder.fit(y)": lambda X, y: LabelEncoder().fit(y),
    "PCA.fit(X, y)": lambda X, y: PCA(n_components=2).fit(X, y),
    "TfidfVectorizer.fit": lambda X, y: TfidfVectorizer().fit(["a red fox", "a brown dog"]),
    "SelectFromModel.fit(X, y)": lambda X, y: SelectFromModel(LogisticRegression(max_iter=500)).fit(X, y),
    "Pipeline ending in a transformer": lambda X, y: make_pipeline(StandardScaler(), PCA(n_components=2)).fit(X, y),
    "KMeans.fit(X, y)": lambda X, y: KMeans(n_clusters=2, n_init=1, random_state=0).fit(X, y),
    "GaussianMixture.fit(X)": lambda X, y: GaussianMixture(n_components=2, random_state=0).fit(X),
    "IsolationForest(n_jobs=2).fit(X, y)": lambda X, y: IsolationForest(n_estimators=8, n_jobs=2).fit(X, y),
    "GridSearchCV(refit=False)": lambda X, y: GridSearchCV(
        LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=2, refit=False
    ).fit(X, y),
    "SGDClassifier.partial_fit": lambda X, y: SGDClassifier(random_state=0).partial_fit(X, y, classes=[0, 1]),
    'f1_score(average="macro")': lambda X, y: f1_score(y, y, average="macro"),
    "log_loss": lambda X, y: log_loss(y, np.full(len(y), 0.4)),
    "classification_report": lambda X, y: classification_report(y, y, output_dict=True),
}


def test_side_fits_are_left_alone_inside_and_outside_a_run(tracking_uri, labelled, explained, caplog):
    X_train, y_train, X_val, y_val = labelled
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=NO_SHAP)
    with caplog.at_level(logging.DEBUG, logger="mlflow_explain"):
        for name, side_fit in SIDE_FITS.items():
            side_fit(X_train, y_train)
            assert explained == [] and _runs() == [], f"{name} outside a run"
        with mlflow.start_run() as run:
            for name, side_fit in SIDE_FITS.items():
                side_fit(X_train, y_train)
                assert explained == [], f"{name} inside a run"
    assert "mlflow_explain.status" not in _run(run.info.run_id).data.tags and len(_runs()) == 1
    said = [record for record in caplog.records if "is not explained" in record.message]
    assert {record.levelname for record in said} == {"WARNING"}
    reasons = [record.args[1] for record in said]
    assert len(reasons) == len(set(reasons)), "each reason is said once, though every side fit ran twice"
    assert {"fitted without a target", "a transformer, not a classifier or regressor"} <= set(reasons)
    assert any("refit=False" in reason for reason in reasons) and any("clusterer" in reason for reason in reasons)


def test_a_skipped_fit_is_said_at_warning_with_its_reason_once(tracking_uri, labelled, explained, caplog):
    X_train, y_train, X_val, y_val = labelled
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=NO_SHAP)
    with caplog.at_level(logging.WARNING, logger="mlflow_explain"):
        for _ in range(3):
            KMeans(n_clusters=2, n_init=1, random_state=0).fit(X_train, y_train)
    said = [record.getMessage() for record in caplog.records]
    assert said == [
        "mlflow_explain.autolog: KMeans.fit is not explained (a clusterer, not a classifier or regressor): only "
        "classifiers and regressors fitted with a target are (a search's best estimator); transformers, clusterers, "
        "outlier detectors, fits without a target, partial_fit and searches with refit=False are left alone. "
        "Said once for this reason."
    ]
    assert explained == []


def test_worker_thread_fits_of_a_model_never_trigger(tracking_uri, explained):
    X, y = make_classification(n_samples=240, n_features=6, n_informative=4, n_classes=3, random_state=0)
    X = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    mlflow_explain.autolog(validation_data=(X[160:], y[160:]), config=NO_SHAP)
    voting = VotingClassifier(
        [("linear", LogisticRegression(max_iter=500)), ("tree", DecisionTreeClassifier(max_depth=3))], n_jobs=2
    )
    with joblib.parallel_backend("threading", n_jobs=2):
        voting.fit(X[:160], y[:160])
        OneVsRestClassifier(LogisticRegression(max_iter=500), n_jobs=2).fit(X[:160], y[:160])
        IsolationForest(n_estimators=8, n_jobs=2, random_state=0).fit(X[:160])
    assert explained == ["VotingClassifier", "OneVsRestClassifier"]
    runs = _runs()
    assert len(runs) == 2 and all(run.data.tags["mlflow_explain.status"] == "ok" for run in runs)


def test_a_custom_estimator_wrapping_a_model_is_explained_itself(tracking_uri, labelled, explained):
    X_train, y_train, X_val, y_val = labelled
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=NO_SHAP)

    class ScaledLogistic(ClassifierMixin, BaseEstimator):  # defined after autolog(), as in a notebook cell
        def fit(self, X, y):
            self.scaler_ = StandardScaler().fit(X)
            self.model_ = LogisticRegression(max_iter=500).fit(self.scaler_.transform(X), y)
            self.classes_ = self.model_.classes_
            return self

        def predict_proba(self, X):
            return self.model_.predict_proba(self.scaler_.transform(X))

        def predict(self, X):
            return self.model_.predict(self.scaler_.transform(X))

    with mlflow.start_run() as run:
        ScaledLogistic().fit(X_train, y_train)
    assert explained == ["ScaledLogistic"]
    assert _run(run.info.run_id).data.tags["mlflow_explain.status"] == "ok"


def test_calibration_and_the_plugins_own_log_loss_scorer_explain_once(tracking_uri, labelled, explained):
    X_train, y_train, X_val, y_val = labelled
    config = {"permutation": {"n_repeats": 2, "scoring": ["accuracy", "neg_log_loss"]}, "shap": {"enabled": False}}
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=config)
    with mlflow.start_run() as run:
        calibrated = CalibratedClassifierCV(LogisticRegression(max_iter=500), cv=3).fit(X_train, y_train)
        calibrated.predict_proba(X_val)
    assert explained == ["CalibratedClassifierCV"] and len(_runs()) == 1
    logged = _run(run.info.run_id)
    assert logged.data.tags["mlflow_explain.status"] == "ok"
    assert "permutation_importance.neg_log_loss/mean radius" in logged.data.metrics


# 2. One explanation per run; tags tell the truth.


def test_refitting_in_a_run_is_its_next_explanation_and_side_fits_change_nothing(tracking_uri, data, explained):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=NO_SHAP)
    client = MlflowClient()
    with mlflow.start_run() as run:
        model = Ridge(alpha=1.0).fit(X_train, y_train)
        StandardScaler().fit(X_train, y_train)
        KMeans(n_clusters=3, n_init=1, random_state=0).fit(X_train, y_train)
        model.set_params(alpha=10.0).fit(X_train, y_train)
    assert explained == ["Ridge", "Ridge"]
    history = client.get_metric_history(run.info.run_id, "permutation_importance/bmi")
    assert [metric.step for metric in history] == [0, 1], "the re-fit is the run's next explanation"
    assert history[0].value != history[1].value
    assert _run(run.info.run_id).data.tags["mlflow_explain.status"] == "ok"
    assert "error.txt" not in _artifacts(run.info.run_id)


def test_a_failed_explanation_then_a_good_one_leaves_no_error_file_beside_ok(tracking_uri, data, explained):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(config=NO_SHAP)
    with mlflow.start_run() as run:
        mlflow_explain.set_validation_data(X_val.drop(columns=["bmi"]), y_val)
        Ridge().fit(X_train, y_train)
        assert _run(run.info.run_id).data.tags["mlflow_explain.status"] == "failed"
        assert "error.txt" in _artifacts(run.info.run_id)
        mlflow_explain.set_validation_data(X_val, y_val)
        Ridge().fit(X_train, y_train)
    assert _run(run.info.run_id).data.tags["mlflow_explain.status"] == "ok"
    files = _artifacts(run.info.run_id)
    assert "summary.json" in files and "error.txt" not in files, "the status tag and explain/ agree"


# 3. Coexist with MLflow's autologging, in every order.

FLAVORS = {
    "sklearn": (
        lambda: mlflow.sklearn.autolog(serialization_format="cloudpickle"),
        lambda: [Ridge(alpha=0.5), ExtraTreesRegressor(n_estimators=5, max_depth=3, random_state=0)],
        "training_score",
    ),
    "xgboost": (
        lambda: mlflow.xgboost.autolog(),
        lambda: [xgboost.XGBRegressor(n_estimators=5, max_depth=2)],
        "validation_0-rmse",
    ),
    "lightgbm": (
        lambda: mlflow.lightgbm.autolog(),
        lambda: [lightgbm.LGBMRegressor(n_estimators=5, num_leaves=4, verbose=-1)],
        "valid_0-l2",
    ),
}
ORDERS = {
    "explain-on-mlflow-on-explain-off-mlflow-off": ("E+", "M+", "E-", "M-"),
    "explain-on-mlflow-on-mlflow-off-explain-off": ("E+", "M+", "M-", "E-"),
    "mlflow-on-explain-on-explain-off-mlflow-off": ("M+", "E+", "E-", "M-"),
    "mlflow-on-explain-on-mlflow-off-explain-off": ("M+", "E+", "M-", "E-"),
    "explain-on-off-then-mlflow-on-off": ("E+", "E-", "M+", "M-"),
    "mlflow-on-off-then-explain-on-off": ("M+", "M-", "E+", "E-"),
}


@pytest.mark.slow  # 18 cases, each logging models through MLflow's autologging
@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
@pytest.mark.parametrize("flavor", FLAVORS)
def test_coexists_with_mlflow_autologging_in_every_order(
    tracking_uri, data, explained, quick_model_logging, flavor, order
):
    X_train, y_train, X_val, y_val = data
    enable_mlflow, make_models, mlflow_metric = FLAVORS[flavor]
    on = {"E": False, "M": False}
    for step in order:
        on[step[0]] = step[1] == "+"
        if step == "M+":
            enable_mlflow()
        elif step == "M-":
            getattr(mlflow, flavor).autolog(disable=True)
        elif step == "E+":
            mlflow_explain.autolog(validation_data=(X_val, y_val), config=NO_SHAP)
        else:
            mlflow_explain.autolog(disable=True)
        before, explained_before = {run.info.run_id for run in _runs()}, len(explained)
        models = make_models()
        for model in models:
            extra = {} if flavor == "sklearn" else {"eval_set": [(X_val, y_val)]}
            model.fit(X_train, y_train, **extra, **({"verbose": False} if flavor == "xgboost" else {}))
        new = [run for run in _runs() if run.info.run_id not in before]
        assert len(new) == (len(models) if on["E"] or on["M"] else 0), f"after {step}: one run per model"
        assert autologging_is_disabled(flavor) is not on["M"], f"after {step}: MLflow says what it does"
        assert len(explained) - explained_before == (len(models) if on["E"] else 0), f"after {step}"
        for run in new:
            assert bool(run.data.params) is on["M"], f"after {step}: MLflow's params (the plugin logs none)"
            assert (mlflow_metric in run.data.metrics) is on["M"], f"after {step}: MLflow's metrics"
            assert bool(run.outputs.model_outputs) is on["M"], f"after {step}: MLflow's logged model"
            assert run.data.tags.get("mlflow_explain.status") == ("ok" if on["E"] else None), f"after {step}"


def test_switching_the_plugin_off_and_on_under_mlflow_keeps_both_working(
    tracking_uri, data, explained, quick_model_logging
):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=NO_SHAP)
    mlflow.sklearn.autolog(serialization_format="cloudpickle")
    mlflow_explain.autolog(disable=True)
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=NO_SHAP)
    mlflow.sklearn.autolog(disable=True)
    Ridge().fit(X_train, y_train)
    mlflow.sklearn.autolog(serialization_format="cloudpickle")
    Ridge().fit(X_train, y_train)
    assert explained == ["Ridge", "Ridge"]
    first, second = _runs()
    assert "alpha" not in first.data.params and second.data.params["alpha"] == "1.0"
    assert first.data.tags["mlflow_explain.status"] == second.data.tags["mlflow_explain.status"] == "ok"


NOTEBOOK = {
    "permutation": {"n_repeats": 2},
    "shap": {"max_rows": 10, "permutation_max_rows": 10, "background_rows": 20, "dependence_top_k": 1, "local_rows": 1},
}


@pytest.mark.slow  # trains, explains (SHAP included) and logs two models through MLflow, twice
@pytest.mark.parametrize("mlflow_first", [True, False], ids=["mlflow-autolog-first", "mlflow-autolog-second"])
def test_a_notebook_session_with_both_autologs_on(tracking_uri, labelled, explained, quick_model_logging, mlflow_first):
    X_train, y_train, X_val, y_val = labelled
    switches = [
        lambda: mlflow.sklearn.autolog(serialization_format="cloudpickle"),
        lambda: mlflow_explain.autolog(config=NOTEBOOK),
    ]
    for switch_on in switches if mlflow_first else switches[::-1]:
        switch_on()

    scaler = StandardScaler().set_output(transform="pandas").fit(X_train)
    X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)
    mlflow_explain.set_validation_data(X_val, y_val)
    model = LogisticRegression(max_iter=500).fit(X_train, y_train)
    predicted = model.predict(X_val)
    metrics.f1_score(y_val, predicted, average="macro")  # through the module, which MLflow patches
    metrics.classification_report(y_val, predicted)
    metrics.log_loss(y_val, model.predict_proba(X_val))
    mlflow_explain.set_validation_data(X_val, y_val)
    calibrated = CalibratedClassifierCV(RandomForestClassifier(n_estimators=10, random_state=0), cv=3)
    calibrated.fit(X_train, y_train).predict_proba(X_val)
    IsolationForest(n_estimators=10, n_jobs=2, random_state=0).fit(X_train)
    KMeans(n_clusters=2, n_init=1, random_state=0).fit(X_train)

    assert explained == ["LogisticRegression", "CalibratedClassifierCV"], "one explanation per trained model"
    runs = _runs()
    assert [run.data.tags["estimator_name"] for run in runs] == [
        "LogisticRegression",
        "CalibratedClassifierCV",
        "IsolationForest",
        "KMeans",
    ], "MLflow's runs and no other"
    assert [run.data.tags.get("mlflow_explain.status") for run in runs] == ["ok", "ok", None, None]
    assert all(run.data.params and run.outputs.model_outputs for run in runs), "MLflow's params and models"
    logistic, calibrated_run = runs[0].data.metrics, runs[1].data.metrics
    assert {"training_f1_score", "f1_score_X_val", "log_loss_X_val"} <= set(logistic), "MLflow's own metrics"
    assert "training_log_loss" in calibrated_run
    assert "permutation_importance/mean radius" in logistic and "shap_mean_abs/mean radius" in calibrated_run


# 4. No runs from nothing.


def test_no_validation_data_warns_once_and_skips(tracking_uri, data, explained, caplog):
    X_train, y_train, _, _ = data
    mlflow_explain.autolog(config=FAST)
    with caplog.at_level(logging.WARNING, logger="mlflow_explain"), mlflow.start_run() as run:
        Ridge().fit(X_train, y_train)
        Ridge().fit(X_train, y_train)
    assert sum("no validation data" in record.message for record in caplog.records) == 1
    assert explained == [] and "mlflow_explain.status" not in _run(run.info.run_id).data.tags


def test_without_validation_data_no_run_is_created(tracking_uri, data, explained, caplog):
    X_train, y_train, _, _ = data
    mlflow_explain.autolog(config=FAST)
    with caplog.at_level(logging.WARNING, logger="mlflow_explain"):
        for _ in range(5):
            Ridge().fit(X_train, y_train)
    assert _runs() == [], "no run from nothing"
    assert sum("no validation data" in record.message for record in caplog.records) == 1


def test_set_validation_data_comes_first(tracking_uri, data, explained):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=FAST)
    with mlflow.start_run() as run:
        mlflow_explain.set_validation_data(X_val.iloc[:50], y_val.iloc[:50])
        Ridge().fit(X_train, y_train)
    assert _run(run.info.run_id).data.metrics["explain/rows_validation"] == 50


def test_validation_data_set_outside_a_run_is_the_next_runs_only(tracking_uri, data, explained):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(config=NO_SHAP)
    mlflow_explain.set_validation_data(X_val.iloc[:50], y_val.iloc[:50])
    with mlflow.start_run() as first:
        Ridge().fit(X_train, y_train)
        Ridge(alpha=2.0).fit(X_train, y_train)  # the same run: the same rows
    with mlflow.start_run() as second:
        xgboost.XGBRegressor(n_estimators=5).fit(X_train, y_train, eval_set=[(X_val.iloc[:70], y_val.iloc[:70])])
    with mlflow.start_run() as third:
        Ridge().fit(X_train, y_train)
    history = MlflowClient().get_metric_history(first.info.run_id, "explain/rows_validation")
    assert [metric.value for metric in history] == [50, 50]
    assert _run(second.info.run_id).data.metrics["explain/rows_validation"] == 70, "the later run's eval_set"
    assert explained == ["Ridge", "Ridge", "XGBRegressor"], "nothing left for the third run"
    assert "mlflow_explain.status" not in _run(third.info.run_id).data.tags


def _lightgbm_eval_x_eval_y(X_train, y_train, X_val, y_val):
    lightgbm.LGBMRegressor(n_estimators=5, verbose=-1).fit(X_train, y_train, eval_X=X_val, eval_y=y_val)


def _lightgbm_eval_x_eval_y_tuples(X_train, y_train, X_val, y_val):
    lightgbm.LGBMRegressor(n_estimators=5, verbose=-1).fit(
        X_train, y_train, eval_X=(X_train, X_val), eval_y=(y_train, y_val)
    )


def _lightgbm_bare_eval_set(X_train, y_train, X_val, y_val):
    lightgbm.LGBMRegressor(n_estimators=5, verbose=-1).fit(X_train, y_train, eval_set=(X_val, y_val))


def _xgboost_eval_set_list(X_train, y_train, X_val, y_val):
    xgboost.XGBRegressor(n_estimators=5).fit(
        X_train, y_train, eval_set=[(X_train, y_train), (X_val, y_val)], verbose=False
    )


@pytest.mark.parametrize(
    "fit",
    [_lightgbm_eval_x_eval_y, _lightgbm_eval_x_eval_y_tuples, _lightgbm_bare_eval_set, _xgboost_eval_set_list],
    ids=["lightgbm-eval_X-eval_y", "lightgbm-eval_X-eval_y-tuples", "lightgbm-bare-eval_set", "xgboost-eval_set-list"],
)
def test_the_fits_evaluation_rows_are_the_validation_data(tracking_uri, data, explained, fit):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(config=NO_SHAP)
    with mlflow.start_run() as run:
        fit(X_train, y_train, X_val.iloc[:60], y_val.iloc[:60])
    logged = _run(run.info.run_id)
    assert logged.data.tags["mlflow_explain.status"] == "ok"
    assert logged.data.metrics["explain/rows_validation"] == 60, "the last evaluation set"


def test_validation_file_from_config(tracking_uri, data, explained, tmp_path):
    X_train, y_train, X_val, y_val = data
    X_val.assign(target=y_val).to_csv(tmp_path / "val.csv", index=False)
    mlflow_explain.autolog(config={**FAST, "validation": {"path": str(tmp_path / "val.csv"), "target": "target"}})
    with mlflow.start_run() as run:
        Ridge().fit(X_train, y_train)
    assert _run(run.info.run_id).data.metrics["explain/rows_validation"] == len(X_val)


# 5. Cheap when on.

_IMPORT_PROBE = """
import importlib, json, sys, time
import sklearn.base
autolog_module = importlib.import_module("mlflow_explain.triggers.autolog.autolog")
from mlflow_explain.triggers.autolog import patch as autolog_patch
before = set(sys.modules)
started = time.perf_counter()
autolog_module.autolog()
seconds = time.perf_counter() - started
imported = sorted(set(sys.modules) - before)
from sklearn.ensemble import RandomForestRegressor
import xgboost
from sklearn.ensemble._forest import BaseForest
owners = (BaseForest, xgboost.XGBModel, xgboost.XGBClassifier)
wrapped = [owner.__dict__["fit"] in autolog_patch._wrapped_by for owner in owners]
autolog_module.autolog(disable=True)
restored = [owner.__dict__["fit"] not in autolog_patch._wrapped_by for owner in owners]
print(json.dumps({"imported": imported, "wrapped": wrapped, "restored": restored, "seconds": seconds}))
"""


@pytest.mark.integration  # a fresh interpreter
def test_autolog_imports_no_estimator_module_and_patches_those_imported_later():
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_IMPORT_PROBE)], capture_output=True, text=True, env=env, check=True
    )
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    heavy = [name for name in probe["imported"] if name.split(".")[0] in ("sklearn", "xgboost", "lightgbm", "shap")]
    assert heavy == [], "autolog() imports no estimator module"
    assert probe["wrapped"] == [True, True, True], "classes imported after autolog() are patched as they are defined"
    assert probe["restored"] == [True, True, True]


_DEFERRED_PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("patch_alone", {path!r})  # without the package, which imports sklearn
patch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(patch)
routed = []

def handler(original, estimator, args, kwargs, caller):
    routed.append(type(estimator).__name__)
    return original(estimator, *args, **kwargs)

patch.install(handler)
imported_before = "sklearn" in sys.modules
from sklearn.linear_model import Ridge
Ridge().fit([[0.0], [1.0]], [0.0, 1.0])
installed, count = sorted(set(routed)), len(routed)
patch.uninstall()
Ridge().fit([[0.0], [1.0]], [0.0, 1.0])
print(json.dumps({{"imported_before": imported_before, "installed": installed, "after": len(routed) - count}}))
"""


@pytest.mark.integration  # a fresh interpreter
def test_installed_before_scikit_learn_is_imported_it_waits_for_it():
    probe = _DEFERRED_PROBE.format(path=str(REPO / "mlflow_explain" / "triggers" / "autolog" / "patch.py"))
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["imported_before"] is False and probe["installed"] == ["Ridge"], "routed once scikit-learn came"
    assert probe["after"] == 0, "and no longer after uninstall()"


def test_shaps_per_row_progress_bar_stays_off(tracking_uri, labelled, explained, monkeypatch):
    import shap.explainers._explainer as shap_explainer

    asked = []
    real_show_progress = shap_explainer.show_progress

    def recording_show_progress(iterable, total=None, desc=None, silent=False, start_delay=10):
        asked.append(silent)
        return real_show_progress(iterable, total, desc, silent, start_delay)

    monkeypatch.setattr(shap_explainer, "show_progress", recording_show_progress)
    X_train, y_train, X_val, y_val = labelled
    config = {"permutation": {"enabled": False}, "shap": {"algorithm": "permutation", "max_rows": 5}}
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=config)
    with mlflow.start_run():
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X_train, y_train)
    assert explained == ["Pipeline"] and asked and all(asked), "shap was asked for no per-row progress bar"


# The rest of the contract.


def test_xgboost_eval_set_is_the_validation_data(tracking_uri, data, explained):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(config=FAST)
    with mlflow.start_run() as run:
        xgboost.XGBRegressor(n_estimators=20).fit(X_train, y_train, eval_set=[(X_val, y_val)], verbose=False)
    logged = _run(run.info.run_id)
    assert logged.data.metrics["explain/rows_validation"] == len(X_val)
    assert "shap_mean_abs/bmi" in logged.data.metrics and explained == ["XGBRegressor"]


def test_failing_explanation_never_breaks_training(tracking_uri, data, explained, quick_model_logging, tmp_path):
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
    StandardScaler().fit(X_train, y_train)  # not explained, so nothing to raise


def _descendants(cls):
    return {descendant for child in type.__subclasses__(cls) for descendant in {child, *_descendants(child)}}


def _fit_functions():
    """Every class's own ``fit`` among the scikit-learn estimator classes defined so far."""
    return {cls: cls.__dict__.get("fit") for cls in _descendants(BaseEstimator)}


def test_disable_restores_the_original_methods_exactly(explained):
    before = _fit_functions()
    estimator_hooks = dict(vars(BaseEstimator))
    forest_fit = RandomForestRegressor.fit
    mlflow_explain.autolog(validation_data=None)
    assert RandomForestRegressor.fit is not forest_fit and xgboost.XGBModel.fit is not before[xgboost.XGBModel]

    class DefinedWhileOn(BaseEstimator):
        def fit(self, X, y=None):
            return self

    original = DefinedWhileOn.__dict__["fit"].__wrapped__
    mlflow_explain.autolog(disable=True)
    after = _fit_functions()
    assert after.pop(DefinedWhileOn) is original
    assert after == before and dict(vars(BaseEstimator)) == estimator_hooks
    assert RandomForestRegressor.fit is forest_fit


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
