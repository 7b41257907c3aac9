"""Sweeps: fits in nested runs (a sweep's trials) explained light by default, in full, or not at all."""

from __future__ import annotations

import json
import logging

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import mlflow_explain
from mlflow_explain.errors import ConfigError

FAST = {"permutation": {"n_repeats": 2}, "shap": {"max_rows": 60, "dependence_top_k": 1, "local_rows": 1}}
CAP = 40


@pytest.fixture
def data():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:200], y.iloc[:200], X.iloc[200:300], y.iloc[200:300]


def _sweep(data, n_trials=3):
    """A parent run with ``n_trials`` nested trials, each fitting a Ridge; (parent id, trial ids)."""
    X_train, y_train, _, _ = data
    trials = []
    with mlflow.start_run() as parent:
        for alpha in (0.1, 1.0, 10.0)[:n_trials]:
            with mlflow.start_run(nested=True) as trial:
                Ridge(alpha=alpha).fit(X_train, y_train)
            trials.append(trial.info.run_id)
    return parent.info.run_id, trials


def _run(run_id):
    return MlflowClient().get_run(run_id)


def _summary(run_id, tmp_path):
    path = MlflowClient().download_artifacts(run_id, "explain/summary.json", str(tmp_path / run_id))
    return json.loads(open(path, encoding="utf-8").read())


def _has(metrics, prefix):
    return any(key.startswith(prefix) for key in metrics)


def test_trials_get_the_light_explanation_by_default(tracking_uri, data, fresh_autolog, tmp_path):
    _, _, X_val, y_val = data
    mlflow_explain.autolog(validation_data=(X_val, y_val), config={**FAST, "sweeps": {"nested_max_rows": CAP}})
    parent_id, trial_ids = _sweep(data)
    for trial_id in trial_ids:
        logged = _run(trial_id)
        assert logged.data.tags["mlflow_explain.status"] == "ok"
        assert _has(logged.data.metrics, "permutation_importance/")
        assert not _has(logged.data.metrics, "shap_mean_abs"), "no SHAP in a light explanation"
        assert logged.data.metrics["explain/rows_validation"] == CAP, "rows capped at sweeps.nested_max_rows"
        summary = _summary(trial_id, tmp_path)
        assert summary["shap"] is None and summary["permutation"] is not None
        assert summary["n_rows"] == CAP and summary["n_rows_passed"] == len(X_val)
        assert any("Light explanation of a nested run" in warning for warning in summary["warnings"])
        assert summary["config"]["diagnostics"]["leakage"] is False and summary["drift"] is None
    assert "mlflow_explain.status" not in _run(parent_id).data.tags, "no fit in the parent"


def test_the_best_model_gets_the_full_explanation_in_the_parent(tracking_uri, data, fresh_autolog):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=FAST)
    parent_id, _ = _sweep(data)
    best = Ridge(alpha=0.1).fit(X_train, y_train)  # outside any run: autolog makes a run of its own
    mlflow_explain.explain(best, X_val, y_val, config=FAST, run_id=parent_id)  # the documented call
    logged = _run(parent_id)
    assert logged.data.tags["mlflow_explain.status"] == "ok"
    assert _has(logged.data.metrics, "shap_mean_abs/") and logged.data.metrics["explain/rows_validation"] == 100


def test_a_fit_in_the_parent_run_is_explained_in_full(tracking_uri, data, fresh_autolog):
    X_train, y_train, X_val, y_val = data
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=FAST)
    with mlflow.start_run() as parent:
        with mlflow.start_run(nested=True) as trial:
            Ridge(alpha=10.0).fit(X_train, y_train)
        Ridge(alpha=0.1).fit(X_train, y_train)  # the best parameters, refitted in the parent
    assert _has(_run(parent.info.run_id).data.metrics, "shap_mean_abs/")
    assert not _has(_run(trial.info.run_id).data.metrics, "shap_mean_abs/")


def test_none_leaves_trials_unexplained_and_says_so_once(tracking_uri, data, fresh_autolog, caplog):
    _, _, X_val, y_val = data
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=FAST, nested="none")
    with caplog.at_level(logging.INFO, logger="mlflow_explain"):
        _, trial_ids = _sweep(data)
    for trial_id in trial_ids:
        logged = _run(trial_id)
        assert "mlflow_explain.status" not in logged.data.tags and not _has(logged.data.metrics, "permutation")
    said = [record for record in caplog.records if "sweeps.nested=none" in record.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO


def test_full_explains_every_trial_in_full(tracking_uri, data, fresh_autolog):
    _, _, X_val, y_val = data
    mlflow_explain.autolog(validation_data=(X_val, y_val), config={**FAST, "sweeps": {"nested": "full"}})
    _, trial_ids = _sweep(data)
    for trial_id in trial_ids:
        metrics = _run(trial_id).data.metrics
        assert _has(metrics, "shap_mean_abs/") and metrics["explain/rows_validation"] == 100


def test_the_nested_argument_is_validated(fresh_autolog):
    with pytest.raises(ConfigError, match="sweeps.nested"):
        mlflow_explain.autolog(nested="some")
