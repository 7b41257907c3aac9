"""Reading fitted pyspark.ml models: predictor, raw feature columns, task and output columns, clear refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlflow_explain import InvalidInputError
from mlflow_explain.results import Task

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.spark, pytest.mark.slow]  # fitting Spark models takes seconds each

from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression, RandomForestClassifier
from pyspark.ml.clustering import KMeans
from pyspark.ml.feature import PCA, OneHotEncoder, StandardScaler, StringIndexer, VectorAssembler
from pyspark.ml.regression import GBTRegressor, LinearRegression

from mlflow_explain.spark.ml_model import is_spark_ml_model, spark_ml_model

NUMERIC = ["x0", "x1", "x2"]


@pytest.fixture(scope="module")
def rows(spark):
    """120 generated rows: three numeric columns, a colour, a 0/1 label, a string label and a numeric target."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    frame = pd.DataFrame(X, columns=NUMERIC).assign(
        colour=rng.choice(["red", "green", "blue"], size=120),
        label=(X[:, 0] + X[:, 1] > 0).astype(float),
        species=np.where(X[:, 2] > 0.5, "setosa", np.where(X[:, 2] < -0.5, "virginica", "versicolor")),
        target=2 * X[:, 0] - X[:, 2],
    )
    return spark.createDataFrame(frame)


def assembler(columns=NUMERIC, output="features"):
    return VectorAssembler(inputCols=list(columns), outputCol=output)


def test_random_forest_pipeline_reads_a_binary_classifier_of_the_raw_columns(rows):
    model = Pipeline(stages=[assembler(), RandomForestClassifier(labelCol="label", numTrees=3, seed=0)]).fit(rows)
    read = spark_ml_model(model)
    assert is_spark_ml_model(model) and is_spark_ml_model(model.stages[-1])
    assert read.predictor is model.stages[-1]
    assert read.feature_columns == NUMERIC and read.vector_columns == NUMERIC
    assert read.task == Task("binary", classes=(0.0, 1.0), class_names=("0", "1"))
    assert (read.prediction_column, read.probability_column, read.raw_prediction_column) == (
        "prediction",
        "probability",
        "rawPrediction",
    )
    assert read.output_columns == ["prediction", "probability"] and read.label_column is None


def test_gbt_regressor_pipeline_reads_a_regression(rows):
    model = Pipeline(stages=[assembler(), GBTRegressor(labelCol="target", maxIter=3, seed=0)]).fit(rows)
    read = spark_ml_model(model)
    assert read.task == Task("regression")
    assert read.feature_columns == NUMERIC
    assert (read.probability_column, read.raw_prediction_column) == (None, None)


def test_indexed_label_names_the_classes_and_one_hot_slots_map_to_their_column(rows):
    stages = [
        StringIndexer(inputCol="species", outputCol="species_index"),
        StringIndexer(inputCol="colour", outputCol="colour_index"),
        OneHotEncoder(inputCols=["colour_index"], outputCols=["colour_onehot"]),
        assembler(["x0", "colour_onehot", "x1"], "assembled"),
        StandardScaler(inputCol="assembled", outputCol="features"),
        LogisticRegression(labelCol="species_index", maxIter=20),
    ]
    model = Pipeline(stages=stages).fit(rows)
    read = spark_ml_model(model)
    assert read.task.kind == "multiclass"
    assert sorted(read.task.classes) == ["setosa", "versicolor", "virginica"]
    assert list(read.task.classes) == list(model.stages[0].labelsArray[0])  # in index order
    assert read.label_column == "species"
    assert read.feature_columns == ["x0", "colour", "x1"]
    assert read.vector_columns == ["x0", "colour", "colour", "x1"]  # three colours, the last dropped


def test_linear_regression_alone_on_an_assembled_column_is_refused_with_the_pipeline_to_use(rows):
    model = LinearRegression(labelCol="target").fit(assembler().transform(rows))
    with pytest.raises(InvalidInputError, match="explain the PipelineModel that assembles it"):
        spark_ml_model(model)


@pytest.mark.parametrize(
    ("stages", "message"),
    [  # stage factories: Spark objects need the session, which starts after collection
        (lambda: [assembler(), KMeans(k=2, seed=0)], "is a clustering model"),
        (lambda: [assembler()], "has feature stages but no classifier or regressor"),
        (
            lambda: [
                assembler(output="raw"),
                PCA(k=2, inputCol="raw", outputCol="features"),
                LinearRegression(labelCol="target"),
            ],
            "feature stage PCAModel mixes its input columns",
        ),
    ],
    ids=["clustering", "no predictor", "PCA"],
)
def test_unsupported_models_get_one_sentence_naming_what_works(rows, stages, message):
    model = Pipeline(stages=stages()).fit(rows)
    with pytest.raises(InvalidInputError, match=message) as raised:
        spark_ml_model(model)
    assert "mlflow_explain explains pyspark.ml classifiers and regressors" in str(raised.value)


def test_objects_that_are_not_spark_models_are_told_apart():
    from sklearn.linear_model import LinearRegression as SklearnLinearRegression

    assert not is_spark_ml_model(SklearnLinearRegression())
    with pytest.raises(InvalidInputError, match="not a fitted pyspark.ml model"):
        spark_ml_model(SklearnLinearRegression())


def test_the_local_explain_points_spark_models_to_the_spark_engine(rows, tmp_path):
    import mlflow.pyfunc
    import mlflow.spark

    import mlflow_explain

    model = Pipeline(stages=[assembler(), RandomForestClassifier(labelCol="label", numTrees=3, seed=0)]).fit(rows)
    X, y = rows.select(*NUMERIC).toPandas(), rows.select("label").toPandas()["label"].to_numpy()
    mlflow.spark.save_model(model, str(tmp_path / "model"), pip_requirements=["pyspark"])
    for handed in (model, mlflow.pyfunc.load_model(str(tmp_path / "model"))):
        with pytest.raises(InvalidInputError, match=r"explain it with mlflow_explain\.spark\.explain\(model, spark_df"):
            mlflow_explain.explain(handed, X, y)
