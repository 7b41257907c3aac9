"""SHAP values of every row on the executors, summarised in Spark, sampled for the plots."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from pyspark import StorageLevel, TaskContext
from pyspark.broadcast import Broadcast
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, NumericType, StringType, StructField, StructType

from ..config import ShapConfig
from ..methods.shap import MODEL_AGNOSTIC, shap_values
from ..models import output_names
from ..results import ShapResult, Task
from ..shap_table import INDEX, ROW, base_value_column, shap_columns, shap_table, table_columns, value_column
from .frames import SparkData, column, model_rows, row_ids, sample_rows

logger = logging.getLogger(__name__)

_ERROR = "_additivity_error"  # largest additivity gap of the row's batch (dropped from the output)


@dataclasses.dataclass
class SparkShapResult(ShapResult):
    """SHAP values of a seeded sample of the explained rows, with the mean |SHAP| of all of them.

    ``values``, ``data`` and ``row_positions`` (row ids, see ``frames.row_ids``) hold the sample
    the plots and local explanations are drawn from; ``total_mean_abs`` and ``n_explained`` are
    aggregated by Spark over every explained row.
    """

    total_rows: int = 0
    total_mean_abs: np.ndarray | None = None

    def mean_abs(self) -> np.ndarray:
        return self.total_mean_abs

    @property
    def n_explained(self) -> int:
        return self.total_rows


@dataclasses.dataclass(frozen=True)
class _Job:
    """What each executor needs, besides the broadcast model, to explain its batches."""

    target: str
    row_id: str | None  # the user's row id column, written as ``index``
    task: Task
    feature_names: list[str]  # the Spark feature columns, in the model's order
    outputs: list[str]
    kwargs: dict  # passed to methods.shap.shap_values


def spark_shap_values(
    model: Any, model_handle: Broadcast, data: SparkData, config: ShapConfig, shap_output: str | None = None
) -> SparkShapResult:
    """SHAP values of every row of ``data`` computed on the executors with ``mapInPandas``.

    The explainer is chosen on the driver exactly as the core chooses it, from a seeded background
    sample that every executor shares (so linear and model-agnostic values do not depend on the
    partitioning); the model reaches each executor once, through ``model_handle``.

    Parameters
    ----------
    model : fitted estimator
    model_handle : Broadcast
        The model broadcast to the executors.
    data : SparkData
    config : ShapConfig
    shap_output : str, default=None
        Parquet path receiving one row per explained row: ``row`` id, ``value:<feature>``,
        ``shap:<output>:<feature>`` and ``base_value:<output>`` (the layout of shap_values.parquet).

    Returns
    -------
    SparkShapResult
    """
    background = sample_rows(data, config.background_rows, config.random_state)
    background_rows = model_rows(model, background, data.target, data.row_id).X
    probe = shap_values(
        model,
        background_rows,
        data.task,
        feature_names=data.feature_names,
        algorithm=config.algorithm,
        max_rows=2,
        permutation_max_rows=2,
        exact_max_features=config.exact_max_features,
        local_rows=0,
        random_state=config.random_state,
        check_additivity=False,
        background=background_rows,
    )
    if probe.algorithm in MODEL_AGNOSTIC:
        logger.warning("SHAP on Spark: the slow model-agnostic explainer runs on every row: %s", probe.reason)
    job = _Job(
        data.target,
        data.row_id,
        data.task,
        data.feature_names,
        output_names(data.task),
        {
            "algorithm": probe.algorithm,
            "background": background_rows,
            "random_state": config.random_state,
            "check_additivity": config.check_additivity,
            "local_rows": 0,
        },
    )
    explained = data.frame.mapInPandas(_explain_partition(model_handle, job), _schema(data, job))
    explained = explained.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        if shap_output:
            explained.drop(_ERROR).write.parquet(shap_output)
            logger.info("SHAP values of %d rows written to %s.", data.n_rows, shap_output)
        names = shap_columns(job.feature_names, job.outputs)
        totals = explained.agg(
            *[F.avg(F.abs(column(name))) for name in names], F.max(_ERROR), F.count(F.lit(1))
        ).first()
        sample = explained.orderBy(F.rand(config.random_state)).limit(config.max_rows).toPandas().sort_values(ROW)
    finally:
        explained.unpersist()
    mean_abs = np.array(totals[: len(names)], dtype=float).reshape(len(job.outputs), -1).T
    return _result(sample, probe, job, mean_abs, totals[-2], int(totals[-1]), config)


def _explain_partition(model_handle: Broadcast, job: _Job):
    def explain(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model, partition, start = model_handle.value, TaskContext.get().partitionId(), 0
        for batch in batches:
            if len(batch) == 0:
                continue
            rows = model_rows(model, batch, job.target, job.row_id)
            result = shap_values(
                model,
                rows.X,
                job.task,
                feature_names=job.feature_names,
                max_rows=len(batch),
                permutation_max_rows=len(batch),
                **job.kwargs,
            )
            yield _output_rows(batch, result, job, row_ids(partition, start, len(batch)))
            start += len(batch)

    return explain


def _output_rows(batch: pd.DataFrame, result: ShapResult, job: _Job, ids: np.ndarray) -> pd.DataFrame:
    """The batch's rows of shap_values.parquet, with the additivity error of the batch."""
    labels = None if job.row_id is None else batch[job.row_id].to_numpy()
    table = shap_table(ids, batch[job.feature_names], result.values, result.base_values, job.outputs, labels)
    error = result.max_additivity_error
    return table.assign(**{_ERROR: np.full(len(batch), np.nan if error is None else error)})


def _schema(data: SparkData, job: _Job) -> StructType:
    """The table's columns as Spark types: row ids, the frame's types for raw values, doubles for the rest."""
    values = {value_column(name): data.frame.schema[name].dataType for name in job.feature_names}
    fields = [
        StructField(name, LongType() if name == ROW else values.get(name, DoubleType()), nullable=name in values)
        for name in table_columns(job.feature_names, job.outputs)
    ]
    if job.row_id is not None:  # the user's ids, numbers as they are, anything else as text (shap_table.index_column)
        kind = data.frame.schema[job.row_id].dataType
        fields.insert(1, StructField(INDEX, kind if isinstance(kind, NumericType) else StringType(), True))
    return StructType([*fields, StructField(_ERROR, DoubleType(), True)])


def _result(
    sample: pd.DataFrame,
    probe: ShapResult,
    job: _Job,
    mean_abs: np.ndarray,
    max_error: float | None,
    n_rows: int,
    config: ShapConfig,
) -> SparkShapResult:
    """The SparkShapResult of the sampled rows."""
    names = job.feature_names
    values = np.stack([sample[shap_columns(names, [output])].to_numpy(dtype=float) for output in job.outputs], axis=2)
    base = sample[[base_value_column(output) for output in job.outputs]].to_numpy(dtype=float)
    data = sample[[value_column(name) for name in names]].set_axis(names, axis=1).reset_index(drop=True)
    rng = np.random.RandomState(config.random_state)
    return SparkShapResult(
        values=values,
        base_values=base,
        data=data,
        feature_names=list(job.feature_names),
        output_names=list(job.outputs),
        output_space=probe.output_space,
        algorithm=probe.algorithm,
        reason=probe.reason,
        row_positions=sample[ROW].to_numpy(),
        index_labels=sample[INDEX].to_numpy() if INDEX in sample else None,
        n_background=probe.n_background,
        max_additivity_error=None if max_error is None or np.isnan(max_error) else float(max_error),
        local_positions=np.sort(rng.permutation(len(sample))[: config.local_rows]),
        total_rows=n_rows,
        total_mean_abs=mean_abs,
    )
