"""mlflow.models.evaluate with MLflow's own evaluators and the explain plugin side by side.

pip install -e . && python examples/evaluate_plugin.py
"""

from __future__ import annotations

import logging

import mlflow
from example_store import TRACKING_URI, browse_hint
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.model_selection import train_test_split


def main() -> str:
    logging.basicConfig(level=logging.WARNING)
    mlflow.set_tracking_uri(TRACKING_URI)
    mlflow.set_experiment("mlflow_explain evaluate")
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0)

    with mlflow.start_run(run_name="gbr-evaluated") as run:
        model = GradientBoostingRegressor(random_state=0).fit(X_train, y_train)
        model_info = mlflow.sklearn.log_model(
            model,
            name="model",
            skops_trusted_types=[
                "sklearn.tree._tree.Tree",
                "sklearn._loss.loss.HalfSquaredError",
                "sklearn._loss.link.IdentityLink",
                "sklearn._loss.link.Interval",
                "sklearn.ensemble._gb.GradientBoostingRegressor",
            ],
        )
        result = mlflow.models.evaluate(
            model_info.model_uri,
            X_val.assign(progression=y_val),
            targets="progression",
            model_type="regressor",
            evaluators=["default", "explain"],
            evaluator_config={
                "default": {"log_model_explainability": False},
                "explain": {"permutation": {"n_repeats": 10}},
            },
        )
    print(f"Evaluated run {run.info.run_id}")
    print(f"  r2 (MLflow's evaluator): {result.metrics['r2_score']:.3f}")
    for feature in ("bmi", "s5", "bp"):
        print(
            f"  {feature}: permutation importance {result.metrics[f'permutation_importance/{feature}']:.3f}, "
            f"mean |SHAP| {result.metrics[f'shap_mean_abs/{feature}']:.2f}"
        )
    print(
        f"  explanation artifacts: {len([a for a in result.artifacts if a.startswith('explain/')])}, "
        "the report is explain/report.html"
    )
    print(f"Browse it in the MLflow UI:\n    {browse_hint()}")
    return run.info.run_id


if __name__ == "__main__":
    main()
