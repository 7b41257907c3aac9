"""Models that only predict: explain(), the CLI and the evaluator take the model-agnostic path and say so."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mlflow
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge

import mlflow_explain
from mlflow_explain.publish.tracking import PyfuncPredictor
from mlflow_explain.triggers.cli import main

FAST = {
    "permutation": {"n_repeats": 2},
    "shap": {"permutation_max_rows": 20, "background_rows": 30, "dependence_top_k": 1, "local_rows": 1},
    "logging": {"report": False},
}


class RidgeModel(mlflow.pyfunc.PythonModel):
    """A custom pyfunc model: a ridge regression behind MLflow's own predict."""

    def __init__(self, ridge: Ridge):
        self.ridge = ridge

    def predict(self, context, model_input, params=None):
        return self.ridge.predict(model_input.to_numpy())


class Scores:
    """A plain Python class that only predicts probabilities and labels (no scikit-learn estimator)."""

    def __init__(self, classifier: LogisticRegression):
        self.classifier = classifier

    def predict(self, X):
        return self.classifier.predict(np.asarray(X))

    def predict_proba(self, X):
        return self.classifier.predict_proba(np.asarray(X))


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return Ridge(alpha=0.1).fit(X.iloc[:300].to_numpy(), y.iloc[:300]), X.iloc[300:], y.iloc[300:]


def _assert_model_agnostic(explanation, name: str, algorithm: str):
    assert explanation.status == "ok", explanation.errors
    assert explanation.model_type == name
    assert explanation.shap.algorithm == algorithm, "exact up to shap.exact_max_features = 10 columns, else sampled"
    assert explanation.shap.reason.startswith(f"{name} only predicts"), explanation.shap.reason
    importances = explanation.importances.query("method == 'permutation'").set_index("feature")["importance"]
    return importances


def test_explain_a_plain_classifier_with_predict_proba(tracking_uri, caplog):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    classifier = LogisticRegression(max_iter=5000).fit(X.iloc[:400].to_numpy(), y.iloc[:400])
    with caplog.at_level(logging.WARNING, logger="mlflow_explain"):
        explanation = mlflow_explain.explain(Scores(classifier), X.iloc[400:], y.iloc[400:], config=FAST)
    importances = _assert_model_agnostic(explanation, "Scores", "permutation")
    assert explanation.task.kind == "binary" and explanation.task.classes == (0, 1), "classifier: it has predict_proba"
    assert explanation.shap.output_space == "probability"
    baseline = explanation.permutation.baseline_scores["accuracy"]
    assert baseline == pytest.approx(classifier.score(X.iloc[400:].to_numpy(), y.iloc[400:]))
    assert importances.max() > 0
    assert any("Scores only predicts" in record.getMessage() for record in caplog.records), "the log says so"


def test_explain_the_plugins_pyfunc_predictor(diabetes, tracking_uri):
    ridge, X, y = diabetes
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=RidgeModel(ridge))
    predictor = PyfuncPredictor(mlflow.pyfunc.load_model(info.model_uri))
    explanation = mlflow_explain.explain(predictor, X, y, config=FAST)
    importances = _assert_model_agnostic(explanation, "PyfuncPredictor", "exact")
    assert explanation.task.kind == "regression", "no predict_proba, no classes_: a regression"
    assert explanation.permutation.baseline_scores["r2"] == pytest.approx(ridge.score(X.to_numpy(), y))
    assert importances.idxmax() in ("bmi", "s5"), importances.sort_values()


def test_cli_explains_a_custom_pyfunc_model(diabetes, tracking_uri, tmp_path):
    ridge, X, y = diabetes
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=RidgeModel(ridge))
    data = tmp_path / "val.csv"
    X.assign(progression=y).to_csv(data, index=False)
    arguments = ["explain", "--model-uri", info.model_uri, "--data", str(data), "--target", "progression"]
    for key, value in (("permutation.n_repeats", 2), ("shap.permutation_max_rows", 20), ("logging.report", "false")):
        arguments += ["--set", f"{key}={value}"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert f"into run {run.info.run_id}: status ok" in result.output
    summary = json.loads(
        Path(MlflowClient().download_artifacts(run.info.run_id, "explain/summary.json", str(tmp_path))).read_text()
    )
    assert summary["shap"]["algorithm"] == "exact", "10 columns: exact Shapley values"
    assert "only predicts" in summary["shap"]["reason"]
    assert MlflowClient().get_run(run.info.run_id).data.metrics["permutation_importance/bmi"] > 0


def test_evaluator_explains_a_custom_pyfunc_model(diabetes, tracking_uri):
    ridge, X, y = diabetes
    with mlflow.start_run():
        signature = infer_signature(X, ridge.predict(X.to_numpy()))
        info = mlflow.pyfunc.log_model(name="model", python_model=RidgeModel(ridge), signature=signature)
        result = mlflow.models.evaluate(
            info.model_uri,
            X.assign(y=y),
            targets="y",
            model_type="regressor",
            evaluators=["explain"],
            evaluator_config={"explain": FAST},
        )
    assert result.metrics["explain/baseline_score.r2"] == pytest.approx(ridge.score(X.to_numpy(), y))
    assert result.metrics["shap_mean_abs/bmi"] > 0
