"""The served explainer: an MLflow pyfunc model answering each row with its prediction and SHAP values.

A logged explainer (see :func:`mlflow_explain.serving.log_explainer.log_explainer`) holds three artifacts: the
fitted model (``model.pkl``), ``explainer.json`` (the task, the raw columns and their types, the SHAP
algorithm chosen at logging time and, for a Pipeline, its verified column mapping) and, where the
algorithm needs one, ``background.parquet``. No shap object is stored: :class:`ExplainerModel`
rebuilds the explainer from the model and the background once, when MLflow loads it, and every
``predict`` reuses it.

The explainer checks the request's columns itself (see :func:`request_rows`), so that a request with
missing or wrongly typed columns gets one sentence naming them (HTTP 400 from ``mlflow models serve``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cloudpickle
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from ..methods.shap import RowExplainer, restored_explainer
from ..results import Task
from ..shap_table import base_value_column, shap_columns

MODEL_FILE, SETTINGS_FILE, BACKGROUND_FILE = "model.pkl", "explainer.json", "background.parquet"
PREDICTION = "prediction"
SETTINGS_VERSION = 1
_NUMBER_TYPES = frozenset({"double", "float", "long", "integer"})
_INTEGER_TYPES = frozenset({"long", "integer"})


def request_rows(frame: pd.DataFrame, input_types: dict[str, str], categories: dict[str, list]) -> pd.DataFrame:
    """The request's raw columns, in order, as the model was fitted on them; a 400 naming the columns otherwise.

    Parameters
    ----------
    frame : DataFrame
        The request (other columns are ignored).
    input_types : dict of str to str
        Each raw column's MLflow type (``double``, ``long``, ``string``, ``boolean``...).
    categories : dict of str to list
        The categories of the columns the model was fitted on as pandas categoricals.

    Raises
    ------
    MlflowException
        INVALID_PARAMETER_VALUE, one sentence naming the missing and the wrongly typed columns.
    """
    missing = [name for name in input_types if name not in frame.columns]
    wrong = [
        f"'{name}' ({kind} expected, {_described(frame[name])} given)"
        for name, kind in input_types.items()
        if name in frame.columns and not _fits(frame[name], kind)
    ]
    problems = [f"misses the columns {', '.join(repr(name) for name in missing)}"] if missing else []
    problems += [f"has wrongly typed columns {', '.join(wrong)}"] if wrong else []
    if problems:
        raise MlflowException.invalid_parameter_value(f"The request {' and '.join(problems)}.")
    columns = {name: _cast(frame[name], kind, categories.get(name)) for name, kind in input_types.items()}
    return pd.DataFrame(columns, index=frame.index)


def _fits(column: pd.Series, kind: str) -> bool:
    present = column.dropna()
    if present.empty:
        return True
    if kind in _NUMBER_TYPES:
        return pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    if kind == "boolean":
        return pd.api.types.is_bool_dtype(present) or present.map(lambda value: isinstance(value, bool)).all()
    if kind == "string":
        return isinstance(column.dtype, pd.CategoricalDtype) or present.map(lambda value: isinstance(value, str)).all()
    return True  # datetime, binary: left to the model


def _described(column: pd.Series) -> str:
    present = column.dropna()
    kinds = sorted({type(value).__name__ for value in present.head(1000)})
    return "/".join(kinds) if column.dtype == object else str(column.dtype)


def _cast(column: pd.Series, kind: str, categories: list | None) -> pd.Series:
    if categories is not None:
        return pd.Series(pd.Categorical(column, categories=categories), index=column.index)
    if kind in _NUMBER_TYPES:
        numbers = pd.to_numeric(column, errors="coerce").astype(float)
        integral = kind in _INTEGER_TYPES and numbers.notna().all() and (numbers % 1 == 0).all()
        return numbers.astype("int64") if integral else numbers
    if kind == "boolean" and column.notna().all():
        return column.astype(bool)
    return column.astype(object).where(column.notna(), None) if kind == "string" else column


def answer_columns(feature_names: list[str], output_names: list[str]) -> list[str]:
    """The columns of an answer: ``prediction``, then per output its SHAP columns and base value, as in
    ``shap_values.parquet``."""
    per_output = [[*shap_columns(feature_names, [output]), base_value_column(output)] for output in output_names]
    return [PREDICTION, *[column for columns in per_output for column in columns]]


def answer(model: Any, explainer: RowExplainer, rows: pd.DataFrame, as_array: bool) -> pd.DataFrame:
    """One row per row of ``frame``: the model's prediction and the explanation of it.

    Parameters
    ----------
    model : fitted estimator
    explainer : RowExplainer
        Built once for ``model``.
    rows : DataFrame
        The rows, the raw columns in ``explainer.feature_names`` order (see :func:`request_rows`).
    as_array : bool
        The model was fitted on an array: it gets the columns as one, in ``explainer.feature_names`` order.

    Returns
    -------
    DataFrame
        Columns :func:`answer_columns`; per output, the SHAP values plus the base value add up to the
        model's output in the space ``explainer.json`` names (``output_space``).
    """
    index = rows.index
    if as_array:
        rows = rows.to_numpy()
    try:
        prediction = np.asarray(model.predict(rows))
        values, base, _ = explainer.explain(rows)
    except (ValueError, TypeError, KeyError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MlflowException.invalid_parameter_value(f"The model cannot explain these rows: {first_line}") from err
    columns: dict[str, Any] = {
        PREDICTION: prediction.reshape(len(index), -1)[:, 0] if prediction.ndim > 1 else prediction
    }
    for k, output in enumerate(explainer.output_names):
        for j, name in enumerate(shap_columns(explainer.feature_names, [output])):
            columns[name] = values[:, j, k]
        columns[base_value_column(output)] = base[:, k]
    return pd.DataFrame(columns, index=index)


class ExplainerModel(mlflow.pyfunc.PythonModel):
    """The pyfunc model of a logged explainer: ``predict(frame)`` returns :func:`answer` of the rows."""

    def load_context(self, context: Any) -> None:
        """Load the model and rebuild its explainer, once per loaded model."""
        artifacts = {key: Path(path) for key, path in context.artifacts.items()}
        settings = json.loads(artifacts[SETTINGS_FILE].read_text(encoding="utf-8"))
        with artifacts[MODEL_FILE].open("rb") as stream:
            self.model = cloudpickle.load(stream)
        background = None
        if BACKGROUND_FILE in artifacts:
            background = pd.read_parquet(artifacts[BACKGROUND_FILE])
            if settings["as_array"]:
                background = background.to_numpy()
        self.as_array, self.input_types, self.categories = (
            settings["as_array"],
            settings["input_types"],
            settings["categories"],
        )
        self.explainer = restored_explainer(
            self.model,
            Task(settings["task"]["kind"], tuple(settings["task"]["classes"])),
            feature_names=settings["feature_names"],
            algorithm=settings["algorithm"],
            origins=settings["origins"],
            background=background,
            random_state=settings.get("random_state", 0),
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """The prediction and SHAP values of every row of ``model_input``."""
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input, columns=self.explainer.feature_names)
        rows = request_rows(model_input, self.input_types, self.categories)
        return answer(self.model, self.explainer, rows, self.as_array)
