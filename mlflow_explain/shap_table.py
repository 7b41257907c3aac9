"""The layout of ``shap_values.parquet``, in one place: written by the local artifacts and by Spark.

One row per explained row: ``row`` (its position in the data the user passed, before any
sampling, or on Spark its row id), ``index`` (its index label, when that data was a pandas
DataFrame), ``value:<feature>`` (its raw values), then per model output
``shap:<output>:<feature>`` (its SHAP values) and ``base_value:<output>``.

Token attributions of a model that reads text add rows in long form after those, one per token
of each explained text (:func:`token_table`): ``row`` and ``index`` as above, ``token_column``
(the text column, null when the texts were passed themselves), ``token_position`` (the token's
place in its text, from 0), ``token``, then per output ``token_value:<output>`` and
``token_base_value:<output>`` (the text's base value: its token values plus it are the model's
output). The SHAP rows have these columns null and the token rows the SHAP ones: select the
token rows with ``table["token"].notna()``. A model whose only input is one text column has no
SHAP values, only token rows.
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


TOKEN = "token"
TOKEN_POSITION = "token_position"
TOKEN_COLUMN = "token_column"


def token_value_column(output: str) -> str:
    """Column of the tokens' attributions to one model output."""
    return f"token_value:{output}"


def token_base_value_column(output: str) -> str:
    """Column of the base value of a token's text, for one model output."""
    return f"token_base_value:{output}"


def token_table(
    row_ids: np.ndarray,
    tokens: Sequence[Sequence[str]],
    values: Sequence[np.ndarray],
    base_values: np.ndarray,
    output_names: Sequence[str],
    column: str | None,
    index_labels: np.ndarray | None = None,
) -> pd.DataFrame:
    """The token rows, in long form: one per token of each explained text.

    Parameters
    ----------
    row_ids : ndarray of shape (n_texts,)
        What ``row`` holds for each explained text.
    tokens : sequence of n_texts sequences of str
        Each text's tokens in reading order.
    values : sequence of n_texts ndarrays of shape (n_tokens_i, n_outputs)
    base_values : ndarray of shape (n_texts, n_outputs)
    output_names : sequence of str
    column : str or None
        The text column (None: the texts were passed themselves).
    index_labels : ndarray of shape (n_texts,), default=None

    Returns
    -------
    DataFrame
        Columns ``row``, ``index`` (with ``index_labels``), ``token_column``, ``token_position``,
        ``token``, then per output ``token_value:<output>`` and ``token_base_value:<output>``.
    """
    counts = np.array([len(text_tokens) for text_tokens in tokens], dtype=np.int64)
    texts = np.repeat(np.arange(len(counts)), counts)
    columns: dict[str, Any] = {ROW: np.asarray(row_ids)[texts]}
    if index_labels is not None:
        columns[INDEX] = index_column(np.asarray(index_labels)[texts])
    columns[TOKEN_COLUMN] = pd.array([column] * len(texts), dtype="string")
    columns[TOKEN_POSITION] = np.concatenate([np.arange(n) for n in counts]) if len(counts) else np.zeros(0, int)
    columns[TOKEN] = pd.array([token for text_tokens in tokens for token in text_tokens], dtype="string")
    stacked = np.concatenate(values) if counts.sum() else np.zeros((0, len(output_names)))
    for k, output in enumerate(output_names):
        columns[token_value_column(output)] = stacked[:, k]
        columns[token_base_value_column(output)] = np.asarray(base_values)[texts, k]
    return pd.DataFrame(columns)


def index_column(labels: np.ndarray) -> Any:
    """Index labels as a table column: numbers as they are, anything else as text."""
    labels = np.asarray(labels)
    return labels if labels.dtype.kind in "iufb" else pd.array([str(label) for label in labels], dtype="string")
