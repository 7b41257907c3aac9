"""SHAP values of a Spark ML model on every row: its exact explainer broadcast, TreeSHAP or linear SHAP per partition.

The model's own ``transform`` assembles each row's features vector and writes its output columns
(distributed, as the user's pipeline does it); each partition then explains its rows' vectors with
the :class:`~mlflow_explain.spark.ml_shap.SlotExplainer` read on the driver, sums the vector's
slots back onto the raw columns and measures, row by row, the gap between the values and the
output column they add up to. Models with no exact explainer go to the model-agnostic path
(``ml_agnostic.py``) on a driver-side sample.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark import TaskContext
from pyspark.broadcast import Broadcast
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..config import ShapConfig
from ..models import output_names
from ..results import ShapResult
from ..shap_table import shap_table
from .frames import SparkData, column, row_ids
from .ml_agnostic import model_agnostic_shap, output_array
from .ml_shap import SlotExplainer, raw_column_membership, raw_column_values, slot_explainer
from .shap_job import ADDITIVITY_ERROR, spark_shap_result, table_schema

logger = logging.getLogger(__name__)

_FEATURES = "__mlflow_explain_features"  # the predictor's features vector, as an array of doubles
_OUTPUT = "__mlflow_explain_output"  # the model's output column the values add up to, as an array of doubles


def spark_ml_shap_values(data: SparkData, config: ShapConfig, shap_output: str | None = None) -> ShapResult:
    """SHAP values of every row of ``data`` for a fitted pyspark.ml model, per raw feature column.

    Tree models get exact TreeSHAP and linear models linear SHAP, both on the executors; the mean
    |SHAP| and the largest additivity gap cover every row, a seeded sample of ``config.max_rows``
    rows is kept for the plots. Any other model is explained model-agnostically on a driver-side
    sample (said at WARNING and in the result's reason).

    Parameters
    ----------
    data : SparkData
        Validation rows holding the raw feature columns of the pyspark.ml model ``data.ml``.
    config : ShapConfig
    shap_output : str, default=None
        Parquet path receiving the explained rows in the layout of ``shap_values.parquet``.

    Returns
    -------
    ShapResult
        A ``SparkShapResult`` for the exact paths.
    """
    ml = data.ml
    transformed = ml.model.transform(data.frame)
    features = ml.predictor.getFeaturesCol()
    columns = {"probability": ml.probability_column, "margin": ml.raw_prediction_column}
    columns["prediction"] = ml.prediction_column
    background = functools.partial(_background_features, transformed, features, config)
    chosen = slot_explainer(ml.predictor, data.task, columns, config.algorithm, background)
    if isinstance(chosen, str):
        return model_agnostic_shap(data, config, chosen, shap_output)
    logger.info("SHAP of %s on Spark: %s", type(ml.predictor).__name__, chosen.reason)
    rows = transformed.select(
        *map(column, data.feature_names),
        *([] if data.row_id is None else [column(data.row_id)]),
        vector_to_array(column(features)).alias(_FEATURES),
        output_array(transformed, chosen.output_column).alias(_OUTPUT),
    )
    job = _Job(
        data.feature_names,
        output_names(data.task),
        raw_column_membership(ml.vector_columns, data.feature_names),
        config.check_additivity,
        data.row_id,
    )
    handle = data.frame.sparkSession.sparkContext.broadcast(chosen)
    try:
        schema = table_schema(data.frame.schema, job.feature_names, job.outputs, data.row_id)
        explained = rows.mapInPandas(_explain_partition(handle, job), schema)
        return spark_shap_result(
            explained,
            job.feature_names,
            job.outputs,
            config,
            shap_output,
            algorithm=chosen.algorithm,
            reason=chosen.reason,
            output_space=chosen.output_space,
            n_background=chosen.n_background,
        )
    finally:
        handle.unpersist()


def _background_features(transformed: DataFrame, features: str, config: ShapConfig) -> np.ndarray:
    """The features vectors of a seeded sample of ``shap.background_rows`` rows, on the driver."""
    sample = transformed.select(vector_to_array(column(features)).alias(_FEATURES))
    sample = sample.orderBy(F.rand(config.random_state)).limit(config.background_rows).toPandas()
    if sample.empty:
        raise ValueError("shap.background_rows is 0, but a linear model's SHAP values need background rows")
    return np.stack(sample[_FEATURES].to_numpy())


@dataclasses.dataclass(frozen=True)
class _Job:
    """What each executor needs, besides the broadcast explainer, to explain its batches."""

    feature_names: list[str]  # the raw feature columns
    outputs: list[str]
    membership: np.ndarray  # (n_slots, n_raw): which raw column each slot of the features vector comes from
    check_additivity: bool
    row_id: str | None  # the user's row id column, written as ``index``


def _explain_partition(handle: Broadcast, job: _Job):
    def explain(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        explainer: SlotExplainer = handle.value
        partition, start = TaskContext.get().partitionId(), 0
        for batch in batches:
            if len(batch) == 0:
                continue
            values, base = explainer.explain(np.stack(batch[_FEATURES].to_numpy()))
            gaps = np.full(len(batch), np.nan)
            if job.check_additivity:
                gaps = np.abs(values.sum(axis=1) + base - np.stack(batch[_OUTPUT].to_numpy())).max(axis=1)
            table = shap_table(
                row_ids(partition, start, len(batch)),
                batch[job.feature_names],
                raw_column_values(values, job.membership),
                base,
                job.outputs,
                None if job.row_id is None else batch[job.row_id].to_numpy(),
            )
            yield table.assign(**{ADDITIVITY_ERROR: gaps})
            start += len(batch)

    return explain
