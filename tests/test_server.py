"""The examples, run against a real MLflow server over HTTP, log everything into it."""

from __future__ import annotations

import re

import pytest
from mlflow.tracking import MlflowClient

from .helpers import run_example

pytestmark = pytest.mark.integration


def test_quickstart_logs_into_the_server_over_http(mlflow_server, explained_run):
    run_id, _ = explained_run
    run = MlflowClient(mlflow_server.url).get_run(run_id)
    assert run.data.tags["mlflow_explain.status"] == "ok"
    assert "permutation_importance/mean radius" in run.data.metrics and "shap_mean_abs/mean radius" in run.data.metrics
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), "artifacts go through the server's proxy"
    stored = mlflow_server.root / "artifacts"
    assert [path.name for path in stored.rglob("report.html") if run_id in path.parts], "the server stored the report"


def test_evaluate_plugin_example_logs_into_the_server_over_http(mlflow_server, tmp_path):
    output = run_example("evaluate_plugin.py", tmp_path, mlflow_server.url)
    run_id = re.search(r"Evaluated run ([0-9a-f]{32})", output).group(1)
    assert f"open {mlflow_server.url} in a browser" in output and "--backend-store-uri" not in output
    client = MlflowClient(mlflow_server.url)
    run = client.get_run(run_id)
    assert run.data.tags["mlflow_explain.status"] == "ok"
    assert "r2_score" in run.data.metrics and "permutation_importance/bmi" in run.data.metrics
    assert "report.html" in {item.path.split("/")[-1] for item in client.list_artifacts(run_id, "explain")}
