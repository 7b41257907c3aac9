"""How explain() talks to MLflow: few calls, metrics and tags batched, the baseline read from one search."""

from __future__ import annotations

import collections

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import make_regression
from sklearn.ensemble import RandomForestRegressor

import mlflow_explain
from mlflow_explain.publish import tracking

from .helpers import copy_sqlite_store

NAMES = ["a/b", "température °C", "x" * 300, "plain", "q'uote", "sp ace"]
FAST = {"permutation": {"n_repeats": 2}, "shap": {"max_rows": 60, "dependence_top_k": 0, "local_rows": 1}}


@pytest.fixture(scope="module")
def store(migrated_store, tmp_path_factory):
    """One SQLite tracking store for this module's tests, each test in an experiment of its own."""
    folder = tmp_path_factory.mktemp("logging_calls")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(copy_sqlite_store(migrated_store, folder))
    yield folder
    mlflow.set_tracking_uri(previous)


@pytest.fixture
def experiment(store, request, monkeypatch):
    """A new experiment of the module's store, named after the test, as the current one."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow.get_tracking_uri())
    mlflow.set_experiment(
        experiment_id=mlflow.create_experiment(
            request.node.name, artifact_location=(store / request.node.name).as_uri()
        )
    )
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def calls(monkeypatch):
    """Count the MlflowClient calls made while the test runs (each still goes to the real store)."""
    counts: collections.Counter = collections.Counter()
    for name in (
        "log_batch",
        "log_artifacts",
        "log_artifact",
        "log_metric",
        "set_tag",
        "search_runs",
        "get_run",
        "download_artifacts",
        "list_artifacts",
    ):
        original = getattr(MlflowClient, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(MlflowClient, name, counted)
    return counts


def _model():
    X, y = make_regression(n_samples=300, n_features=len(NAMES), n_informative=4, random_state=0)
    X = pd.DataFrame(X, columns=NAMES)
    return RandomForestRegressor(n_estimators=15, max_depth=4, random_state=0).fit(X[:200], y[:200]), X[200:], y[200:]


def test_a_second_explanation_logs_in_two_calls_and_reads_its_baseline_from_one_search(experiment, calls):
    model, X, y = _model()
    with mlflow.start_run() as first:
        mlflow_explain.explain(model, X, y, config=FAST)
    calls.clear()
    with mlflow.start_run() as second:
        explanation = mlflow_explain.explain(model, X, y, config=FAST)
    assert explanation.status == "ok", explanation.errors
    # get_run: the run's own tags say whether it was explained before (issue 16 item 10: its files are then archived)
    assert calls == {"search_runs": 1, "get_run": 1, "log_artifacts": 1, "log_batch": 1}, dict(calls)
    drift = explanation.drift
    assert drift.baseline_run_id == first.info.run_id
    assert drift.ndcg == pytest.approx(1.0) and drift.spearman == pytest.approx(1.0) and len(drift.moved) == 0
    logged = MlflowClient().get_run(second.info.run_id).data
    assert logged.tags["mlflow_explain.status"] == "ok" and logged.tags["mlflow_explain.drift"] == "ok"
    assert logged.metrics["explain/drift_ndcg"] == pytest.approx(1.0)

    baseline = tracking.logged_importances(MlflowClient().get_run(first.info.run_id), NAMES)
    table = baseline.table
    assert set(table["feature"]) == set(NAMES), "sanitized metric keys map back to the feature names"
    shap = table[table["method"] == "shap"].set_index("feature")["importance"]
    expected = explanation.importances.query("method == 'shap' and output == 'all'").set_index("feature")["importance"]
    assert np.allclose(shap[expected.index].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)


def test_the_baseline_is_the_latest_earlier_explained_run_and_never_the_run_itself(experiment):
    model, X, y = _model()
    with mlflow.start_run() as older:
        mlflow_explain.explain(model, X, y, config=FAST)
    with mlflow.start_run() as newer:
        mlflow_explain.explain(model, X, y, config=FAST)
    with mlflow.start_run(run_name="not explained"):
        pass
    assert tracking.find_baseline(newer.info.run_id, "previous").info.run_id == older.info.run_id
    assert tracking.find_baseline(older.info.run_id, "previous") is None
    with mlflow.start_run(run_id=newer.info.run_id):  # read from the active run rather than fetched
        assert tracking.find_baseline(newer.info.run_id, "previous").info.run_id == older.info.run_id


def test_thousands_of_metrics_go_in_full_batches_with_the_tags_in_the_last(experiment, calls):
    with mlflow.start_run() as run:
        pass
    metrics = {f"permutation_importance/f{i}": float(i) for i in range(2500)}
    tags = {tracking.STATUS_TAG: "ok", tracking.VERSION_TAG: "test"}
    tracking.log_metrics(MlflowClient(), run.info.run_id, metrics, tags)
    assert calls["log_batch"] == 3, "1000 entities per call, metrics and tags counted together"
    logged = MlflowClient().get_run(run.info.run_id).data
    assert logged.metrics == metrics and {key: logged.tags[key] for key in tags} == tags
