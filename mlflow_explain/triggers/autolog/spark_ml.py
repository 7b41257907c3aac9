"""pyspark.ml's ``Estimator.fit`` under autolog: which fits count, the rows to explain on, how they are explained.

``install`` routes the ``fit`` of every ``pyspark.ml`` estimator (``Pipeline``, ``RandomForestClassifier``,
``CrossValidator``, the user's own) through autolog's handler the moment ``pyspark.ml.base`` is imported (a
post-import hook; nothing here imports pyspark). pyspark defines ``fit`` once, on ``Estimator``, and
``mlflow.pyspark.ml.autolog()`` patches exactly that one; so each subclass gets a ``fit`` of its own
(``patch.wrap_fit_of_subclasses``) and MLflow's patch, enabled before or after the plugin, runs inside it:
the fitted model is explained once MLflow has logged it, into the run MLflow made for the fit. The stages
a ``Pipeline`` fits, and a search's candidates, are nested fits and pass through.

A fit returns a new model: the one explained is what ``fit`` returned (a search's ``bestModel``), through
:func:`mlflow_explain.spark.explain` (permutation importance and SHAP on the executors). The validation
rows: ``set_validation_data(spark_df)`` or ``autolog(validation_data=(spark_df, None))`` (pandas rows
too: they become a Spark DataFrame of the fit's session), else ``validation.path`` (Parquet, or CSV with
a header), read by the fit's session. The target column: the ``y`` given as a column name, else
``validation.target``, else the raw label column the model was trained on (the predictor's label
column, or the column a ``StringIndexer`` indexed into it).
"""

from __future__ import annotations

import logging
import sys
from types import ModuleType
from typing import Any

from ...config import ExplainConfig
from ...errors import InvalidInputError
from . import patch
from .rows import Rows

logger = logging.getLogger(__name__)

_BASE_MODULE = "pyspark.ml.base"
_SEARCHES = ("CrossValidator", "TrainValidationSplit")  # pyspark.ml.tuning: their fitted model's bestModel


def install() -> None:
    """Route every ``pyspark.ml`` estimator's ``fit`` through autolog's handler: now if imported, else once it is."""
    from mlflow.utils.import_hooks import register_post_import_hook

    register_post_import_hook(_on_pyspark_ml_imported, _BASE_MODULE)  # runs at once when already imported


def _on_pyspark_ml_imported(base: ModuleType) -> None:
    try:
        patch.wrap_fit_of_subclasses(base.Estimator)
    except Exception:  # never break the user's import of pyspark.ml
        logger.warning("mlflow_explain.autolog: could not patch pyspark.ml's Estimator.fit.", exc_info=True)


def is_spark_estimator(obj: Any) -> bool:
    """True for a ``pyspark.ml`` estimator; imports nothing."""
    base = sys.modules.get(_BASE_MODULE)
    return base is not None and isinstance(obj, base.Estimator)


def skip_reason(estimator: Any, args: tuple, kwargs: dict) -> str | None:
    """Why a user's ``estimator.fit(dataset, params)`` is not explained, or None when it is to be.

    Explained: a ``Pipeline``, a classifier or regressor (a ``Predictor``) or a search over one, fitted
    with at most one param map.
    """
    from pyspark.ml import Pipeline, Predictor

    params = args[1] if len(args) > 1 else kwargs.get("params")
    if isinstance(params, (list, tuple)):
        return "fitted with a list of param maps, which gives a model per map"
    if isinstance(estimator, (Pipeline, Predictor)) or type(estimator).__name__ in _SEARCHES:
        return None
    return "a feature stage or a model without a label, not a classifier or regressor"


def model_to_explain(estimator: Any, fitted: Any) -> Any:
    """The model ``estimator.fit`` returned, or a search's best model."""
    return fitted.bestModel if type(estimator).__name__ in _SEARCHES else fitted


def explain_model(model: Any, rows: Rows, config: ExplainConfig, run_id: str, notes: tuple[str, ...] = ()) -> None:
    """Explain a fitted ``pyspark.ml`` model on the validation rows into run ``run_id``, on Spark."""
    from pyspark.sql import SparkSession

    from ...spark import explain
    from ...spark.ml_model import spark_ml_model

    for note in notes:  # the Spark engine uses every row; the notes of a light explanation are said here
        logger.info("mlflow_explain.autolog: %s", note)
    read = spark_ml_model(model)
    target = _target_column(rows, config, read.label_column or read.predictor.getLabelCol())
    frame = _spark_frame(rows, target, SparkSession.active())
    explain(model, frame, target, config=config, run_id=run_id)


def _target_column(rows: Rows, config: ExplainConfig, label_column: str) -> str:
    """The target column: ``y`` naming it, else ``validation.target``, else the model's raw label column."""
    if isinstance(rows.y, str):
        return rows.y
    return config.validation.target or label_column


def _spark_frame(rows: Rows, target: str, session: Any) -> Any:
    """The validation rows as a Spark DataFrame holding the target column ``target``."""
    import numpy as np
    import pandas as pd
    from pyspark.sql import DataFrame

    if rows.sample_weight is not None:
        raise InvalidInputError(
            "Spark ML models are explained on unweighted rows; pass set_validation_data(spark_df) without "
            "sample_weight."
        )
    if isinstance(rows.X, DataFrame):
        return rows.X
    if isinstance(rows.X, str):
        reader = session.read
        if rows.X.lower().endswith(".csv"):
            return reader.csv(rows.X, header=True, inferSchema=True)
        return reader.parquet(rows.X)
    if isinstance(rows.X, pd.DataFrame):
        frame = rows.X if rows.y is None or isinstance(rows.y, str) else rows.X.assign(**{target: np.asarray(rows.y)})
        return session.createDataFrame(frame)
    raise InvalidInputError(
        f"A Spark ML model is explained on a Spark DataFrame (or a pandas one), not on a {type(rows.X).__name__}; "
        "pass set_validation_data(spark_df) with the target column in it."
    )
