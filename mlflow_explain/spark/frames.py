"""Validation rows in a Spark DataFrame: checks on the driver, model layout on the executors."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import NumericType

from ..config import ValidationConfig
from ..data import ValidationData, load_validation_data
from ..errors import InvalidInputError
from ..models import detect_task
from ..results import Task

_PROBE_ROWS = 1000  # rows pulled onto the driver to check the columns against the model
_MAX_LABELS = 10_000  # distinct target values read back to check a classifier's labels
_ALL_ROWS = ValidationConfig(path=None, target=None, max_rows=sys.maxsize, random_state=0)
_ROW_BITS = 33  # row ids are partition << 33 | position, as Spark's monotonically_increasing_id


@dataclasses.dataclass
class SparkData:
    """Checked validation rows: the Spark DataFrame, its target column, feature names, size and task.

    ``target_mean`` is the mean of a numeric target (None for labels).
    """

    frame: DataFrame
    target: str
    feature_names: list[str]
    n_rows: int
    task: Task
    target_mean: float | None = None


def column(name: str):
    """A Spark column by its exact name (dots and spaces included)."""
    return F.col("`" + name.replace("`", "``") + "`")


def check_frame(model: Any, frame: Any, target: str) -> SparkData:
    """Check a Spark DataFrame of validation rows against the model, as the core checks a pandas one.

    Columns, types and an empty frame are checked by the core's own checks on a few rows; the
    whole frame is counted, searched for missing targets and, for classifiers, for unknown labels.

    Raises
    ------
    InvalidInputError
        With the same sentences as the core.
    """
    if not isinstance(frame, DataFrame):
        raise InvalidInputError(f"spark_df must be a pyspark.sql.DataFrame, not {type(frame).__name__}.")
    if not isinstance(target, str):
        raise InvalidInputError("Name the target column of the Spark DataFrame with target=.")
    probe = model_rows(model, frame.limit(_PROBE_ROWS).toPandas(), target)
    target_type = frame.schema[target].dataType
    missing, numeric = column(target).isNull(), isinstance(target_type, NumericType)
    if numeric:
        missing = missing | F.isnan(column(target))
    mean = [F.avg(column(target)).alias("mean")] if numeric else []
    counts = frame.agg(F.count(F.lit(1)).alias("rows"), F.sum(missing.cast("long")).alias("missing"), *mean).first()
    if counts["missing"]:
        raise InvalidInputError(
            f"The target has {counts['missing']} missing (NaN) value(s); drop those rows before explaining."
        )
    labels = probe.y
    if hasattr(model, "classes_"):
        labels = frame.select(target).distinct().limit(_MAX_LABELS).toPandas()[target].to_numpy()
    mean = counts["mean"] if numeric else None
    return SparkData(frame, target, probe.feature_names, int(counts["rows"]), detect_task(model, labels), mean)


def sample_rows(data: SparkData, n_rows: int, seed: int) -> pd.DataFrame:
    """A seeded sample of ``n_rows`` rows (target included) pulled onto the driver."""
    return data.frame.orderBy(F.rand(seed)).limit(n_rows).toPandas()


def model_rows(model: Any, rows: pd.DataFrame, target: str) -> ValidationData:
    """Rows of a pandas chunk of the Spark frame in the model's layout, with their targets."""
    return load_validation_data(model, rows, target=target, config=_ALL_ROWS)


def row_ids(partition: int, start: int, n_rows: int) -> np.ndarray:
    """Stable ids of ``n_rows`` rows of a partition starting at position ``start``."""
    return (np.int64(partition) << _ROW_BITS) + np.arange(start, start + n_rows, dtype=np.int64)
