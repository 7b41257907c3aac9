"""Columns by name: a logged model's signature orders a data file; nothing naming them is a clear error."""

from __future__ import annotations

import lightgbm
import mlflow
import pytest
from click.testing import CliRunner
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import Ridge

import mlflow_explain
from mlflow_explain import InvalidInputError
from mlflow_explain.triggers.cli import main

FAST = {"permutation": {"n_repeats": 2}, "shap": {"max_rows": 50, "dependence_top_k": 1}, "logging": {"report": False}}
CLI_FAST = ["--set", "permutation.n_repeats=2", "--set", "shap.max_rows=50", "--set", "logging.report=false"]


@pytest.fixture(scope="module")
def diabetes():
    """A ridge regression fitted on an array (no feature_names_in_), its validation frame and true R^2."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge(alpha=0.1).fit(X.iloc[:300].to_numpy(), y.iloc[:300])
    X_val, y_val = X.iloc[300:], y.iloc[300:]
    return model, X_val, y_val, model.score(X_val.to_numpy(), y_val)


def _log(model, X, signed: bool) -> tuple[str, str]:
    """Log the model (with the signature of the frame ``X`` if ``signed``): its URI and run id."""
    signature = infer_signature(X, model.predict(X.to_numpy())) if signed else None
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle", signature=signature)
    return info.model_uri, run.info.run_id


def _reversed_file(X, y, tmp_path):
    path = tmp_path / "val.csv"
    X[list(reversed(X.columns))].assign(progression=y).to_csv(path, index=False)
    return path


def test_cli_orders_a_file_by_the_models_signature(diabetes, tracking_uri, tmp_path):
    model, X, y, r2 = diabetes
    uri, run_id = _log(model, X, signed=True)
    data = _reversed_file(X, y, tmp_path)
    arguments = ["explain", "--model-uri", uri, "--data", str(data), "--target", "progression", *CLI_FAST]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    metrics = MlflowClient().get_run(run_id).data.metrics
    assert metrics["explain/baseline_score.r2"] == pytest.approx(r2), "the columns reached the model in its order"
    assert metrics["permutation_importance/bmi"] > 0.05 and "shap_mean_abs/s5" in metrics


def test_evaluator_orders_a_frame_by_the_models_signature(diabetes, tracking_uri):
    model, X, y, r2 = diabetes
    uri, _ = _log(model, X, signed=True)
    with mlflow.start_run():
        result = mlflow.models.evaluate(
            uri,
            X[list(reversed(X.columns))].assign(y=y),
            targets="y",
            model_type="regressor",
            evaluators=["explain"],
            evaluator_config={"explain": FAST},
        )
    assert result.metrics["explain/baseline_score.r2"] == pytest.approx(r2)
    assert result.artifacts["explain/importances.csv"].content["feature"].nunique() == X.shape[1]


def test_a_file_nothing_names_is_one_clear_error(diabetes, tracking_uri, tmp_path):
    model, X, y, r2 = diabetes
    uri, _ = _log(model, X, signed=False)
    data = _reversed_file(X, y, tmp_path)
    result = CliRunner().invoke(main, ["explain", "--model-uri", uri, "--data", str(data), "--target", "progression"])
    assert result.exit_code == 2, result.output
    assert "the order of the file's columns (s6, s5, s4, s3, s2, ...) cannot be checked" in result.output
    assert "signature" in result.output and "Traceback" not in result.output
    with pytest.raises(InvalidInputError, match="cannot be checked"):
        mlflow_explain.explain(model, str(data), target="progression", config=FAST)


def test_unnamed_columns_in_the_models_order_still_work(diabetes, tracking_uri, tmp_path):
    model, X, y, r2 = diabetes
    from_array = mlflow_explain.explain(model, X.to_numpy(), y, config=FAST)
    assert from_array.status == "ok" and from_array.feature_names == [f"x{i}" for i in range(X.shape[1])]
    assert from_array.permutation.baseline_scores["r2"] == pytest.approx(r2)
    positional = tmp_path / "positional.csv"
    X.set_axis(from_array.feature_names, axis=1).assign(progression=y).to_csv(positional, index=False)
    from_file = mlflow_explain.explain(model, str(positional), target="progression", config=FAST)
    assert from_file.status == "ok" and from_file.permutation.baseline_scores["r2"] == pytest.approx(r2)


def test_lightgbm_renamed_features_match_the_users_frame(tracking_uri):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1).fit(X.iloc[:400], y.iloc[:400])
    assert model.feature_name_[0] == "mean_radius" and X.columns[0] == "mean radius"
    X_val, y_val = X.iloc[400:], y.iloc[400:]
    shuffled = X_val[list(reversed(X.columns))]
    explanation = mlflow_explain.explain(model, shuffled, y_val, config=FAST)
    assert explanation.status == "ok", explanation.errors
    assert explanation.feature_names == list(X.columns), "the user's names, in the model's order"
    assert explanation.permutation.baseline_scores["accuracy"] == pytest.approx(model.score(X_val, y_val))
    assert set(explanation.importances["feature"]) == set(X.columns)
    assert explanation.shap.algorithm == "tree"
