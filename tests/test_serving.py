"""log_explainer (API, CLI, explain(log_explainer=True)): the explainer, loaded here, answers like training time."""

from __future__ import annotations

from pathlib import Path

import lightgbm
import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlflow_explain
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task
from mlflow_explain.serving import log_explainer as log_explainer_module
from mlflow_explain.shap_table import table_columns
from mlflow_explain.triggers.cli import main

from .helpers import mixed_frame, mixed_pipeline


def _answer_columns(feature_names, output_names):
    """What an answer holds: the prediction, then shap_values.parquet's columns without the row and its values."""
    return ["prediction", *[c for c in table_columns(feature_names, output_names) if c.startswith(("shap:", "base"))]]


def _totals(answer: pd.DataFrame, output: str) -> np.ndarray:
    shap_part = answer[[column for column in answer if column.startswith(f"shap:{output}:")]]
    return shap_part.sum(axis=1).to_numpy() + answer[f"base_value:{output}"].to_numpy()


def _model_folder(info) -> Path:
    return Path(mlflow.artifacts.download_artifacts(info.model_uri))


@pytest.fixture(scope="module")
def mixed_data():
    X, y = mixed_frame(300)
    return X.astype({"city": str}), y  # JSON and the signature carry text; the explainer restores nothing here


def test_pipeline_explainer_answers_the_training_time_values_per_raw_column(tracking_uri, mixed_data):
    X, y = mixed_data
    model = mixed_pipeline(GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0)).fit(X, y)
    with mlflow.start_run():
        info = mlflow_explain.log_explainer(model, background=X)
    served = mlflow.pyfunc.load_model(info.model_uri)
    answer = served.predict(X.iloc[:40])

    names = list(X.columns)
    assert list(answer.columns) == _answer_columns(names, ["0", "1"])
    np.testing.assert_array_equal(answer["prediction"], model.predict(X.iloc[:40]))
    trained = shap_values(model, X.iloc[:40], detect_task(model, y), feature_names=names, max_rows=40)
    assert trained.algorithm == "tree" and trained.output_space == "margin"
    np.testing.assert_allclose(answer[[f"shap:1:{name}" for name in names]], trained.values[:, :, 1], atol=1e-9)
    np.testing.assert_allclose(_totals(answer, "1"), model.decision_function(X.iloc[:40]), atol=1e-6)
    np.testing.assert_allclose(_totals(answer, "0"), -model.decision_function(X.iloc[:40]), atol=1e-6)

    metadata = served.metadata.metadata["mlflow_explain"]
    assert metadata["algorithm"] == "tree" and metadata["output_space"] == "margin"
    assert metadata["input_types"] == {"income": "double", "color": "string", "age": "double", "city": "string",
                                       "noise": "double"}  # fmt: skip
    assert served.metadata.get_input_schema().input_names() == names
    artifacts = _model_folder(info) / "artifacts"
    assert {path.name for path in artifacts.iterdir()} == {"model.pkl", "explainer.json"}  # TreeSHAP: no background
    assert b"shap" not in (artifacts / "model.pkl").read_bytes()  # the fitted model only, no shap object


def test_linear_model_on_arrays_keeps_the_seeded_background_and_pins_its_requirements(tracking_uri):
    X, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(X[:300], y[:300])
    with mlflow.start_run():
        info = mlflow_explain.log_explainer(model, background=X[:300], config={"shap": {"background_rows": 50}})
    served = mlflow.pyfunc.load_model(info.model_uri)
    rows = pd.DataFrame(X[300:], columns=[f"x{i}" for i in range(10)])
    answer = served.predict(rows)

    np.testing.assert_allclose(_totals(answer, "prediction"), model.predict(X[300:]), atol=1e-6)
    assert served.metadata.metadata["mlflow_explain"]["algorithm"] == "linear"
    folder = _model_folder(info)
    background = pd.read_parquet(folder / "artifacts" / "background.parquet")
    rng = np.random.RandomState(0)  # explain()'s draw from the same rows: the rows' order first, then the background
    rng.permutation(300)
    drawn = np.sort(rng.permutation(300)[:50])
    np.testing.assert_array_equal(background.to_numpy(), X[drawn])
    pinned = (folder / "requirements.txt").read_text().split()
    assert {"scikit-learn", "shap", "mlflow", "pandas"} <= {line.split("==")[0] for line in pinned}
    assert all("==" in line for line in pinned)


def test_a_forest_needs_no_background_and_a_lightgbm_multiclass_adds_up_per_class(tracking_uri):
    X, y = load_iris(return_X_y=True, as_frame=True)
    forest = RandomForestRegressor(n_estimators=10, max_depth=4, random_state=0).fit(X.iloc[:, :3], X.iloc[:, 3])
    booster = lightgbm.LGBMClassifier(n_estimators=15, num_leaves=7, verbose=-1, random_state=0).fit(X, y)
    with mlflow.start_run():
        forest_info = mlflow_explain.log_explainer(forest, name="forest")
        booster_info = mlflow_explain.log_explainer(booster, background=X, name="booster")  # its own names: x_(cm)
    forest_answer = mlflow.pyfunc.load_model(forest_info.model_uri).predict(X.iloc[::10, :3])
    np.testing.assert_allclose(_totals(forest_answer, "prediction"), forest.predict(X.iloc[::10, :3]), atol=1e-6)

    answer = mlflow.pyfunc.load_model(booster_info.model_uri).predict(X.iloc[::10])
    margins = booster.predict(X.iloc[::10], raw_score=True)
    for k in range(3):
        np.testing.assert_allclose(_totals(answer, str(k)), margins[:, k], atol=1e-6)
    np.testing.assert_array_equal(answer["prediction"], booster.predict(X.iloc[::10]))


def test_a_linear_model_without_background_is_refused_with_one_sentence(tracking_uri):
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(mlflow_explain.InvalidInputError, match=r"linear explainer .* needs background rows"):
        mlflow_explain.log_explainer(LinearRegression().fit(X, y))


def test_a_request_with_missing_and_wrongly_typed_columns_is_answered_with_one_sentence(tracking_uri, mixed_data):
    X, y = mixed_data
    model = mixed_pipeline(GradientBoostingClassifier(n_estimators=5, random_state=0)).fit(X, y)
    with mlflow.start_run():
        served = mlflow.pyfunc.load_model(mlflow_explain.log_explainer(model, background=X).model_uri)
    bad = X.iloc[:3].drop(columns=["age", "noise"]).assign(income="high")
    with pytest.raises(MlflowException) as raised:
        served.predict(bad)
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE"
    assert str(raised.value.message) == (
        "The request misses the columns 'age', 'noise' and has wrongly typed columns 'income' (double expected, "
        "str given)."
    )
    integers = X.iloc[:3].assign(age=[30, None, 50])  # JSON numbers and nulls for a double column
    np.testing.assert_allclose(_totals(served.predict(integers), "1"), model.decision_function(integers), atol=1e-6)


def test_explain_with_log_explainer_serves_the_values_it_logged(tracking_uri):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), Ridge()).fit(X.iloc[:300], y.iloc[:300])
    config = {"permutation": {"enabled": False}, "shap": {"background_rows": 40}, "logging": {"report": False}}
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain(model, X.iloc[300:], y.iloc[300:], config=config, log_explainer=True)
    assert explanation.status == "ok" and explanation.shap.algorithm == "linear"
    table = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="explain/shap_values.parquet")
    logged = pd.read_parquet(table)
    rows = logged[[f"value:{name}" for name in X.columns]].set_axis(list(X.columns), axis=1)
    answer = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/explainer").predict(rows)
    columns = [column for column in answer if column != "prediction"]
    np.testing.assert_allclose(answer[columns], logged[columns], atol=1e-9)  # the same background: the same values


def test_cli_logs_the_explainer_of_a_logged_pipeline_into_its_run(tracking_uri, tmp_path, mixed_data):
    X, y = mixed_data
    model = mixed_pipeline(LogisticRegression(max_iter=500)).fit(X, y)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"], serialization_format="pickle")
    X.to_csv(tmp_path / "background.csv", index=False)
    result = CliRunner().invoke(
        main, ["log-explainer", "--model-uri", f"runs:/{run.info.run_id}/model", "--background", "background.csv"]
    )
    assert result.exit_code == 0, result.output
    assert f"into run {run.info.run_id}" in result.output and "mlflow models serve -m models:/" in result.output
    served = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/explainer")
    assert served.metadata.metadata["mlflow_explain"]["algorithm"] == "linear"
    rows = pd.read_csv(tmp_path / "background.csv").iloc[:20]
    np.testing.assert_allclose(_totals(served.predict(rows), "1"), model.decision_function(rows), atol=1e-6)

    missing = CliRunner().invoke(main, ["log-explainer", "--model-uri", f"runs:/{run.info.run_id}/model"])
    assert missing.exit_code == 2 and "needs background rows" in missing.output


def test_a_failing_explainer_log_is_recorded_and_the_explanation_still_logged(tracking_uri, monkeypatch):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge().fit(X, y)

    def full_disk(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(log_explainer_module.Model, "log", full_disk)
    config = {"permutation": {"enabled": False}, "logging": {"report": False}, "serving": {"log_explainer": True}}
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain(model, X, y, config=config)
    assert explanation.status == "partial" and explanation.errors == {"serving": "OSError: No space left on device"}
    logged = mlflow.get_run(run.info.run_id).data
    assert logged.tags["mlflow_explain.status"] == "partial" and "shap_mean_abs/bmi" in logged.metrics
    with pytest.raises(mlflow_explain.ConfigError, match="serving.name"):
        mlflow_explain.load_config({"serving": {"name": "bad/name"}})
