"""The Spark engine in local[2]: same numbers as the pandas engines and scikit-learn, same run layout."""

from __future__ import annotations

import re

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, mean_squared_error, r2_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import mlflow_explain
from mlflow_explain import InvalidInputError, load_config
from mlflow_explain.methods.permutation import permutation_importance
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task
from mlflow_explain.output import artifacts
from mlflow_explain.triggers.cli import main

pytest.importorskip("pyspark")  # the modules below import it
pytestmark = [pytest.mark.spark, pytest.mark.slow]  # a JVM starts once, then each Spark job takes seconds

from mlflow_explain.spark import explain
from mlflow_explain.spark.frames import SparkData, check_frame, model_rows, sample_rows
from mlflow_explain.spark.permutation_job import spark_permutation_importance
from mlflow_explain.spark.shap_job import spark_shap_values
from mlflow_explain.spark.statistics import permutation_importance_partitions, plan_permutation
from tests.helpers import mixed_frame, mixed_pipeline

REGRESSION_SCORERS = ["r2", "neg_mean_squared_error", "neg_mean_absolute_error"]
CLASSIFICATION_SCORERS = ["accuracy", "neg_log_loss"]
QUIET = {"compare": {"enabled": False}, "shap": {"dependence_top_k": 1, "local_rows": 1}}


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = X.assign(target=y)
    model = GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0).fit(X, y)
    return frame, model


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True, as_frame=True)
    return X.assign(label=y)


def partitions(data: SparkData, model) -> list[tuple]:
    """The Spark frame's partitions, in order, as (X, y) in the model's layout."""
    from pyspark.sql.functions import spark_partition_id

    collected = data.frame.withColumn("_partition", spark_partition_id()).toPandas()
    chunks = [rows.drop(columns="_partition") for _, rows in collected.groupby("_partition", sort=True)]
    return [(rows.X, rows.y) for rows in (model_rows(model, chunk, data.target) for chunk in chunks)]


def run_permutation(spark_frame, model, target, **options):
    data = check_frame(model, spark_frame, target)
    plan = plan_permutation(model, data.feature_names, **options)
    handle = spark_frame.sparkSession.sparkContext.broadcast(model)
    try:
        return data, plan, spark_permutation_importance(handle, data, plan)
    finally:
        handle.unpersist()


def test_spark_permutation_equals_the_partitioned_pandas_engine_and_sklearn_scores(spark, diabetes):
    frame, model = diabetes
    spark_frame = spark.createDataFrame(frame).repartition(3)
    data, plan, result = run_permutation(
        spark_frame, model, "target", scoring=REGRESSION_SCORERS, n_repeats=3, random_state=7
    )
    pieces = partitions(data, model)
    assert len(pieces) == 3 and sum(len(y) for _, y in pieces) == len(frame)
    reference = permutation_importance_partitions(model, pieces, plan)
    for scorer in REGRESSION_SCORERS:
        np.testing.assert_allclose(result.importances[scorer], reference.importances[scorer], rtol=1e-9, atol=1e-12)
        assert result.baseline_scores[scorer] == pytest.approx(reference.baseline_scores[scorer], rel=1e-12)
    assert result.importances["r2"].shape == (10, 3) and result.n_rows == len(frame)
    assert result.mean("r2")[data.feature_names.index("s5")] > 0.05  # a real signal, not noise
    X, y = frame.drop(columns="target"), frame["target"].to_numpy()
    predicted = model.predict(X)
    assert result.baseline_scores["r2"] == pytest.approx(r2_score(y, predicted), rel=1e-9)
    assert result.baseline_scores["neg_mean_squared_error"] == pytest.approx(
        -mean_squared_error(y, predicted), rel=1e-9
    )
    assert result.baseline_scores["neg_mean_absolute_error"] == pytest.approx(
        -mean_absolute_error(y, predicted), rel=1e-9
    )


@pytest.mark.parametrize("max_samples", [1.0, 0.5])
def test_one_partition_is_sklearn_permutation_importance(diabetes, max_samples):
    frame, model = diabetes
    X, y = frame.drop(columns="target"), frame["target"].to_numpy()
    plan = plan_permutation(
        model,
        list(X.columns),
        scoring=REGRESSION_SCORERS,
        n_repeats=4,
        random_state=3,
        max_samples=max_samples,
        memory_budget_mb=0.2,
    )
    ours = permutation_importance_partitions(model, [(X, y)], plan)
    expected = sklearn_permutation_importance(
        model, X, y, scoring=REGRESSION_SCORERS, n_repeats=4, random_state=3, max_samples=max_samples
    )
    for scorer in REGRESSION_SCORERS:
        np.testing.assert_allclose(ours.importances[scorer], expected[scorer].importances, rtol=1e-9, atol=1e-12)
    assert ours.n_predict_calls > 2  # the small memory budget split the copies over several calls


def test_spark_classification_on_one_partition_is_sklearn(spark, wine):
    X, y = wine.drop(columns="label"), wine["label"].to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    _, _, result = run_permutation(
        spark.createDataFrame(wine).coalesce(1),
        model,
        "label",
        scoring=CLASSIFICATION_SCORERS,
        n_repeats=3,
        random_state=0,
    )
    expected = sklearn_permutation_importance(model, X, y, scoring=CLASSIFICATION_SCORERS, n_repeats=3, random_state=0)
    for scorer in CLASSIFICATION_SCORERS:
        np.testing.assert_allclose(result.importances[scorer], expected[scorer].importances, rtol=1e-9, atol=1e-12)
    assert result.baseline_scores["accuracy"] == pytest.approx(accuracy_score(y, model.predict(X)))
    assert result.baseline_scores["neg_log_loss"] == pytest.approx(-log_loss(y, model.predict_proba(X)), rel=1e-9)


def test_one_partition_equals_the_local_engine_for_log_loss_and_feature_groups(spark, wine):
    X, y = wine.drop(columns="label"), wine["label"].to_numpy()
    model = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0).fit(X, y)
    options = dict(
        scoring=["neg_log_loss", "accuracy"],
        n_repeats=2,
        random_state=3,
        feature_groups={"phenols": ["total_phenols", "flavanoids"]},
    )
    _, _, result = run_permutation(spark.createDataFrame(wine).coalesce(1), model, "label", **options)
    local = permutation_importance(model, X, y, **options)
    assert result.feature_names == local.feature_names and "phenols" in result.feature_names
    for scorer in options["scoring"]:
        assert result.baseline_scores[scorer] == local.baseline_scores[scorer]
        np.testing.assert_array_equal(result.importances[scorer], local.importances[scorer])
    assert result.mean("neg_log_loss")[result.feature_names.index("proline")] > 0.01  # a real signal


@pytest.mark.parametrize("scoring", ["roc_auc", ["r2", "balanced_accuracy"]])
def test_a_scorer_that_is_not_a_sum_over_rows_is_a_clear_error_on_spark(diabetes, scoring):
    _, model = diabetes
    refused = "roc_auc" if scoring == "roc_auc" else "balanced_accuracy"
    with pytest.raises(InvalidInputError, match=f"'{refused}' cannot be computed from per-partition sums on Spark"):
        plan_permutation(model, ["age", "bmi"], scoring=scoring)


def test_shap_values_parquet_has_one_schema_on_both_engines(spark, tmp_path):
    X, y = mixed_frame(200)
    X = X.drop(columns="city")  # Spark has no categorical type
    encode = ColumnTransformer([("color", OneHotEncoder(), ["color"])], remainder="passthrough")
    model = Pipeline([("encode", encode), ("model", HistGradientBoostingClassifier(max_iter=10))]).fit(X, y)
    config = load_config({"shap": {"max_rows": 50, "background_rows": 20}}).shap
    local = shap_values(model, X, detect_task(model, y), feature_names=list(X.columns), max_rows=50)
    data = check_frame(model, spark.createDataFrame(X.assign(y=y)), "y")
    handle = spark.sparkContext.broadcast(model)
    sampled = spark_shap_values(model, handle, data, config, shap_output=str(tmp_path / "spark_rows"))
    handle.unpersist()
    files = {"local": tmp_path / "local.parquet", "spark sample": tmp_path / "sample.parquet"}
    artifacts._write_parquet(files["local"], artifacts._shap_table(local))  # what a run logs
    artifacts._write_parquet(files["spark sample"], artifacts._shap_table(sampled))
    files["shap_output"] = sorted((tmp_path / "spark_rows").glob("part-*.parquet"))[0]
    schemas = {name: _parquet_columns(path) for name, path in files.items()}
    assert [name for name, *_ in schemas["local"]][:3] == ["row", "value:income", "value:color"]
    assert [name for name, *_ in schemas["local"]][-1] == "base_value:1"
    assert schemas["shap_output"] == schemas["local"] == schemas["spark sample"]


def _parquet_columns(path) -> list[tuple[str, str, str]]:
    """Name, physical and logical type of every column of a Parquet file."""
    schema = pq.read_metadata(path).schema
    return [
        (column.name, column.physical_type, str(column.logical_type))
        for column in map(schema.column, range(len(schema)))
    ]


def test_spark_run_logs_what_the_core_logs_and_the_same_shap_values(spark, wine, tracking_uri, tmp_path):
    X, y = wine.drop(columns="label"), wine["label"].to_numpy()
    model = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0).fit(X, y)
    config = {**QUIET, "permutation": {"n_repeats": 2}}
    output = str(tmp_path / "shap_rows")
    with mlflow.start_run() as spark_run:
        explanation = explain(model, spark.createDataFrame(wine), "label", config=config, shap_output=output)
    with mlflow.start_run() as core_run:
        core = mlflow_explain.explain(model, wine, target="label", config=config)
    assert explanation.status == "ok", explanation.errors

    rows = pd.read_parquet(output).sort_values("row")
    assert len(rows) == len(wine) and rows["row"].is_unique
    expected = shap_values(model, X, detect_task(model, y), feature_names=list(X.columns), max_rows=len(X))
    for k, output_name in enumerate(expected.output_names):
        values = rows[[f"shap:{output_name}:{name}" for name in X.columns]].to_numpy()
        np.testing.assert_allclose(values, expected.values[:, :, k], rtol=0, atol=1e-9)
        np.testing.assert_allclose(rows[f"base_value:{output_name}"], expected.base_values[:, k], rtol=0, atol=1e-9)
    np.testing.assert_allclose(rows[[f"value:{name}" for name in X.columns]].to_numpy(), X.to_numpy())
    np.testing.assert_allclose(explanation.shap.mean_abs(), expected.mean_abs(), rtol=1e-9)
    np.testing.assert_allclose(core.shap.mean_abs(), expected.mean_abs(), rtol=1e-9)

    client = mlflow.MlflowClient()
    spark_metrics = client.get_run(spark_run.info.run_id).data.metrics
    core_metrics = client.get_run(core_run.info.run_id).data.metrics
    assert set(spark_metrics) == set(core_metrics)
    for key in (key for key in core_metrics if key.startswith("shap_mean_abs")):
        assert spark_metrics[key] == pytest.approx(core_metrics[key], rel=1e-9)
    assert spark_metrics["explain/rows_shap"] == len(wine)
    assert client.get_run(spark_run.info.run_id).data.tags["mlflow_explain.status"] == "ok"
    assert _artifact_layout(spark_run.info.run_id) == _artifact_layout(core_run.info.run_id)


def test_a_native_lightgbm_booster_on_spark_is_the_core_classifier(spark, tracking_uri, tmp_path):
    import lightgbm

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6].set_axis([f"f{i}" for i in range(6)], axis=1)
    booster = lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(X, label=y), 20)
    frame = X.assign(label=y)
    output = str(tmp_path / "shap_rows")
    config = {**QUIET, "permutation": {"n_repeats": 2}}
    with mlflow.start_run():
        explanation = explain(booster, spark.createDataFrame(frame), "label", config=config, shap_output=output)
    assert explanation.status == "ok", explanation.errors
    assert explanation.task.kind == "binary" and explanation.shap.output_space == "margin"
    rows = pd.read_parquet(output).sort_values("row")
    contributions = booster.predict(X, pred_contrib=True)
    np.testing.assert_allclose(rows[[f"shap:1:{name}" for name in X.columns]], contributions[:, :-1], atol=1e-9)


def test_linear_shap_values_equal_the_core_with_the_shared_background(spark, diabetes, tmp_path):
    frame, _ = diabetes
    X, y = frame.drop(columns="target"), frame["target"].to_numpy()
    model = Ridge(alpha=0.5).fit(X, y)
    data = check_frame(model, spark.createDataFrame(frame), "target")
    config = load_config({"shap": {"background_rows": 50, "max_rows": 100}}).shap
    output = str(tmp_path / "linear_rows")
    handle = spark.sparkContext.broadcast(model)
    result = spark_shap_values(model, handle, data, config, shap_output=output)
    handle.unpersist()
    assert result.algorithm == "linear" and result.n_explained == len(frame) and len(result.values) == 100
    background = model_rows(model, sample_rows(data, 50, 0), "target").X
    expected = shap_values(model, X, data.task, feature_names=list(X.columns), max_rows=len(X), background=background)
    rows = pd.read_parquet(output).sort_values("row")
    np.testing.assert_allclose(
        rows[[f"shap:prediction:{name}" for name in X.columns]].to_numpy(), expected.values[:, :, 0], rtol=0, atol=1e-9
    )
    np.testing.assert_allclose(result.mean_abs(), expected.mean_abs(), rtol=1e-9)
    assert result.max_additivity_error < 1e-9


def test_cli_explains_a_logged_pipeline_on_mixed_columns_with_spark(spark, tracking_uri, tmp_path):
    X, y = mixed_frame(300)
    model = mixed_pipeline(HistGradientBoostingClassifier(max_iter=20, random_state=0)).fit(X, y)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
    data_path = tmp_path / "validation.parquet"
    X.assign(y=y).to_parquet(data_path)
    arguments = [
        "explain",
        "--spark",
        "--model-uri",
        f"runs:/{run.info.run_id}/model",
        "--data",
        str(data_path),
        "--set",
        "spark.master=local[2]",
        "--set",
        "permutation.n_repeats=2",
        "--set",
        "shap.dependence_top_k=0",
        "--set",
        "shap.local_rows=0",
        "--set",
        "logging.report=false",
    ]
    result = CliRunner().invoke(main, [*arguments, "--target", "y"])
    assert result.exit_code == 0, result.output
    logged = mlflow.MlflowClient().get_run(run.info.run_id).data
    assert logged.metrics["explain/rows_validation"] == len(X) and logged.tags["mlflow_explain.status"] == "ok"
    assert {"permutation_importance/color", "shap_mean_abs/color"} <= set(logged.metrics)
    assert "shap_mean_abs.1/color" not in logged.metrics, "a binary classifier logs one set of SHAP metrics"
    assert logged.metrics["shap_mean_abs/color"] > logged.metrics["shap_mean_abs/noise"]  # color drives the target
    wrong = CliRunner().invoke(main, [*arguments, "--target", "price"])
    assert wrong.exit_code == 2 and "'price' is not in the validation data" in wrong.output


def test_bad_spark_input_is_one_clear_sentence(spark, diabetes):
    frame, model = diabetes
    spark_frame = spark.createDataFrame(frame)
    with pytest.raises(InvalidInputError, match="cannot be computed from per-partition sums"):
        explain(model, spark_frame, "target", config={"permutation": {"scoring": "explained_variance"}})
    with pytest.raises(InvalidInputError, match="must be a pyspark.sql.DataFrame"):
        explain(model, frame, "target")
    with_nan = spark.createDataFrame(frame.assign(target=frame["target"].where(frame.index != 5)))
    with pytest.raises(InvalidInputError, match="1 missing"):
        explain(model, with_nan, "target")


def _artifact_layout(run_id: str) -> set[str]:
    """Artifact paths, with row numbers (positions in pandas, row ids in Spark) left out."""
    from mlflow_explain.publish.tracking import artifact_uris

    return {re.sub(r"row\d+", "row#", path) for path in artifact_uris(run_id, "explain")}
