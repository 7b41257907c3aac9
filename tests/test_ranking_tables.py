"""Each method's ranking lands in the run as an MLflow table (``mlflow.log_table``'s layout and tag) for the UI."""

from __future__ import annotations

import json
import logging

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor

import mlflow_explain
from mlflow_explain.publish.tracking import LOGGED_TABLES_TAG, logged_tables_tag

CONFIG = {"permutation": {"n_repeats": 3}, "shap": {"max_rows": 60, "dependence_top_k": 1, "local_rows": 1}}
TABLES = ["explain/ranking/permutation.json", "explain/ranking/shap.json"]


def _explain_diabetes_forest(n_repeats: int) -> mlflow_explain.Explanation:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = RandomForestRegressor(n_estimators=20, max_depth=4, random_state=0).fit(X[:300], y[:300])
    config = CONFIG | {"permutation": {"n_repeats": n_repeats}}
    return mlflow_explain.explain(model, X[300:400], y[300:400], config=config)


def test_each_methods_ranking_is_a_table_mlflow_reads_back_with_the_runs_metrics(tracking_uri):
    with mlflow.start_run() as run:
        mlflow.log_table({"question": ["q"], "answer": ["a"]}, "user/answers.json")  # the user's own table
        explanation = _explain_diabetes_forest(n_repeats=3)
    run_id = run.info.run_id
    logged = MlflowClient().get_run(run_id)

    registered = [entry["path"] for entry in json.loads(logged.data.tags[LOGGED_TABLES_TAG])]
    assert registered == ["user/answers.json", *TABLES], "the user's table stays listed, ours follow"
    for method, prefix in (("permutation", "permutation_importance"), ("shap", "shap_mean_abs")):
        table = mlflow.load_table(f"explain/ranking/{method}.json", run_ids=[run_id])  # MLflow's own reader
        importances = explanation.importances
        primary = importances[
            (importances["method"] == method) & (importances["output"] == explanation.results[method].primary_output)
        ]
        assert list(table.columns) == ["rank", "feature", "importance", *(["std"] if method == "permutation" else [])]
        assert table["rank"].tolist() == list(range(1, len(primary) + 1))
        assert table["feature"].tolist() == primary.sort_values("rank")["feature"].tolist()
        assert table["importance"].is_monotonic_decreasing
        metrics = [logged.data.metrics[f"{prefix}/{feature}"] for feature in table["feature"]]
        assert table["importance"].to_numpy() == pytest.approx(metrics, rel=1e-3, abs=1e-12), "one number: the metric's"


def test_an_explained_again_run_lists_each_table_once_and_shows_the_new_ranking(tracking_uri):
    with mlflow.start_run() as run:
        _explain_diabetes_forest(n_repeats=2)
        second = _explain_diabetes_forest(n_repeats=4)
    tags = MlflowClient().get_run(run.info.run_id).data.tags
    assert [entry["path"] for entry in json.loads(tags[LOGGED_TABLES_TAG])] == TABLES
    table = mlflow.load_table("explain/ranking/permutation.json", run_ids=[run.info.run_id])
    std = second.importances.query("method == 'permutation'").set_index("feature")["std"]
    assert table.set_index("feature")["std"].to_numpy() == pytest.approx(std[table["feature"]].to_numpy(), rel=1e-3)


def test_the_tag_keeps_what_it_listed_and_replaces_a_value_that_is_not_mlflows_list(caplog):
    user = json.dumps([{"path": "user/answers.json", "type": "table"}])
    ours = ["explain/ranking/permutation.json"]
    kept = json.loads(logged_tables_tag(user, ours))
    assert kept == [{"path": "user/answers.json", "type": "table"}, {"path": ours[0], "type": "table"}]
    assert json.loads(logged_tables_tag(json.dumps(kept), ours)) == kept, "no entry twice"
    assert json.loads(logged_tables_tag(None, ours)) == [{"path": ours[0], "type": "table"}]
    with caplog.at_level(logging.WARNING):
        assert json.loads(logged_tables_tag("{broken", ours)) == [{"path": ours[0], "type": "table"}]
    assert "is not a JSON list" in caplog.text
