"""Re-explaining a run never mixes two explanations (issue 16)."""

from __future__ import annotations

import json

import mlflow
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor

import mlflow_explain


def _files(client: MlflowClient, run_id: str, path: str) -> list[str]:
    """Every artifact under ``path``, relative to it (the history folder left out)."""
    found = []
    for item in client.list_artifacts(run_id, path):
        if item.is_dir and item.path != "explain/history":
            found.extend(f"{item.path.split('/')[-1]}/{name}" for name in _files(client, run_id, item.path))
        elif not item.is_dir:
            found.append(item.path.split("/")[-1])
    return sorted(found)


def _summary(client: MlflowClient, run_id: str, path: str, tmp_path) -> dict:
    local = client.download_artifacts(run_id, path, str(tmp_path))
    with open(local, encoding="utf-8") as handle:
        return json.load(handle)


def test_a_re_explained_run_holds_only_the_latest_explanation_and_the_older_ones_in_history(tracking_uri, tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = RandomForestRegressor(n_estimators=10, max_depth=3, random_state=0).fit(X.iloc[:300], y.iloc[:300])
    X_val, y_val = X.iloc[300:], y.iloc[300:]
    client = MlflowClient()
    with mlflow.start_run() as run:
        for seed in (0, 1, 2):  # other seeds: other local rows, so other waterfall files
            config = {
                "permutation": {"n_repeats": 2},
                "shap": {"max_rows": 40, "local_rows": 2, "dependence_top_k": 1, "random_state": seed},
                "compare": {"enabled": False},
            }
            mlflow_explain.explain(model, X_val, y_val, config=config)
    run_id = run.info.run_id

    latest = _summary(client, run_id, "explain/summary.json", tmp_path / "latest")
    assert _files(client, run_id, "explain") == latest["files"], "explain/ holds exactly the latest explanation"
    assert latest["config"]["shap"]["random_state"] == 2
    assert [item.path for item in client.list_artifacts(run_id, "explain/history")] == [
        "explain/history/1",
        "explain/history/2",
    ]
    for number, seed in ((1, 0), (2, 1)):
        folder = f"explain/history/{number}"
        earlier = _summary(client, run_id, f"{folder}/summary.json", tmp_path / str(number))
        assert earlier["config"]["shap"]["random_state"] == seed
        assert _files(client, run_id, folder) == earlier["files"], "each earlier explanation kept whole"
    waterfalls = {name for name in latest["files"] if name.startswith("local/waterfall_row")}
    assert len(waterfalls) == 2 and waterfalls != {n for n in earlier["files"] if n.startswith("local/waterfall")}

    steps = [metric.step for metric in client.get_metric_history(run_id, "permutation_importance/bmi")]
    assert sorted(steps) == [0, 1, 2], "one value per explanation, at its own step"
    logged = client.get_run(run_id).data
    assert logged.tags["mlflow_explain.explanations"] == "3"
    history = client.get_metric_history(run_id, "explain/rows_shap")
    assert logged.metrics["explain/rows_shap"] == max(history, key=lambda metric: metric.step).value
