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
from .ml_model import SparkMLModel

_PROBE_ROWS = 1000  # rows pulled onto the driver to check the columns against the model
_MAX_LABELS = 10_000  # distinct target values read back to check a classifier's labels
_ALL_ROWS = ValidationConfig(path=None, target=None, max_rows=sys.maxsize, random_state=0)
_ROW_BITS = 33  # row ids are partition << 33 | position, as Spark's monotonically_increasing_id


@dataclasses.dataclass
class SparkData:
    """Checked validation rows: the Spark DataFrame, its target column, feature names, size and task.

    ``target_mean`` is the mean of a numeric target (None for labels); ``ml`` the reading of a
    ``pyspark.ml`` model (None for a Python model); ``row_id`` the column naming each row, if any.
    """

    frame: DataFrame
    target: str
    feature_names: list[str]
    n_rows: int
    task: Task
    target_mean: float | None = None
    ml: SparkMLModel | None = None
    row_id: str | None = None  # the user's column of row ids, carried into the explained rows (``index``)


def column(name: str):
    """A Spark column by its exact name (dots and spaces included)."""
    return F.col("`" + name.replace("`", "``") + "`")


def check_frame(model: Any, frame: Any, target: str, row_id: str | None = None) -> SparkData:
    """Check a Spark DataFrame of validation rows against the model, as the core checks a pandas one.

    Columns, types and an empty frame are checked by the core's own checks on a few rows; the
    whole frame is counted, searched for missing targets and, for classifiers, for unknown labels.

    Raises
    ------
    InvalidInputError
        With the same sentences as the core.
    """
    _check_arguments(frame, target)
    _check_row_id(frame, target, row_id)
    probe = model_rows(model, frame.limit(_PROBE_ROWS).toPandas(), target, row_id)
    n_rows, mean = _count_targets(frame, target)
    labels = probe.y
    if hasattr(model, "classes_"):
        labels = _distinct_labels(frame, target)
    task = detect_task(model, labels)
    return SparkData(frame, target, probe.feature_names, n_rows, task, mean, row_id=row_id)


def check_ml_frame(ml: SparkMLModel, frame: Any, target: str, row_id: str | None = None) -> SparkData:
    """Check a Spark DataFrame of validation rows against a ``pyspark.ml`` model read by ``spark_ml_model``.

    Raises
    ------
    InvalidInputError
        On a missing column, a target the model reads as a feature or another label column than the
        pipeline indexes, missing targets, or labels the classifier does not know.
    """
    _check_arguments(frame, target)
    if ml.label_column is not None and target != ml.label_column:
        raise InvalidInputError(
            f"The pipeline indexes the label column {ml.label_column!r}; pass target={ml.label_column!r}."
        )
    absent = [name for name in [*ml.feature_columns, target] if name not in frame.columns]
    if absent:
        raise InvalidInputError(
            f"The Spark DataFrame has no column(s) {', '.join(map(repr, absent))}, which the "
            f"{type(ml.predictor).__name__} reads; its feature columns are {ml.feature_columns}."
        )
    if target in ml.feature_columns:
        raise InvalidInputError(f"The target column {target!r} is one of the model's feature columns; name the label.")
    _check_row_id(frame, target, row_id, ml.feature_columns)
    n_rows, mean = _count_targets(frame, target)
    if ml.task.is_classification:
        classes = ml.task.classes
        labels = _distinct_labels(frame, target)
        unknown = sorted({label for label in labels.tolist() if label not in classes}, key=str)
        if unknown:
            raise InvalidInputError(
                f"The target holds label(s) the classifier was not trained on "
                f"({', '.join(map(repr, unknown[:5]))}); its classes are {list(classes)}."
            )
    return SparkData(frame, target, list(ml.feature_columns), n_rows, ml.task, mean, ml, row_id)


def _check_arguments(frame: Any, target: Any) -> None:
    if not isinstance(frame, DataFrame):
        raise InvalidInputError(f"spark_df must be a pyspark.sql.DataFrame, not {type(frame).__name__}.")
    if not isinstance(target, str):
        raise InvalidInputError("Name the target column of the Spark DataFrame with target=.")


def _check_row_id(frame: DataFrame, target: str, row_id: str | None, features: list[str] = ()) -> None:
    """Refuse a row id column that is absent, not a string or is the target or a feature."""
    if row_id is None:
        return
    if not isinstance(row_id, str) or row_id not in frame.columns:
        raise InvalidInputError(
            f"row_id names no column of the Spark DataFrame ({row_id!r}); its columns: {frame.columns}."
        )
    if row_id == target or row_id in features:
        role = "the target" if row_id == target else "a feature the model reads"
        raise InvalidInputError(f"row_id {row_id!r} is {role}; name a column that only identifies the rows.")


def _count_targets(frame: DataFrame, target: str) -> tuple[int, float | None]:
    """The rows of the frame and the mean of a numeric target; raises on missing targets."""
    if target not in frame.columns:
        raise InvalidInputError(f"The Spark DataFrame has no target column {target!r}; its columns: {frame.columns}.")
    numeric = isinstance(frame.schema[target].dataType, NumericType)
    missing = column(target).isNull()
    if numeric:
        missing = missing | F.isnan(column(target))
    mean = [F.avg(column(target)).alias("mean")] if numeric else []
    counts = frame.agg(F.count(F.lit(1)).alias("rows"), F.sum(missing.cast("long")).alias("missing"), *mean).first()
    if counts["missing"]:
        raise InvalidInputError(
            f"The target has {counts['missing']} missing (NaN) value(s); drop those rows before explaining."
        )
    return int(counts["rows"]), counts["mean"] if numeric else None


def _distinct_labels(frame: DataFrame, target: str) -> np.ndarray:
    return frame.select(target).distinct().limit(_MAX_LABELS).toPandas()[target].to_numpy()


def sample_rows(data: SparkData, n_rows: int, seed: int) -> pd.DataFrame:
    """A seeded sample of ``n_rows`` rows (target included) pulled onto the driver."""
    return data.frame.orderBy(F.rand(seed)).limit(n_rows).toPandas()


def model_rows(model: Any, rows: pd.DataFrame, target: str, row_id: str | None = None) -> ValidationData:
    """Rows of a pandas chunk of the Spark frame in the model's layout (the row id column left out), with their
    targets."""
    rows = rows if row_id is None else rows.drop(columns=row_id)
    return load_validation_data(model, rows, target=target, config=_ALL_ROWS)


def row_ids(partition: int, start: int, n_rows: int) -> np.ndarray:
    """Stable ids of ``n_rows`` rows of a partition starting at position ``start``."""
    return (np.int64(partition) << _ROW_BITS) + np.arange(start, start + n_rows, dtype=np.int64)
