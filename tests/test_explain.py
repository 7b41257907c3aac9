"""End to end: explain() logs metrics, artifacts and tags into a real SQLite MLflow store."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes, load_wine
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.svm import SVC

import mlflow_explain
from mlflow_explain.keys import key_parts
from tests.helpers import mixed_frame, mixed_pipeline

ARTIFACTS = [
    "importances.csv",
    "summary.json",
    "feature_keys.json",
    "shap_values.parquet",
    "report.html",
    "permutation_importance.svg",
    "shap_bar.svg",
    "local/local_explanations.csv",
]


def _artifact_paths(client, run_id, path="explain"):
    paths = []
    for item in client.list_artifacts(run_id, path):
        paths.extend(_artifact_paths(client, run_id, item.path) if item.is_dir else [item.path])
    return paths


def _download(client, run_id, path, tmp_path):
    return client.download_artifacts(run_id, path, str(tmp_path))


def test_regressor_run_has_every_metric_artifact_and_tag(tracking_uri, tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_val, y_train, y_val = X.iloc[:300], X.iloc[300:], y.iloc[:300], y.iloc[300:]
    with mlflow.start_run() as run:
        model = RandomForestRegressor(n_estimators=30, random_state=0).fit(X_train, y_train)
        mlflow.log_metric("user_metric", 1.5)
        explanation = mlflow_explain.explain(model, X_val, y_val)
    client = MlflowClient()
    logged = client.get_run(run.info.run_id)
    metrics = logged.data.metrics
    for feature in X.columns:
        assert f"permutation_importance/{feature}" in metrics
        assert f"permutation_importance_std/{feature}" in metrics
        assert f"shap_mean_abs/{feature}" in metrics
    assert metrics["user_metric"] == 1.5
    assert metrics["permutation_importance/bmi"] == pytest.approx(explanation.permutation.mean("r2")[2])
    assert metrics["explain/rows_validation"] == len(X_val)
    assert logged.data.tags["mlflow_explain.status"] == "ok"
    assert logged.data.tags["mlflow_explain.version"] == mlflow_explain.__version__
    paths = _artifact_paths(client, run.info.run_id)
    for name in ARTIFACTS + ["shap_beeswarm.svg"]:
        assert f"explain/{name}" in paths
    assert any(p.startswith("explain/dependence/") for p in paths)
    assert sum(p.startswith("explain/local/waterfall") for p in paths) == 3
    assert sum(p.startswith("explain/local/force_plot_row") for p in paths) == 1, "the first local row's"

    summary = json.loads(open(_download(client, run.info.run_id, "explain/summary.json", tmp_path)).read())
    assert summary["status"] == "ok" and summary["schema_version"] == 1
    assert summary["task"]["kind"] == "regression" and summary["shap"]["algorithm"] == "tree"
    assert summary["shap"]["max_additivity_error"] < 1e-6 and "tree ensemble" in summary["shap"]["reason"]
    assert summary["config"]["permutation"]["n_repeats"] == 5
    assert summary["permutation"]["path"] == "model" and summary["permutation"]["path_reason"]
    assert {"scikit-learn", "shap", "mlflow", "python"} <= set(summary["versions"])

    table = pd.read_csv(_download(client, run.info.run_id, "explain/importances.csv", tmp_path))
    assert list(table.columns) == ["method", "output", "feature", "importance", "std", "rank"]
    assert set(table["method"]) == {"permutation", "shap"}
    values = pd.read_parquet(_download(client, run.info.run_id, "explain/shap_values.parquet", tmp_path))
    shap_sum = values[[f"shap:prediction:{f}" for f in X.columns]].sum(axis=1) + values["base_value:prediction"]
    np.testing.assert_allclose(shap_sum, model.predict(X_val.iloc[values["row"]]), atol=1e-6)
    report = open(_download(client, run.info.run_id, "explain/report.html", tmp_path), encoding="utf-8").read()
    assert "data:image/svg+xml;base64," in report and "bmi" in report


def test_multiclass_logs_per_class_metrics(tracking_uri):
    X, y = load_wine(return_X_y=True, as_frame=True)
    y = y.map({0: "barolo", 1: "grignolino", 2: "barbera"})
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    with mlflow.start_run() as run:
        mlflow_explain.explain(model, X, y, config={"permutation": {"scoring": ["accuracy", "neg_log_loss"]}})
    metrics = MlflowClient().get_run(run.info.run_id).data.metrics
    feature = key_parts(X.columns)["od280/od315_of_diluted_wines"]
    assert feature == "od280_od315_of_diluted_wines"
    for label in ("barolo", "grignolino", "barbera"):
        assert f"shap_mean_abs.{label}/{feature}" in metrics
    assert f"permutation_importance.neg_log_loss/{feature}" in metrics
    assert f"permutation_importance/{feature}" in metrics


def test_pipeline_on_mixed_types_is_reported_per_raw_column(tracking_uri):
    X, y = mixed_frame()
    model = mixed_pipeline(GradientBoostingClassifier(n_estimators=30, random_state=0)).fit(X, y)
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain(
            model, X, y, config={"permutation": {"feature_groups": {"place": ["city"]}}}
        )
    assert explanation.shap.algorithm == "tree"
    metrics = MlflowClient().get_run(run.info.run_id).data.metrics
    for column in ["income", "color", "age", "noise"]:
        assert f"shap_mean_abs/{column}" in metrics and f"permutation_importance/{column}" in metrics
    assert "permutation_importance/place" in metrics and "shap_mean_abs/city" in metrics


def test_logs_to_given_run_id_and_creates_a_run_when_none_is_active(tracking_uri):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y)
    client = MlflowClient()
    with mlflow.start_run() as finished:
        pass
    mlflow_explain.explain(model, X, y, run_id=finished.info.run_id, config={"shap": {"enabled": False}})
    assert "permutation_importance/bmi" in client.get_run(finished.info.run_id).data.metrics
    assert mlflow.active_run() is None
    mlflow_explain.explain(model, X, y, config={"permutation": {"enabled": False}})
    assert mlflow.active_run() is None
    runs = client.search_runs([finished.info.experiment_id], "tags.mlflow_explain.status = 'ok'")
    assert len(runs) == 2


def test_failing_method_keeps_the_rest_and_marks_partial(tracking_uri, tmp_path):
    X, y = load_wine(return_X_y=True, as_frame=True)
    model = SVC(random_state=0).fit(X, y)
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        explanation = mlflow_explain.explain(model, X, y, config={"shap": {"algorithm": "tree"}})
    assert explanation.status == "partial" and "TreeExplainer cannot explain SVC" in explanation.errors["shap"]
    client = MlflowClient()
    logged = client.get_run(run.info.run_id)
    assert logged.data.tags["mlflow_explain.status"] == "partial"
    assert logged.data.params["C"] == "1.0"
    assert "permutation_importance/alcohol" in logged.data.metrics
    assert not any(key.startswith("shap_mean_abs") for key in logged.data.metrics)
    error = open(_download(client, run.info.run_id, "explain/error.txt", tmp_path)).read()
    assert error.startswith("shap: ValueError")


def test_on_error_raise_propagates(tracking_uri):
    X, y = load_wine(return_X_y=True, as_frame=True)
    with mlflow.start_run(), pytest.raises(ValueError, match="TreeExplainer cannot explain"):
        mlflow_explain.explain(SVC().fit(X, y), X, y, config={"shap": {"algorithm": "tree"}, "on_error": "raise"})


def test_hostile_feature_names_are_logged_and_escaped(tracking_uri, tmp_path):
    rng = np.random.RandomState(0)
    names = ["a/b", "a_b", "<script>alert(1)</script>", "..", "quote\"'", "é" * 300]
    X = pd.DataFrame(rng.randn(300, len(names)), columns=names)
    y = X.iloc[:, 0] * 3 + X.iloc[:, 2] + rng.randn(300) * 0.1
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y)
    with mlflow.start_run() as run:
        mlflow_explain.explain(model, X, y)
    client = MlflowClient()
    metrics = client.get_run(run.info.run_id).data.metrics
    parts = key_parts(names)
    assert all(f"permutation_importance/{parts[name]}" in metrics for name in names)
    mapping = json.loads(open(_download(client, run.info.run_id, "explain/feature_keys.json", tmp_path)).read())
    assert mapping["features"] == parts
    report = open(_download(client, run.info.run_id, "explain/report.html", tmp_path), encoding="utf-8").read()
    assert "<script>alert(1)</script>" not in report and "&lt;script&gt;alert(1)&lt;/script&gt;" in report
