"""The layout of ``shap_values.parquet``, in one place: written by the local artifacts and by Spark.

One row per explained row: ``row`` (its position in the data the user passed, before any
sampling, or on Spark its row id), ``index`` (its index label, when that data was a pandas
DataFrame), ``value:<feature>`` (its raw values), then per model output
``shap:<output>:<feature>`` (its SHAP values) and ``base_value:<output>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

ROW = "row"
INDEX = "index"


def value_column(feature: str) -> str:
    """Column of a feature's raw values."""
    return f"value:{feature}"


def shap_column(output: str, feature: str) -> str:
    """Column of a feature's SHAP values for one model output."""
    return f"shap:{output}:{feature}"


def base_value_column(output: str) -> str:
    """Column of the base value of one model output."""
    return f"base_value:{output}"


def shap_columns(feature_names: Sequence[str], output_names: Sequence[str]) -> list[str]:
    """The SHAP value columns, output by output, in table order."""
    return [shap_column(output, name) for output in output_names for name in feature_names]


def table_columns(feature_names: Sequence[str], output_names: Sequence[str]) -> list[str]:
    """Every column of the table, in order."""
    per_output = [[*shap_columns(feature_names, [output]), base_value_column(output)] for output in output_names]
    return [ROW, *map(value_column, feature_names), *[name for names in per_output for name in names]]


def shap_table(
    row_ids: np.ndarray,
    data: pd.DataFrame,
    values: np.ndarray,
    base_values: np.ndarray,
    output_names: Sequence[str],
    index_labels: np.ndarray | None = None,
) -> pd.DataFrame:
    """The table of explained rows.

    Parameters
    ----------
    row_ids : ndarray of shape (n_rows,)
        What ``row`` holds for each explained row.
    data : DataFrame of shape (n_rows, n_features)
        The rows' raw values, one column per feature (object columns are written as strings).
    values : ndarray of shape (n_rows, n_features, n_outputs)
        SHAP values.
    base_values : ndarray of shape (n_rows, n_outputs)
    output_names : sequence of str
    index_labels : ndarray of shape (n_rows,), default=None
        The rows' index labels in the user's DataFrame (written as text unless they are numbers).

    Returns
    -------
    DataFrame
        Columns ``row``, ``index`` (with ``index_labels``), ``value:<feature>``..., then per output
        ``shap:<output>:<feature>``... and ``base_value:<output>``.
    """
    columns: dict[str, Any] = {ROW: np.asarray(row_ids)}
    if index_labels is not None:
        columns[INDEX] = index_column(index_labels)
    for name in data.columns:
        raw = data[name]
        columns[value_column(name)] = raw.astype("string") if raw.dtype == object else raw.to_numpy()
    for k, output in enumerate(output_names):
        for j, name in enumerate(data.columns):
            columns[shap_column(output, name)] = values[:, j, k]
        columns[base_value_column(output)] = base_values[:, k]
    return pd.DataFrame(columns)


def index_column(labels: np.ndarray) -> Any:
    """Index labels as a table column: numbers as they are, anything else as text."""
    labels = np.asarray(labels)
    return labels if labels.dtype.kind in "iufb" else pd.array([str(label) for label in labels], dtype="string")
