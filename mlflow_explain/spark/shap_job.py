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
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, NumericType, StringType, StructField, StructType

from ..config import ShapConfig
from ..methods.shap import MODEL_AGNOSTIC, shap_values
from ..models import output_names
from ..results import ShapResult, Task
from ..shap_table import INDEX, ROW, base_value_column, shap_columns, shap_table, table_columns, value_column
from .frames import SparkData, column, model_rows, row_ids, sample_rows

logger = logging.getLogger(__name__)

ADDITIVITY_ERROR = "_additivity_error"  # additivity gap of the row (or its batch), dropped from the output


@dataclasses.dataclass
class SparkShapResult(ShapResult):
    """SHAP values of a seeded sample of the explained rows, with the mean |SHAP| of all of them.

    ``values``, ``data`` and ``row_positions`` (row ids, see ``frames.row_ids``) hold the sample
    the plots and local explanations are drawn from; ``total_mean_abs`` and ``n_explained`` are
    aggregated by Spark over every explained row.
    """

    total_rows: int = 0
    total_mean_abs: np.ndarray | None = None

    def rows_mean_abs(self) -> np.ndarray:
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
    explained = data.frame.mapInPandas(
        _explain_partition(model_handle, job),
        table_schema(data.frame.schema, job.feature_names, job.outputs, data.row_id),
    )
    return spark_shap_result(
        explained,
        job.feature_names,
        job.outputs,
        config,
        shap_output,
        algorithm=probe.algorithm,
        reason=probe.reason,
        output_space=probe.output_space,
        n_background=probe.n_background,
    )


def spark_shap_result(
    explained: DataFrame,
    feature_names: list[str],
    outputs: list[str],
    config: ShapConfig,
    shap_output: str | None,
    *,
    algorithm: str,
    reason: str,
    output_space: str,
    n_background: int,
) -> SparkShapResult:
    """The result of a SHAP job: mean |SHAP| and the largest additivity gap over every row, a seeded sample kept.

    Parameters
    ----------
    explained : pyspark.sql.DataFrame
        One row per explained row, with the columns of :func:`table_schema` (not yet computed: it is
        persisted here, written to ``shap_output`` when given, aggregated, sampled, then released).
    feature_names, outputs : list of str
    config : ShapConfig
    shap_output : str or None
    algorithm, reason, output_space, n_background
        As ``ShapResult`` holds them.

    Returns
    -------
    SparkShapResult
    """
    explained = explained.persist(StorageLevel.DISK_ONLY)  # on disk: unrolling it in the heap fails at 1M rows
    try:
        if shap_output:
            explained.drop(ADDITIVITY_ERROR).write.parquet(shap_output)
        names = shap_columns(feature_names, outputs)
        totals = explained.agg(
            *[F.avg(F.abs(column(name))) for name in names], F.max(ADDITIVITY_ERROR), F.count(F.lit(1))
        ).first()
        if shap_output:
            logger.info("SHAP values of %d rows written to %s.", totals[-1], shap_output)
        sample = explained.orderBy(F.rand(config.random_state)).limit(config.max_rows).toPandas().sort_values(ROW)
    finally:
        explained.unpersist()
    max_error = totals[-2]
    values = np.stack([sample[shap_columns(feature_names, [output])].to_numpy(dtype=float) for output in outputs], 2)
    data = sample[[value_column(name) for name in feature_names]].set_axis(feature_names, axis=1)
    rng = np.random.RandomState(config.random_state)
    return SparkShapResult(
        values=values,
        base_values=sample[[base_value_column(output) for output in outputs]].to_numpy(dtype=float),
        data=data.reset_index(drop=True),
        feature_names=list(feature_names),
        output_names=list(outputs),
        output_space=output_space,
        algorithm=algorithm,
        reason=reason,
        row_positions=sample[ROW].to_numpy(),
        index_labels=sample[INDEX].to_numpy() if INDEX in sample else None,
        n_background=n_background,
        max_additivity_error=None if max_error is None or np.isnan(max_error) else float(max_error),
        local_positions=np.sort(rng.permutation(len(sample))[: config.local_rows]),
        total_rows=int(totals[-1]),
        total_mean_abs=np.array(totals[: len(names)], dtype=float).reshape(len(outputs), -1).T,
    )


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
    return table.assign(**{ADDITIVITY_ERROR: np.full(len(batch), np.nan if error is None else error)})


def table_schema(
    frame_schema: StructType, feature_names: list[str], outputs: list[str], row_id: str | None = None
) -> StructType:
    """The explained rows' columns as Spark types: row ids, the user's ``row_id`` column as ``index`` (if any), the
    frame's types for raw values, doubles for the rest, and the additivity gap (:data:`ADDITIVITY_ERROR`)."""
    values = {value_column(name): frame_schema[name].dataType for name in feature_names}
    fields = [
        StructField(name, LongType() if name == ROW else values.get(name, DoubleType()), nullable=name in values)
        for name in table_columns(feature_names, outputs)
    ]
    if row_id is not None:  # the user's ids, numbers as they are, anything else as text (shap_table.index_column)
        kind = frame_schema[row_id].dataType
        fields.insert(1, StructField(INDEX, kind if isinstance(kind, NumericType) else StringType(), True))
    return StructType([*fields, StructField(ADDITIVITY_ERROR, DoubleType(), True)])
