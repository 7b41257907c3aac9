"""pyspark.ml models through mlflow_explain.spark.explain in local[2]: permutation importance equal to the same
permutations scored on one machine, the model's own task and classes, the leakage check, clear refusals."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.metrics import accuracy_score, log_loss, r2_score

from mlflow_explain import InvalidInputError
from mlflow_explain.methods.permutation_batches import draw_seed, draw_shuffles

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.spark, pytest.mark.slow]  # each Spark job takes seconds

from pyspark.ml import Pipeline
from pyspark.ml.classification import RandomForestClassifier
from pyspark.ml.clustering import KMeans
from pyspark.ml.feature import StringIndexer, VectorAssembler
from pyspark.ml.regression import GBTRegressor
from pyspark.sql.functions import spark_partition_id

from mlflow_explain.spark import explain

REPEATS = 3


def partitioned(spark, rows: pd.DataFrame):
    """Rows as a Spark frame of two cached partitions: the same partitions in every plan that reads it (a frame
    straight from pandas may be read as one partition or two), as the reference needs."""
    frame = spark.createDataFrame(rows).repartition(2).cache()
    frame.count()
    return frame


ONLY_PERMUTATION = {"shap": {"enabled": False}, "compare": {"enabled": False}, "permutation": {"n_repeats": REPEATS}}
CANCER_FEATURES = ["mean radius", "mean texture", "mean smoothness", "worst concavity"]


def random_forest(features: list[str]) -> Pipeline:
    return Pipeline(
        stages=[VectorAssembler(inputCols=features, outputCol="features"), RandomForestClassifier(numTrees=8, seed=0)]
    )


@pytest.fixture(scope="module")
def cancer(spark):
    """Breast cancer rows (300, four columns, one with a space in its name) and a fitted RF PipelineModel."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = partitioned(spark, X[CANCER_FEATURES].assign(label=y.astype(float)).iloc[:300])
    return frame, random_forest(CANCER_FEATURES).fit(frame)


@pytest.fixture(scope="module")
def diabetes(spark):
    """Diabetes rows (442, ten columns) and a fitted GBT regressor PipelineModel."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = partitioned(spark, X.assign(target=y))
    stages = [
        VectorAssembler(inputCols=list(X.columns), outputCol="features"),
        GBTRegressor(labelCol="target", maxIter=10, maxDepth=3, seed=0),
    ]
    return frame, list(X.columns), Pipeline(stages=stages).fit(frame)


def permuted_predictions(model, frame, features: list[str], target: str, random_state: int = 0) -> pd.DataFrame:
    """The model's outputs on every partition's rows and on their permuted copies, built on the driver.

    The reference: each partition's collected rows permuted with the shuffles scikit-learn draws (partition
    ``p`` seeded with the seed drawn from ``random_state`` plus ``p``), transformed in one call; columns
    ``unit``, ``repeat`` (-1 for the unpermuted rows), the target, ``prediction`` and ``probability``.
    """
    collected = frame.withColumn("_partition", spark_partition_id()).toPandas()
    seed, blocks = draw_seed(random_state), []
    for partition, rows in collected.groupby("_partition", sort=True):
        rows = rows.drop(columns="_partition").reset_index(drop=True)
        positions, shuffles = draw_shuffles(seed + partition, len(rows), REPEATS, 1.0)
        blocks.append(rows.assign(unit=-1, repeat=-1))
        sampled = rows.iloc[positions].reset_index(drop=True)
        for unit, name in enumerate(features):
            for repeat, order in enumerate(shuffles):
                copy = sampled.copy()
                copy[name] = sampled[name].to_numpy()[order]
                blocks.append(copy.assign(unit=unit, repeat=repeat))
    copies = frame.sparkSession.createDataFrame(pd.concat(blocks, ignore_index=True))
    predicted = model.transform(copies).toPandas()
    if "probability" in predicted:
        predicted["probability"] = [np.asarray(vector.toArray()) for vector in predicted["probability"]]
    return predicted


def reference_importances(predicted: pd.DataFrame, target: str, score) -> np.ndarray:
    """Baseline score minus each copy's score, shape (features, repeats), by a scikit-learn metric."""
    scores = {key: score(group) for key, group in predicted.groupby(["unit", "repeat"])}
    baseline = scores.pop((-1, -1))
    n_units = 1 + max(unit for unit, _ in scores)
    return np.array([[baseline - scores[(unit, repeat)] for repeat in range(REPEATS)] for unit in range(n_units)])


def test_random_forest_pipeline_permutation_equals_the_same_permutations_on_one_machine(tracking_uri, cancer):
    frame, model = cancer
    config = {**ONLY_PERMUTATION, "permutation": {"n_repeats": REPEATS, "scoring": ["accuracy", "neg_log_loss"]}}
    explanation = explain(model, frame, "label", config=config)

    assert explanation.task.kind == "binary" and explanation.task.classes == (0.0, 1.0)
    assert explanation.feature_names == CANCER_FEATURES and explanation.n_rows == 300
    result = explanation.permutation
    assert result.n_rows == 300 and result.scorer_names == ["accuracy", "neg_log_loss"]
    predicted = permuted_predictions(model, frame, CANCER_FEATURES, "label")
    accuracy = reference_importances(predicted, "label", lambda g: accuracy_score(g["label"], g["prediction"]))
    np.testing.assert_allclose(result.importances["accuracy"], accuracy, rtol=0, atol=1e-12)
    loss = reference_importances(
        predicted, "label", lambda g: -log_loss(g["label"], np.stack(g["probability"]), labels=[0.0, 1.0])
    )
    np.testing.assert_allclose(result.importances["neg_log_loss"], loss, rtol=0, atol=1e-9)
    assert np.abs(accuracy).max() > 0  # the permutations moved the score: the comparison is not of zeros

    run = mlflow.get_run(mlflow.last_active_run().info.run_id)
    assert run.data.tags["mlflow_explain.status"] == "ok"
    assert run.data.metrics["permutation_importance/mean radius"] == pytest.approx(accuracy[0].mean(), abs=1e-12)


def test_gbt_regressor_pipeline_permutation_is_r2_as_on_one_machine(tracking_uri, diabetes):
    frame, features, model = diabetes
    explanation = explain(model, frame, "target", config=ONLY_PERMUTATION)

    assert explanation.task.kind == "regression"
    result = explanation.permutation
    assert result.scorer_names == ["r2"]
    predicted = permuted_predictions(model, frame, features, "target")
    expected = reference_importances(predicted, "target", lambda g: r2_score(g["target"], g["prediction"]))
    np.testing.assert_allclose(result.importances["r2"], expected, rtol=0, atol=1e-9)
    assert result.mean("r2")[features.index("bmi")] > 0.05  # the strongest diabetes feature matters


def test_indexed_string_labels_are_the_classes_and_score_the_predicted_labels(tracking_uri, spark):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    species = np.where(X[:, 0] > 0.4, "setosa", np.where(X[:, 0] < -0.4, "virginica", "versicolor"))
    frame = partitioned(spark, pd.DataFrame(X, columns=["x0", "x1"]).assign(species=species))
    stages = [
        StringIndexer(inputCol="species", outputCol="label"),
        VectorAssembler(inputCols=["x0", "x1"], outputCol="features"),
        RandomForestClassifier(numTrees=5, seed=0),
    ]
    model = Pipeline(stages=stages).fit(frame)
    explanation = explain(model, frame, "species", config=ONLY_PERMUTATION)

    assert explanation.task.kind == "multiclass"
    assert sorted(explanation.task.classes) == ["setosa", "versicolor", "virginica"]
    labels = np.asarray(model.stages[0].labelsArray[0])
    predicted = permuted_predictions(model, frame, ["x0", "x1"], "species")
    expected = reference_importances(
        predicted, "species", lambda g: accuracy_score(g["species"], labels[g["prediction"].astype(int)])
    )
    np.testing.assert_allclose(explanation.permutation.importances["accuracy"], expected, rtol=0, atol=1e-12)
    with pytest.raises(InvalidInputError, match="pass target='species'"):
        explain(model, frame, "label", config=ONLY_PERMUTATION)


def test_leakage_check_names_a_leaked_column_and_stays_quiet_on_a_healthy_model(tracking_uri, spark, cancer):
    frame, healthy = cancer
    healthy_findings = explain(healthy, frame, "label", config=ONLY_PERMUTATION).diagnostics
    assert "target_leakage" not in {finding.kind for finding in healthy_findings}

    rng = np.random.default_rng(0)
    rows = frame.toPandas()
    leaky = partitioned(spark, rows.assign(refund=rows["label"] * 100 + rng.normal(0, 1, len(rows))))
    leaky_model = random_forest([*CANCER_FEATURES, "refund"]).fit(leaky)
    findings = explain(leaky_model, leaky, "label", config=ONLY_PERMUTATION).diagnostics
    leaks = [finding for finding in findings if finding.kind == "target_leakage"]
    assert [finding.features for finding in leaks] == [("refund",)]


def test_unsupported_models_and_mismatched_frames_are_refused_in_one_sentence(tracking_uri, cancer):
    frame, model = cancer
    clustering = Pipeline(stages=[VectorAssembler(inputCols=CANCER_FEATURES, outputCol="features"), KMeans(k=2)])
    with pytest.raises(InvalidInputError, match="is a clustering model; mlflow_explain explains pyspark.ml"):
        explain(clustering.fit(frame), frame, "label", config=ONLY_PERMUTATION)
    with pytest.raises(InvalidInputError, match=r"has no column\(s\) 'mean radius'"):
        explain(model, frame.drop("mean radius"), "label", config=ONLY_PERMUTATION)
    with pytest.raises(InvalidInputError, match="'r2' does not score a classifier"):
        explain(model, frame, "label", config={**ONLY_PERMUTATION, "permutation": {"scoring": "r2"}})
    with pytest.raises(InvalidInputError, match=r"label\(s\) the classifier was not trained on \(2.0\)"):
        explain(model, frame.replace(1.0, 2.0, subset=["label"]), "label", config=ONLY_PERMUTATION)
