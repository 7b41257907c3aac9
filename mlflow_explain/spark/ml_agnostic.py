"""Model-agnostic SHAP values of a Spark ML model with no exact explainer, on a driver-side sample.

The core's model-agnostic explainers (shap's ExactExplainer up to ``shap.exact_max_features`` raw
columns, else its seeded PermutationExplainer) run on the driver over a seeded sample of
``shap.permutation_max_rows`` rows; every batch of masked rows they evaluate is scored by the
model's own ``transform`` on a small Spark DataFrame of the raw columns.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from ..config import ShapConfig
from ..methods.shap import MODEL_AGNOSTIC, shap_values
from ..models import PredictOnlyClassifier, PredictOnlyRegressor
from ..results import ShapResult
from ..shap_table import ROW, shap_table
from .frames import SparkData, column
from .ml_model import SparkMLModel
from .shap_job import ADDITIVITY_ERROR, table_schema

logger = logging.getLogger(__name__)


class SparkTransformScorer:
    """A Spark ML model scoring pandas rows of its raw columns: one ``model.transform`` of a small DataFrame per call.

    Parameters
    ----------
    ml : SparkMLModel
    spark : SparkSession
    schema : StructType
        The raw feature columns' types in the user's DataFrame.
    """

    def __init__(self, ml: SparkMLModel, spark: SparkSession, schema: StructType):
        self.ml, self.spark, self.schema = ml, spark, schema

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The predicted labels (regressors: the predictions)."""
        predicted = self._column(X, self.ml.prediction_column)[:, 0]
        classes = self.ml.task.classes
        return np.asarray(classes)[predicted.astype(int)] if self.ml.task.is_classification else predicted

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """The rawPrediction column: the positive class's margin for a binary classifier, else one per class."""
        raw = self._column(X, self.ml.raw_prediction_column)
        return raw[:, 1] if raw.shape[1] == 2 else raw

    def _column(self, X: pd.DataFrame, name: str) -> np.ndarray:
        """One output column of the model on the rows ``X``, as (n_rows, width), in the rows' order."""
        scored = self.ml.model.transform(self.spark.createDataFrame(X[self.schema.names], self.schema))
        collected = scored.select(output_array(scored, name).alias("output")).toPandas()["output"]
        return np.stack(collected.to_numpy()).astype(float)


def output_array(frame: DataFrame, name: str) -> Column:
    """A model's output column of ``frame`` as an array of doubles: a vector's slots, or a number alone."""
    if isinstance(frame.schema[name].dataType, VectorUDT):
        return vector_to_array(column(name))
    return F.array(column(name).cast("double"))


class SparkProbabilityScorer(SparkTransformScorer):
    """A scorer of a probabilistic classifier: its probability column as ``predict_proba``."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self._column(X, self.ml.probability_column)


def model_agnostic_shap(data: SparkData, config: ShapConfig, why: str, shap_output: str | None = None) -> ShapResult:
    """Model-agnostic SHAP values of a seeded sample of ``data``'s rows, explained on the driver.

    Parameters
    ----------
    data : SparkData
        Validation rows of the pyspark.ml model ``data.ml``.
    config : ShapConfig
    why : str
        Why the model has no exact explainer (the start of the result's reason).
    shap_output : str, default=None
        Parquet path receiving the explained sample in the layout of ``shap_values.parquet``.

    Returns
    -------
    ShapResult
        ``row_positions`` hold the sampled rows' ids (as ``frames.row_ids`` numbers them).
    """
    wanted = max(config.permutation_max_rows, config.background_rows)
    rows = (
        data.frame.withColumn(ROW, F.monotonically_increasing_id())  # partition << 33 | position, as frames.row_ids
        .orderBy(F.rand(config.random_state))
        .limit(wanted)
        .toPandas()
    )
    scorer = _scorer(data.ml, data.frame.sparkSession, StructType([data.frame.schema[n] for n in data.feature_names]))
    result = shap_values(
        scorer,
        rows[data.feature_names],
        data.task,
        feature_names=data.feature_names,
        algorithm=config.algorithm if config.algorithm in MODEL_AGNOSTIC else "auto",
        max_rows=config.permutation_max_rows,
        permutation_max_rows=config.permutation_max_rows,
        background_rows=config.background_rows,
        exact_max_features=config.exact_max_features,
        local_rows=config.local_rows,
        random_state=config.random_state,
        check_additivity=config.check_additivity,
        warn_model_agnostic=False,  # said below, with the Spark model's name and the sample's size
    )
    reason = (
        f"{why}: model-agnostic {result.algorithm} Shapley values on a driver-side sample of {result.n_explained} "
        f"of {data.n_rows} rows (shap.permutation_max_rows = {config.permutation_max_rows}), {result.n_background} "
        f"background rows, each evaluation a model.transform of a small Spark DataFrame"
    )
    labels = None if data.row_id is None else rows[data.row_id].to_numpy()[result.row_positions]
    result = dataclasses.replace(
        result, reason=reason, row_positions=rows[ROW].to_numpy()[result.row_positions], index_labels=labels
    )
    logger.warning("SHAP of a Spark ML model: %s.", reason)
    if shap_output:
        _write(result, data, shap_output)
    return result


def _write(result: ShapResult, data: SparkData, shap_output: str) -> None:
    """The explained sample written as Parquet with the schema of the exact paths' output."""
    table = shap_table(
        result.row_positions,
        result.data,
        result.values,
        result.base_values,
        result.output_names,
        result.index_labels,
    )
    schema = table_schema(data.frame.schema, result.feature_names, result.output_names, data.row_id)
    written = data.frame.sparkSession.createDataFrame(table.assign(**{ADDITIVITY_ERROR: np.nan}), schema)
    written.drop(ADDITIVITY_ERROR).write.parquet(shap_output)
    logger.info("SHAP values of the %d sampled rows written to %s.", len(table), shap_output)


def _scorer(ml: SparkMLModel, spark: SparkSession, schema: StructType) -> Any:
    """The model as the core's model-agnostic explainers take it: a predict-only classifier or regressor."""
    if not ml.task.is_classification:
        return PredictOnlyRegressor(SparkTransformScorer(ml, spark, schema))
    scorer = SparkProbabilityScorer if ml.probability_column else SparkTransformScorer
    return PredictOnlyClassifier(scorer(ml, spark, schema), np.asarray(ml.task.classes))
