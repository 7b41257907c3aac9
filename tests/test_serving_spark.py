"""Batch explanations on local Spark: ``mlflow.pyfunc.spark_udf`` of a logged explainer."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

import mlflow_explain

from .helpers import mixed_frame, mixed_pipeline

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.integration]  # a JVM and Python workers


def test_spark_udf_of_the_explainer_explains_every_row_as_the_loaded_model_does(spark, tracking_uri):
    X, y = mixed_frame(200)
    X = X.astype({"city": str})
    model = mixed_pipeline(GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0)).fit(X, y)
    with mlflow.start_run():
        info = mlflow_explain.log_explainer(model, background=X)
    udf = mlflow.pyfunc.spark_udf(spark, info.model_uri, env_manager="local")  # its struct type: the output signature
    frame = spark.createDataFrame(X).repartition(2)
    explained = frame.select(udf(*X.columns).alias("answer")).select("answer.*").toPandas()

    assert len(explained) == len(X)
    expected = mlflow.pyfunc.load_model(info.model_uri).predict(frame.toPandas())
    assert list(explained.columns) == list(expected.columns)
    np.testing.assert_allclose(explained.to_numpy(dtype=float), expected.to_numpy(dtype=float), atol=1e-9)
    shap_one = explained[[f"shap:1:{name}" for name in X.columns]].sum(axis=1) + explained["base_value:1"]
    np.testing.assert_allclose(shap_one, model.decision_function(frame.toPandas()), atol=1e-6)
