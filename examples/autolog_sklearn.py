"""Several models trained in a loop, each explained automatically after fit.

    pip install -e . && python examples/autolog_sklearn.py

mlflow.sklearn.autolog() creates a run per model (params, training metrics, the model) and
mlflow_explain.autolog() adds the explanation to that same run.
"""

from __future__ import annotations

import logging

import mlflow
from example_store import TRACKING_URI, browse_hint
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_wine
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlflow_explain


def main() -> list[str]:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    mlflow.set_tracking_uri(TRACKING_URI)
    mlflow.set_experiment("mlflow_explain autolog")
    X, y = load_wine(return_X_y=True, as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)

    mlflow.sklearn.autolog(serialization_format="cloudpickle")
    mlflow_explain.autolog(validation_data=(X_val, y_val), config={"permutation": {"n_repeats": 10}})
    models = {
        "random-forest": RandomForestClassifier(n_estimators=200, random_state=0),
        "gradient-boosting": HistGradientBoostingClassifier(max_iter=100, random_state=0),
        "logistic-regression": make_pipeline(
            make_column_transformer((StandardScaler(), list(X.columns))), LogisticRegression(max_iter=2000)
        ),
        "grid-search": GridSearchCV(RandomForestClassifier(random_state=0), {"max_depth": [3, None]}, cv=3),
    }
    run_ids = []
    for name, model in models.items():
        with mlflow.start_run(run_name=name) as run:
            model.fit(X_train, y_train)  # explained right after fit, into this run
        run_ids.append(run.info.run_id)
        status = mlflow.get_run(run.info.run_id).data.tags.get("mlflow_explain.status")
        print(f"{name:20s} run {run.info.run_id}  explanation: {status}")
    mlflow_explain.autolog(disable=True)
    mlflow.sklearn.autolog(disable=True)
    print(
        f"Compare the permutation_importance/* and shap_mean_abs/* metrics across runs in the UI:\n    {browse_hint()}"
    )
    return run_ids


if __name__ == "__main__":
    main()
