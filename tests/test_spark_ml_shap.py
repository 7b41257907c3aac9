"""SHAP values of pyspark.ml models on local Spark: exact TreeSHAP and linear SHAP per partition, the rest sampled."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import shap

from mlflow_explain import load_config
from mlflow_explain.shap_table import ROW, base_value_column, shap_columns, value_column

pytest.importorskip("pyspark")  # the modules below import it
pytestmark = [pytest.mark.spark, pytest.mark.slow]  # each Spark fit and job takes seconds

from pyspark.ml import Pipeline
from pyspark.ml.classification import (
    GBTClassifier,
    LinearSVC,
    LogisticRegression,
    MultilayerPerceptronClassifier,
    RandomForestClassifier,
)
from pyspark.ml.feature import OneHotEncoder, StringIndexer, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.regression import DecisionTreeRegressor, GBTRegressor, LinearRegression
from pyspark.sql import functions as F

from mlflow_explain.spark import explain
from mlflow_explain.spark.frames import check_ml_frame
from mlflow_explain.spark.ml_model import spark_ml_model
from mlflow_explain.spark.ml_shap import slot_explainer
from mlflow_explain.spark.ml_shap_job import spark_ml_shap_values
from mlflow_explain.spark.spark_trees import UnsupportedTreeError, spark_tree_explainer

NUMERIC = ["x1", "x2", "x3", "x4"]


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """Generated rows: an id, four numeric columns and a colour; a binary label, a 3-class label and a numeric
    target."""
    rng = np.random.RandomState(0)
    n_rows = 400
    frame = pd.DataFrame(rng.randn(n_rows, 4), columns=NUMERIC)
    frame["id"] = [f"r{k:03d}" for k in range(n_rows)]
    frame["color"] = rng.choice(["red", "green", "blue"], n_rows)
    red = (frame["color"] == "red").to_numpy()
    signal = frame["x1"] + 0.5 * frame["x2"] ** 2 - 0.5 * frame["x3"] + 1.5 * red
    frame["label"] = (signal + 0.3 * rng.randn(n_rows) > 0.8).astype(float)
    frame["species"] = np.digitize(signal, [0.0, 1.2]).astype(float)
    frame["target"] = 3 * frame["x1"] + frame["x2"] ** 2 + 2 * red + 0.1 * rng.randn(n_rows)
    return frame


@pytest.fixture(scope="module")
def frame(spark, rows):
    return spark.createDataFrame(rows).repartition(2).cache()


QUIET = {"max_rows": 50, "background_rows": 400, "local_rows": 1}


def explain_rows(model, frame, target: str, shap_output: str | None = None, row_id: str | None = None, **options):
    """``spark_ml_shap_values`` of a fitted pyspark.ml model on ``frame``, and the model's reading."""
    data = check_ml_frame(spark_ml_model(model), frame, target, row_id)
    config = load_config({"shap": {**QUIET, **options}}).shap
    return data.ml, spark_ml_shap_values(data, config, shap_output)


def every_row(model, frame, shap_output: str, output_column: str) -> pd.DataFrame:
    """The explained rows written to ``shap_output`` beside the model's ``output_column`` for the same row ids."""
    written = pd.read_parquet(shap_output)
    scored = model.transform(frame.withColumn(ROW, F.monotonically_increasing_id()))
    vector = output_column != "prediction"
    output = vector_to_array(output_column) if vector else F.array(F.col(output_column))
    expected = scored.select(ROW, output.alias("expected")).toPandas()
    return written.merge(expected, on=ROW, validate="one_to_one")


def stacked(table: pd.DataFrame, features: list[str], outputs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(values (n, features, outputs), base values (n, outputs)) of explained rows in shap_values.parquet's layout."""
    values = np.stack([table[shap_columns(features, [output])].to_numpy() for output in outputs], axis=2)
    return values, table[[base_value_column(output) for output in outputs]].to_numpy()


@pytest.mark.parametrize(
    ("estimator", "target", "output_column", "space", "kind"),
    [
        (
            lambda: RandomForestClassifier(numTrees=15, maxDepth=5, seed=0),
            "label",
            "probability",
            "probability",
            "binary",
        ),
        (lambda: GBTClassifier(maxIter=15, maxDepth=3, seed=0), "label", "rawPrediction", "margin", "binary"),
        (
            lambda: GBTRegressor(maxIter=15, maxDepth=3, seed=0, labelCol="target"),
            "target",
            "prediction",
            "prediction",
            None,
        ),
        (
            lambda: RandomForestClassifier(numTrees=10, maxDepth=4, seed=0, labelCol="species"),
            "species",
            "probability",
            "probability",
            "multiclass",
        ),
    ],
    ids=["random-forest-classifier", "gbt-classifier", "gbt-regressor", "random-forest-3-classes"],
)
def test_tree_shap_of_every_row_is_shap_tree_explainer_and_adds_up_to_the_model_output(
    spark, frame, tmp_path, estimator, target, output_column, space, kind
):
    model = Pipeline(stages=[VectorAssembler(inputCols=NUMERIC, outputCol="features"), estimator()]).fit(frame)
    output = str(tmp_path / "shap")
    ml, result = explain_rows(model, frame, target, shap_output=output)
    assert (result.algorithm, result.output_space) == ("tree", space)
    assert ml.task.kind == (kind or "regression") and result.output_names == (
        [str(c) for c in (ml.task.class_names or ml.task.classes)] if kind else ["prediction"]
    )
    table = every_row(model, frame, output, output_column)
    assert len(table) == result.total_rows == 400
    values, base = stacked(table, NUMERIC, result.output_names)
    raw = table[[value_column(name) for name in NUMERIC]].to_numpy()
    reference = shap.TreeExplainer(model.stages[-1])  # shap's own reader of Spark trees
    expected = np.asarray(reference.shap_values(raw, check_additivity=False))
    expected = expected if expected.ndim == 3 else expected[:, :, None]
    np.testing.assert_allclose(values[:, :, -expected.shape[2] :], expected, atol=1e-10)
    np.testing.assert_allclose(base[0, -expected.shape[2] :], np.atleast_1d(reference.expected_value), atol=1e-10)
    model_output = np.stack(table["expected"].to_numpy())
    assert np.abs(values.sum(axis=1) + base - model_output).max() < 1e-6
    assert result.max_additivity_error < 1e-6
    np.testing.assert_allclose(result.mean_abs(), np.abs(values).mean(axis=0), rtol=1e-9)
    assert len(result.values) == 50 and set(result.row_positions) <= set(table[ROW])
    assert result.mean_abs()[NUMERIC.index("x1")].max() > result.mean_abs()[NUMERIC.index("x4")].max()


def test_one_hot_slots_are_explained_by_their_binary_splits_and_summed_onto_the_raw_column(spark, frame):
    stages = [
        StringIndexer(inputCol="color", outputCol="color_index"),
        OneHotEncoder(inputCols=["color_index"], outputCols=["color_slots"]),
        VectorAssembler(inputCols=[*NUMERIC, "color_slots"], outputCol="features"),
        RandomForestClassifier(numTrees=15, maxDepth=5, seed=0),
    ]
    model = Pipeline(stages=stages).fit(frame)
    with pytest.raises(NotImplementedError, match="CategoricalSplit"):  # the one-hot slots are categorical splits
        shap.TreeExplainer(model.stages[-1])
    ml, result = explain_rows(model, frame, "label", max_rows=400)
    assert ml.vector_columns == [*NUMERIC, "color", "color"] and result.feature_names == [*NUMERIC, "color"]
    assert result.algorithm == "tree" and result.max_additivity_error < 1e-6
    assert result.mean_abs()[:, 1].argsort()[-2:].tolist() in ([0, 4], [4, 0])  # x1 and the red colour lead
    by_row = dict(zip(result.row_positions, range(len(result.row_positions)), strict=True))
    scored = model.transform(frame.withColumn(ROW, F.monotonically_increasing_id()))
    probability = scored.select(ROW, vector_to_array("probability").alias("p")).toPandas()
    position = probability[ROW].map(by_row).to_numpy()
    predicted = result.values.sum(axis=1) + result.base_values
    np.testing.assert_allclose(predicted[position], np.stack(probability["p"].to_numpy()), atol=1e-6)


def test_a_categorical_split_of_more_than_two_values_is_refused_by_the_tree_reader(frame):
    stages = [
        StringIndexer(inputCol="color", outputCol="color_index"),
        VectorAssembler(inputCols=[*NUMERIC, "color_index"], outputCol="features"),
        GBTRegressor(maxIter=5, maxDepth=3, seed=0, labelCol="target"),
    ]
    predictor = Pipeline(stages=stages).fit(frame).stages[-1]
    with pytest.raises(UnsupportedTreeError, match="categorical split of feature 4 with 3 categories"):
        spark_tree_explainer(predictor, classifier=False)


@pytest.mark.parametrize(
    ("estimator", "target", "output_column"),
    [
        (lambda: LogisticRegression(maxIter=100), "label", "rawPrediction"),
        (lambda: LogisticRegression(maxIter=100, labelCol="species"), "species", "rawPrediction"),
        (lambda: LinearSVC(maxIter=20), "label", "rawPrediction"),
        (lambda: LinearRegression(labelCol="target"), "target", "prediction"),
    ],
    ids=["logistic-binary", "logistic-multinomial", "linear-svm", "linear-regression"],
)
def test_linear_shap_is_shap_linear_explainer_over_the_background(
    spark, frame, tmp_path, estimator, target, output_column
):
    model = Pipeline(stages=[VectorAssembler(inputCols=NUMERIC, outputCol="features"), estimator()]).fit(frame)
    output = str(tmp_path / "shap")
    _, result = explain_rows(model, frame, target, shap_output=output)  # the background is every row (400)
    predictor = model.stages[-1]
    assert (result.algorithm, result.n_background) == ("linear", 400)
    assert result.output_space == ("prediction" if target == "target" else "margin")
    table = every_row(model, frame, output, output_column)
    values, base = stacked(table, NUMERIC, result.output_names)
    raw = table[[value_column(name) for name in NUMERIC]].to_numpy()
    if hasattr(predictor, "coefficientMatrix"):  # logistic regression: one row per class, or one for two classes
        coefficients, intercepts = predictor.coefficientMatrix.toArray(), predictor.interceptVector.toArray()
    else:
        coefficients, intercepts = predictor.coefficients.toArray()[None, :], np.array([predictor.intercept])
    reference = shap.LinearExplainer(
        (coefficients.squeeze(0) if len(coefficients) == 1 else coefficients, intercepts.squeeze()),
        shap.maskers.Independent(raw, max_samples=len(raw)),  # every row, as the job's background
    )
    expected = np.asarray(reference.shap_values(raw))
    expected = expected if expected.ndim == 3 else expected[:, :, None]
    np.testing.assert_allclose(values[:, :, -expected.shape[2] :], expected, atol=1e-9)
    assert np.abs(values.sum(axis=1) + base - np.stack(table["expected"].to_numpy())).max() < 1e-6


def test_a_model_without_an_exact_explainer_is_explained_model_agnostically_on_a_sample_and_says_so(
    spark, frame, caplog
):
    network = MultilayerPerceptronClassifier(layers=[3, 5, 2], maxIter=50, seed=0)
    model = Pipeline(stages=[VectorAssembler(inputCols=NUMERIC[:3], outputCol="features"), network]).fit(frame)
    with caplog.at_level(logging.WARNING, logger="mlflow_explain"):
        _, result = explain_rows(model, frame, "label", row_id="id", permutation_max_rows=3, background_rows=8)
    assert result.algorithm == "exact" and result.n_explained == 3 and result.n_background == 8
    assert "MultilayerPerceptronClassificationModel is neither a Spark tree model nor a linear one" in result.reason
    assert "model-agnostic exact Shapley values on a driver-side sample of 3 of 400 rows" in result.reason
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len([w for w in warnings if "SHAP" in w]) == 1 and "driver-side sample of 3 of 400 rows" in warnings[-1]
    assert result.max_additivity_error < 1e-6  # exact Shapley values add up to the probability
    ids = frame.withColumn(ROW, F.monotonically_increasing_id()).select(ROW, "id", "x1").toPandas().set_index(ROW)
    np.testing.assert_array_equal(ids.loc[result.row_positions, "x1"], result.data["x1"])  # row ids point at rows
    np.testing.assert_array_equal(result.index_labels, ids.loc[result.row_positions, "id"])  # so do the user's ids


def test_an_algorithm_the_model_does_not_fit_is_one_clear_sentence(frame):
    model = Pipeline(
        stages=[
            VectorAssembler(inputCols=NUMERIC, outputCol="features"),
            DecisionTreeRegressor(labelCol="target", maxDepth=3),
        ]
    ).fit(frame)
    ml = spark_ml_model(model)
    columns = {"prediction": "prediction"}
    with pytest.raises(ValueError, match="shap.algorithm is 'linear' but DecisionTreeRegressionModel is no Spark"):
        slot_explainer(ml.predictor, ml.task, columns, "linear", background=lambda: None)
    assert slot_explainer(ml.predictor, ml.task, columns, "permutation", lambda: None) == (
        "shap.algorithm is 'permutation'"
    )


def test_a_one_hot_random_forest_pipeline_run_logs_its_shap_per_raw_column(tracking_uri, rows, frame, tmp_path):
    stages = [
        StringIndexer(inputCol="color", outputCol="color_index"),
        OneHotEncoder(inputCols=["color_index"], outputCols=["color_slots"]),
        VectorAssembler(inputCols=[*NUMERIC, "color_slots"], outputCol="features"),
        RandomForestClassifier(numTrees=10, maxDepth=4, seed=0),
    ]
    model = Pipeline(stages=stages).fit(frame)
    config = {"shap": QUIET, "permutation": {"enabled": False}, "compare": {"enabled": False}}
    output = str(tmp_path / "every_row")
    explanation = explain(model, frame, "label", config=config, shap_output=output, row_id="id")

    assert explanation.status == "ok", explanation.errors
    assert explanation.task.kind == "binary" and explanation.feature_names == [*NUMERIC, "color"]
    assert explanation.shap.algorithm == "tree" and "exact TreeSHAP" in explanation.shap.reason
    every = pd.read_parquet(output)
    assert len(every) == 400 and every["index"].is_unique
    by_x1 = rows.set_index("x1")["id"]
    np.testing.assert_array_equal(every["index"], by_x1.loc[every["value:x1"]])  # each row's own id
    np.testing.assert_array_equal(explanation.shap.index_labels, by_x1.loc[explanation.shap.data["x1"]])
    run = mlflow.get_run(mlflow.last_active_run().info.run_id)
    metrics = run.data.metrics
    assert metrics["explain/rows_shap"] == 400 and metrics["explain/shap_max_additivity_error"] < 1e-6
    for j, name in enumerate([*NUMERIC, "color"]):  # the positive class, over every row
        assert metrics[f"shap_mean_abs/{name}"] == pytest.approx(explanation.shap.mean_abs()[j, 1], rel=1e-9)
    summary = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="explain/summary.json")
    said = json.loads(Path(summary).read_text())["shap"]
    assert said["algorithm"] == "tree" and said["reason"] == explanation.shap.reason
