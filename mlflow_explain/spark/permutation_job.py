"""Permutation importance over every row: statistics per partition on the executors, totals in Spark."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark import TaskContext
from pyspark.broadcast import Broadcast
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

from ..results import PermutationResult
from .frames import SparkData, column, model_rows
from .statistics import KEYS, PermutationPlan, combiner


def spark_permutation_importance(model_handle: Broadcast, data: SparkData, plan: PermutationPlan) -> PermutationResult:
    """Permutation importance of the whole Spark DataFrame, each partition shuffling only its own rows.

    Every partition is gathered on its executor, permuted and scored there
    (:meth:`PermutationPlan.statistics`); only its sums and counts leave it, and Spark adds them up.

    Parameters
    ----------
    model_handle : Broadcast
        The model broadcast to the executors.
    data : SparkData
    plan : PermutationPlan
        From :func:`mlflow_explain.spark.statistics.plan_permutation`.

    Returns
    -------
    PermutationResult
        Equal to :func:`mlflow_explain.spark.statistics.permutation_importance_partitions` on the
        same partitions.
    """
    schema = StructType(
        [StructField(name, IntegerType(), False) for name in KEYS]
        + [StructField(name, DoubleType(), False) for name in plan.statistic_names]
    )
    center = data.target_mean or 0.0  # one center of the targets' sums for every partition
    statistics = data.frame.mapInPandas(_partition_statistics(model_handle, plan, data, center), schema)
    totals = statistics.groupBy(*KEYS).agg(
        *[getattr(F, combiner(name))(column(name)).alias(name) for name in plan.statistic_names]
    )
    return plan.result(totals.toPandas())


def _partition_statistics(model_handle: Broadcast, plan: PermutationPlan, data: SparkData, center: float):
    target, row_id = data.target, data.row_id  # not the frame itself: the closure is shipped to the executors

    def statistics(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        chunks = [batch for batch in batches if len(batch)]
        if not chunks:
            return
        model: Any = model_handle.value
        rows = model_rows(model, pd.concat(chunks, ignore_index=True), target, row_id)
        yield plan.statistics(model, rows.X, rows.y, TaskContext.get().partitionId(), center)

    return statistics
