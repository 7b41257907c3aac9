"""The examples, run against a real MLflow server over HTTP, log everything into it."""

from __future__ import annotations

import re

import mlflow
import pytest
import requests
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor

import mlflow_explain
from mlflow_explain.publish.tracking import report_address

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


def test_the_report_address_is_on_the_server_and_its_artifact_is_served(mlflow_server, server_uri, explained_run):
    run_id, experiment_id = explained_run
    address, command = report_address(run_id)
    assert command is None, "a tracking server serves the UI itself"
    assert address == f"{mlflow_server.url}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/explain/report.html"
    # what the UI's artifact viewer fetches for that address
    served = requests.get(
        f"{mlflow_server.url}/get-artifact", params={"path": "explain/report.html", "run_uuid": run_id}, timeout=30
    )
    assert served.status_code == 200 and "mlflow_explain report" in served.text


def test_re_explaining_a_run_on_the_server_moves_the_earlier_explanation_to_history(server_uri):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = RandomForestRegressor(n_estimators=5, max_depth=3, random_state=0).fit(X.iloc[:200], y.iloc[:200])
    config = {"permutation": {"n_repeats": 2}, "shap": {"max_rows": 30, "local_rows": 1, "dependence_top_k": 0}}
    with mlflow.start_run() as run:
        mlflow_explain.explain(model, X.iloc[200:], y.iloc[200:], config=config)
        mlflow_explain.explain(model, X.iloc[200:], y.iloc[200:], config=config | {"logging": {"report": False}})
    client = MlflowClient(server_uri)
    top = {item.path for item in client.list_artifacts(run.info.run_id, "explain")}
    assert "explain/report.html" not in top, "the earlier explanation's report was moved, not left beside"
    assert "explain/history/1/report.html" in {
        i.path for i in client.list_artifacts(run.info.run_id, "explain/history/1")
    }
    assert [m.step for m in client.get_metric_history(run.info.run_id, "explain/rows_shap")] == [0, 1]


def test_evaluate_plugin_example_logs_into_the_server_over_http(mlflow_server, tmp_path):
    output = run_example("evaluate_plugin.py", tmp_path, mlflow_server.url)
    run_id = re.search(r"Evaluated run ([0-9a-f]{32})", output).group(1)
    assert f"open {mlflow_server.url} in a browser" in output and "--backend-store-uri" not in output
    client = MlflowClient(mlflow_server.url)
    run = client.get_run(run_id)
    assert run.data.tags["mlflow_explain.status"] == "ok"
    assert "r2_score" in run.data.metrics and "permutation_importance/bmi" in run.data.metrics
    assert "report.html" in {item.path.split("/")[-1] for item in client.list_artifacts(run_id, "explain")}
