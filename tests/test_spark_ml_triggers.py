"""Spark ML models explained after ``fit`` by autolog (beside MLflow's pyspark.ml autolog), the CLI, the evaluator."""

from __future__ import annotations

import json
import logging

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_breast_cancer, load_diabetes

import mlflow_explain
from mlflow_explain.triggers.autolog import autolog as autolog_module
from mlflow_explain.triggers.cli import main

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.spark, pytest.mark.slow]  # a JVM, Spark jobs of seconds each

from pyspark.ml import Pipeline
from pyspark.ml.classification import RandomForestClassifier
from pyspark.ml.feature import StringIndexer, VectorAssembler
from pyspark.ml.regression import GBTRegressor

N_TRAIN = 400  # breast cancer: the other 169 rows are the validation rows
CANCER_COLUMNS = ["mean_radius", "mean_texture", "mean_smoothness", "worst_concavity", "worst_area"]
QUIET = {
    "permutation": {"n_repeats": 2},
    "shap": {"max_rows": 40, "dependence_top_k": 1, "local_rows": 1},
    "compare": {"enabled": False},
}


@pytest.fixture(autouse=True)
def autologs_off_afterwards(monkeypatch):
    """A fresh autolog state for each test; every autolog switched off after it."""
    monkeypatch.setattr(autolog_module, "_state", autolog_module._State())
    yield
    mlflow_explain.autolog(disable=True)
    mlflow.pyspark.ml.autolog(disable=True)


@pytest.fixture(scope="module")
def cancer(spark):
    """Five breast-cancer columns and a 0/1 label: (training frame, validation frame, validation rows in pandas)."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X.columns = [name.replace(" ", "_") for name in X.columns]
    rows = X[CANCER_COLUMNS].assign(label=y.astype(float))
    return spark.createDataFrame(rows[:N_TRAIN]), spark.createDataFrame(rows[N_TRAIN:]), rows[N_TRAIN:]


@pytest.fixture(scope="module")
def diabetes(spark):
    """Diabetes (ten columns, a numeric target): (training frame, validation frame)."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    rows = X.assign(target=y)
    return spark.createDataFrame(rows[:300]), spark.createDataFrame(rows[300:])


def forest_pipeline() -> Pipeline:
    return Pipeline(
        stages=[
            VectorAssembler(inputCols=CANCER_COLUMNS, outputCol="features"),
            RandomForestClassifier(labelCol="label", numTrees=5, maxDepth=3, seed=0),
        ]
    )


def gbt_pipeline(columns: list[str]) -> Pipeline:
    return Pipeline(
        stages=[
            VectorAssembler(inputCols=columns, outputCol="features"),
            GBTRegressor(labelCol="target", maxIter=5, maxDepth=3, seed=0),
        ]
    )


def summary(run_id: str) -> dict:
    return json.loads(open(MlflowClient().download_artifacts(run_id, "explain/summary.json")).read())


def importances(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key.startswith("permutation_importance/")}


def assert_mlflow_model_in(run: mlflow.entities.Run) -> None:
    """mlflow.pyspark.ml.autolog logged the fitted PipelineModel (artifact ``model``, flavor spark) into ``run``."""
    info = mlflow.models.get_model_info(f"runs:/{run.info.run_id}/model")
    assert "spark" in info.flavors and info.run_id == run.info.run_id


def only_run() -> mlflow.entities.Run:
    experiment_id = mlflow.get_experiment_by_name("tests").experiment_id
    (run,) = MlflowClient().search_runs([experiment_id])
    return run


def test_pipeline_fit_beside_mlflow_autolog_first_is_explained_into_mlflows_run(tracking_uri, cancer):
    train, valid, _ = cancer
    mlflow.pyspark.ml.autolog(log_datasets=False)
    mlflow_explain.autolog(config=QUIET)
    mlflow_explain.set_validation_data(valid)
    model = forest_pipeline().fit(train)
    run = only_run()
    assert run.data.tags["mlflow_explain.status"] == "ok"
    assert set(importances(run.data.metrics)) == {f"permutation_importance/{name}" for name in CANCER_COLUMNS}
    assert run.data.params["RandomForestClassifier.numTrees"] == "5", "MLflow's params are in the same run"
    assert_mlflow_model_in(run)
    described = summary(run.info.run_id)
    assert described["task"]["kind"] == "binary" and described["n_rows"] == valid.count()
    mlflow_explain.autolog(disable=True)
    mlflow.pyspark.ml.autolog(disable=True)
    with mlflow.start_run() as direct:  # the same model on the same rows, explained by hand
        mlflow_explain.spark.explain(model, valid, "label", config=QUIET)
    expected = importances(MlflowClient().get_run(direct.info.run_id).data.metrics)
    assert importances(run.data.metrics) == pytest.approx(expected, abs=1e-12)


def test_gbt_regressor_fit_with_explain_autolog_first_is_explained_into_mlflows_run(tracking_uri, diabetes):
    train, valid = diabetes
    columns = [name for name in train.columns if name != "target"]
    rows = valid.toPandas()
    rows.insert(0, "patient", [f"patient-{i}" for i in range(len(rows))])  # the user's row ids, named in the config
    mlflow_explain.autolog(config={**QUIET, "spark": {"row_id": "patient"}})
    mlflow.pyspark.ml.autolog(log_datasets=False)
    mlflow_explain.set_validation_data(valid.sparkSession.createDataFrame(rows))
    gbt_pipeline(columns).fit(train)
    run = only_run()
    assert run.data.tags["mlflow_explain.status"] == "ok"
    assert set(importances(run.data.metrics)) == {f"permutation_importance/{name}" for name in columns}
    assert run.data.params["GBTRegressor.maxIter"] == "5", "MLflow's params are in the same run"
    assert_mlflow_model_in(run)
    assert summary(run.info.run_id)["task"]["kind"] == "regression"
    shap_rows = pd.read_parquet(MlflowClient().download_artifacts(run.info.run_id, "explain/shap_values.parquet"))
    named = rows.set_index("patient").loc[shap_rows["index"]]  # each SHAP row's id points at the user's row
    np.testing.assert_array_equal(shap_rows["value:bmi"].to_numpy(), named["bmi"].to_numpy())


def test_without_validation_data_one_warning_says_why_and_no_run_is_made(tracking_uri, cancer, caplog):
    train, _, _ = cancer
    mlflow_explain.autolog(config=QUIET)
    with caplog.at_level(logging.WARNING, logger="mlflow_explain"):
        forest_pipeline().fit(train)
        forest_pipeline().fit(train)
        StringIndexer(inputCol="label", outputCol="indexed").fit(train)  # a feature stage: not explained, said
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    no_data = [message for message in warnings if "no validation data" in message]
    assert len(no_data) == 1 and "a Spark DataFrame for pyspark.ml fits" in no_data[0]
    (feature_stage,) = [message for message in warnings if "StringIndexer.fit is not explained" in message]
    assert "a feature stage or a model without a label" in feature_stage
    assert mlflow.search_runs(search_all_experiments=True).empty


def test_cli_explains_a_model_logged_with_mlflow_spark_on_spark(tracking_uri, cancer, tmp_path):
    train, valid, rows = cancer
    model = forest_pipeline().fit(train)
    with mlflow.start_run() as run:
        mlflow.spark.log_model(model, "model")
    data = tmp_path / "valid.parquet"
    rows.to_parquet(data, index=False)
    uri = f"runs:/{run.info.run_id}/model"
    settings = ["--set", "permutation.n_repeats=2", "--set", "compare.enabled=false"]

    local = CliRunner().invoke(main, ["explain", "--model-uri", uri, "--data", str(data), "--target", "label"])
    assert local.exit_code == 2 and "is a Spark ML model (PipelineModel)" in local.output and "--spark" in local.output

    result = CliRunner().invoke(
        main, ["explain", "--spark", "--model-uri", uri, "--data", str(data), "--target", "label", *settings]
    )
    assert result.exit_code == 0, result.output
    logged = MlflowClient().get_run(run.info.run_id)
    assert logged.data.tags["mlflow_explain.status"] == "ok"
    assert set(importances(logged.data.metrics)) == {f"permutation_importance/{name}" for name in CANCER_COLUMNS}
    assert summary(run.info.run_id)["n_rows"] == len(rows)

    missing = CliRunner().invoke(
        main, ["explain", "--spark", "--model-uri", uri, "--data", str(data), "--target", "no_such_column"]
    )
    (error,) = [line for line in missing.output.splitlines() if line.startswith("Error")]
    assert missing.exit_code == 2 and "no_such_column" in error, missing.output


def test_evaluator_explains_a_model_logged_with_mlflow_spark(tracking_uri, cancer):
    train, _, rows = cancer
    with mlflow.start_run() as run:
        info = mlflow.spark.log_model(forest_pipeline().fit(train), "model")
        result = mlflow.models.evaluate(
            info.model_uri,
            rows,
            targets="label",
            model_type="classifier",
            evaluators=["explain"],
            evaluator_config={"explain": QUIET},
        )
    assert set(importances(result.metrics)) == {f"permutation_importance/{name}" for name in CANCER_COLUMNS}
    assert "explain/summary.json" in result.artifacts
    logged = MlflowClient().get_run(run.info.run_id)
    assert logged.data.tags["mlflow_explain.status"] == "ok"
    described = summary(run.info.run_id)
    assert described["task"]["kind"] == "binary" and described["n_rows"] == len(rows)


def test_each_estimator_class_gets_its_fit_wrapper_and_switching_off_puts_fit_back():
    from pyspark.ml.base import Estimator

    inherited = Estimator.fit
    mlflow_explain.autolog()

    class Custom(Estimator):  # an estimator defined after autolog()
        def _fit(self, dataset):
            raise NotImplementedError

    assert "fit" in Pipeline.__dict__ and "fit" in RandomForestClassifier.__dict__ and "fit" in Custom.__dict__
    mlflow_explain.autolog(disable=True)
    assert "fit" not in Pipeline.__dict__ and "fit" not in Custom.__dict__ and Estimator.fit is inherited
    assert "__init_subclass__" not in Estimator.__dict__


def test_which_spark_fits_are_explained(spark):
    from mlflow_explain.triggers.autolog import spark_ml

    forest = RandomForestClassifier()
    assert spark_ml.skip_reason(forest, (None,), {}) is None and spark_ml.skip_reason(forest_pipeline(), (), {}) is None
    assert "list of param maps" in spark_ml.skip_reason(forest, (None, [{}, {}]), {})
    assert "feature stage" in spark_ml.skip_reason(StringIndexer(inputCol="a", outputCol="b"), (None,), {})
