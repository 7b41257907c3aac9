"""The explain evaluator inside mlflow.models.evaluate."""

from __future__ import annotations

import json

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor

from mlflow_explain.triggers.evaluator import ExplainEvaluator

FAST = {"permutation": {"n_repeats": 2}, "shap": {"max_rows": 100, "dependence_top_k": 1, "local_rows": 1}}


# Declared, as users may: inferring them loads the model in a subprocess at every log_model (10-40 s here).
REQUIREMENTS = mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=True)


@pytest.fixture(scope="module")
def forest():
    """A random forest fitted once (tests only read it), and its validation rows."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = RandomForestRegressor(n_estimators=20, random_state=0).fit(X.iloc[:300], y.iloc[:300])
    return model, X.iloc[300:].assign(y=y.iloc[300:])


@pytest.fixture
def regressor(forest, tracking_uri):
    """The forest logged into a new run of this test's store, and its validation rows."""
    model, data = forest
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", serialization_format="cloudpickle", pip_requirements=REQUIREMENTS
        )
    return info.model_uri, data


def test_evaluate_with_the_explain_evaluator(regressor, tmp_path):
    model_uri, data = regressor
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(
            model_uri,
            data,
            targets="y",
            model_type="regressor",
            evaluators=["explain"],
            evaluator_config={"explain": FAST},
        )
    logged = MlflowClient().get_run(run.info.run_id)
    assert result.metrics["permutation_importance/bmi"] == pytest.approx(
        logged.data.metrics["permutation_importance/bmi"]
    )
    assert result.metrics["shap_mean_abs/bmi"] == pytest.approx(logged.data.metrics["shap_mean_abs/bmi"])
    assert {"explain/report.html", "explain/importances.csv", "explain/summary.json"} <= set(result.artifacts)
    assert result.artifacts["explain/importances.csv"].content["feature"].nunique() == 10
    assert logged.data.tags["mlflow_explain.status"] == "ok"
    summary = json.loads(
        open(MlflowClient().download_artifacts(run.info.run_id, "explain/summary.json", str(tmp_path))).read()
    )
    assert summary["shap"]["algorithm"] == "tree", "the pyfunc was unwrapped to the raw forest"
    assert summary["model_type"] == "RandomForestRegressor"


@pytest.mark.slow  # its model's requirements are inferred (a subprocess), as a user's would be
def test_evaluate_a_classifier_with_default_and_explain(tracking_uri):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X.iloc[:400], y.iloc[:400])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
        result = mlflow.models.evaluate(
            info.model_uri,
            X.iloc[400:].assign(label=y.iloc[400:]),
            targets="label",
            model_type="classifier",
            evaluators=["default", "explain"],
            evaluator_config={"explain": FAST, "default": {"log_model_explainability": False}},
        )
    assert "accuracy_score" in result.metrics, "MLflow's own evaluator still runs"
    assert "shap_mean_abs/mean radius" in result.metrics, "a binary classifier: one set, of the positive class"
    assert not any(key.startswith(("shap_mean_abs.0/", "shap_mean_abs.1/")) for key in result.metrics)


def test_not_run_when_evaluators_is_unset_unless_the_config_asks(regressor):
    model_uri, data = regressor
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(
            model_uri, data, targets="y", model_type="regressor", evaluator_config={"log_model_explainability": False}
        )
    assert "mean_squared_error" in result.metrics
    assert not any(key.startswith("permutation_importance") for key in result.metrics)
    assert "mlflow_explain.status" not in MlflowClient().get_run(run.info.run_id).data.tags
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(
            model_uri,
            data,
            targets="y",
            model_type="regressor",
            evaluator_config={
                "explain": {**FAST, "evaluate": {"run_by_default": True}},
                "default": {"log_model_explainability": False},
            },
        )
    assert "permutation_importance/bmi" in result.metrics
    assert MlflowClient().get_run(run.info.run_id).data.tags["mlflow_explain.status"] == "ok"


def test_can_evaluate():
    assert ExplainEvaluator.can_evaluate(model_type="regressor", evaluator_config={})
    assert ExplainEvaluator.can_evaluate(model_type="classifier", evaluator_config={"shap": {"max_rows": 10}})
    assert not ExplainEvaluator.can_evaluate(
        model_type="regressor", evaluator_config={"log_model_explainability": False}
    )
    assert not ExplainEvaluator.can_evaluate(model_type="text", evaluator_config={})


def test_unset_evaluators_skip_explain_when_resolving():
    from mlflow.models.evaluation.base import resolve_evaluators_and_configs

    chosen = [bundle.name for bundle in resolve_evaluators_and_configs(None, None, "regressor")]
    assert "explain" not in chosen and "regressor" in chosen
    asked = resolve_evaluators_and_configs(None, {"explain": {"evaluate": {"run_by_default": True}}}, "regressor")
    assert "explain" in [bundle.name for bundle in asked]
    named = resolve_evaluators_and_configs(["explain"], None, "regressor")
    assert [bundle.name for bundle in named] == ["explain"]
