"""One training process of the concurrency test: train, explain into the tracking server, report.

    python tests/explain_worker.py SEED OUTPUT_JSON

The tracking server and experiment come from MLFLOW_TRACKING_URI and MLFLOW_EXPERIMENT_NAME.
The JSON written holds the run id and the metrics the explanation computed, so that the test can
check that the server holds all of them.
"""

from __future__ import annotations

import json
import sys

import mlflow
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor

import mlflow_explain
from mlflow_explain.publish.tracking import explanation_metrics

CONFIG = {"permutation": {"n_repeats": 3}, "shap": {"max_rows": 150, "dependence_top_k": 3}}


def main(seed: int, output: str) -> None:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    with mlflow.start_run(run_name=f"worker-{seed}") as run:
        model = RandomForestRegressor(n_estimators=20, max_depth=5, random_state=seed).fit(X[:300], y[:300])
        mlflow.log_param("seed", seed)
        mlflow.log_metric("train_r2", model.score(X[:300], y[:300]))
        explanation = mlflow_explain.explain(model, X[300:], y[300:], config=CONFIG)
    with open(output, "w", encoding="utf-8") as handle:
        json.dump(
            {"run_id": run.info.run_id, "status": explanation.status, "metrics": explanation_metrics(explanation)},
            handle,
        )


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
