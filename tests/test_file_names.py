"""Artifact file names hold no spaces, so the MLflow UI's deep links to every plot work (issue 16)."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

import mlflow_explain
from mlflow_explain.keys import file_parts


def _artifact_paths(client: MlflowClient, run_id: str, path: str = "explain") -> list[str]:
    paths = []
    for item in client.list_artifacts(run_id, path):
        paths.extend(_artifact_paths(client, run_id, item.path) if item.is_dir else [item.path])
    return paths


def test_features_with_spaces_get_artifact_names_without_spaces(tracking_uri):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)  # "mean radius", "worst concave points", ...
    model = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X.iloc[::2], y.iloc[::2])
    config = {"permutation": {"n_repeats": 2}, "shap": {"max_rows": 60, "dependence_top_k": 3, "local_rows": 1}}
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain(model, X.iloc[1::2], y.iloc[1::2], config=config)
    paths = _artifact_paths(MlflowClient(), run.info.run_id)
    assert [path for path in paths if " " in path] == []
    top = explanation.importances.query("method == 'shap' and output == 'all'").nsmallest(3, "rank")["feature"]
    assert all(" " in feature for feature in top), "the case needs feature names with spaces"
    for feature in top:
        assert f"explain/dependence/{feature.replace(' ', '_')}.svg" in paths
    assert "shap_mean_abs/mean radius" in MlflowClient().get_run(run.info.run_id).data.metrics, "keys keep spaces"


def test_file_parts_stay_unique_when_a_space_and_an_underscore_meet():
    parts = file_parts(["mean radius", "mean_radius", "worst area"])
    assert parts["mean_radius"] == "mean_radius" and parts["worst area"] == "worst_area"
    assert parts["mean radius"].startswith("mean_radius_") and " " not in parts["mean radius"]
