"""Quick start: train a model, explain it into a local SQLite MLflow store, say how to browse it.

pip install -e . && python examples/quickstart.py
"""

from __future__ import annotations

import logging

import mlflow
from example_store import TRACKING_URI
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

import mlflow_explain
from mlflow_explain.publish.tracking import report_hint

TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


def main() -> str:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    mlflow.set_tracking_uri(TRACKING_URI)
    mlflow.set_experiment("mlflow_explain quickstart")

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)

    with mlflow.start_run(run_name="hist-gradient-boosting") as run:
        model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=0)
        model.fit(X_train, y_train)
        mlflow.log_params(model.get_params())
        mlflow.log_metric("val_accuracy", model.score(X_val, y_val))
        # skops, MLflow's safe format, loads only the types it is told to trust: the model's trees. Its
        # requirements are scikit-learn and skops, declared rather than inferred by loading it in a subprocess.
        mlflow.sklearn.log_model(
            model,
            name="model",
            skops_trusted_types=[TREE_PREDICTOR],
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
        )
        explanation = mlflow_explain.explain(model, X_val, y_val)

    top = explanation.importances.query("method == 'permutation'").nsmallest(3, "rank")
    print(f"Explained run {run.info.run_id} (status: {explanation.status}, SHAP: {explanation.shap.algorithm}).")
    print("Top features by permutation importance:", ", ".join(top["feature"]))
    print(report_hint(run.info.run_id))
    return run.info.run_id


if __name__ == "__main__":
    main()
