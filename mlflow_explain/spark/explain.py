"""The Spark engine's entry point: explain a model on a Spark DataFrame and log it as the core does."""

from __future__ import annotations

import time
from typing import Any

from ..boosters import booster_estimator, booster_library
from ..config import ConfigSource, load_config
from ..errors import InvalidInputError
from ..models import check_model, is_torch_module
from ..publish import tracking
from ..publish.flow import explain_with
from ..results import Explanation
from .engine import SparkEngine, SparkRequest
from .frames import check_frame, check_ml_frame
from .ml_model import is_spark_ml_model, spark_ml_model


def explain(
    model_or_uri: Any,
    spark_df: Any,
    target: str,
    config: ConfigSource = None,
    run_id: str | None = None,
    shap_output: str | None = None,
    row_id: str | None = None,
) -> Explanation:
    """Explain a model on every row of a Spark DataFrame and log it into an MLflow run.

    SHAP values and permuted scores are computed on the executors (``mapInPandas``, the model
    broadcast once); only sums, counts and a seeded sample of explained rows (for the plots and
    local explanations) come back to the driver. Metrics, artifacts and tags are those of
    :func:`mlflow_explain.explain`.

    Parameters
    ----------
    model_or_uri : fitted estimator, pyspark.ml model or str
        The model, or an MLflow model URI (``runs:/<run id>/model``, ``models:/<name>/<version>``). A
        ``pyspark.ml`` classifier or regressor, or a ``PipelineModel`` ending in one (a model logged with
        ``mlflow.spark``), is applied with ``transform``; its features are the raw columns its feature
        stages read, its task and classes its own.
    spark_df : pyspark.sql.DataFrame
        Validation rows: the model's feature columns and the target column.
    target : str
        Name of the target column.
    config : path, dict or ExplainConfig, default=None
        Merged over ``configs/default.yaml``. ``validation.max_rows`` does not apply: every row is used.
    run_id : str, default=None
        Run to log into; default the active run, or a new one.
    shap_output : str, default=None
        Parquet path (any URI Spark writes to) receiving the SHAP values of every row: ``row`` id,
        ``value:<feature>``, ``shap:<output>:<feature>``, ``base_value:<output>``. It must not exist.
    row_id : str, default=None
        A column of ``spark_df`` naming each row (a customer id...): written as ``index`` beside the
        generated ``row`` id in the SHAP values and the local explanations; never a feature. Default
        the config's ``spark.row_id``.

    Returns
    -------
    Explanation
        ``shap.values`` holds the sampled rows (``shap.max_rows``); its mean |SHAP| covers every row.

    Raises
    ------
    InvalidInputError
        When the model or the data cannot be explained, or an option has no Spark equivalent.

    Examples
    --------
    >>> frame = spark.read.parquet("s3://lake/validation/")          # doctest: +SKIP
    >>> mlflow_explain.spark.explain("runs:/abc/model", frame, "price", shap_output="s3://lake/shap/")  # doctest: +SKIP
    """
    return explain_logged(model_or_uri, spark_df, target, config, run_id, shap_output, row_id)[0]


def explain_logged(
    model_or_uri: Any,
    spark_df: Any,
    target: str,
    config: ConfigSource = None,
    run_id: str | None = None,
    shap_output: str | None = None,
    row_id: str | None = None,
) -> tuple[Explanation, list[str]]:
    """:func:`explain`, also returning the paths of the files it logged (relative to ``logging.artifact_dir``).

    The list is empty when nothing reached MLflow; the evaluator returns those files as its artifacts.
    """
    started = time.perf_counter()
    cfg = load_config(config)
    row_id = cfg.spark.row_id if row_id is None else row_id
    model = tracking.load_logged_model(model_or_uri)[0] if isinstance(model_or_uri, str) else model_or_uri
    if is_spark_ml_model(model):
        data = check_ml_frame(spark_ml_model(model), spark_df, target, row_id)
    else:
        model = _python_model(model)
        data = check_frame(model, spark_df, target, row_id)
    request = SparkRequest(model=model, config=cfg, data=data, shap_output=shap_output)
    return explain_with(SparkEngine(), request, run_id, started)


def _python_model(model: Any) -> Any:
    """A checked Python model as the Spark engine broadcasts it (a native booster as an estimator)."""
    check_model(model)
    if is_torch_module(model):
        raise InvalidInputError(
            "The Spark engine explains scikit-learn-style models, not a PyTorch module; explain the module on a "
            "sample of the rows with mlflow_explain.explain (the torch section of the config)."
        )
    if booster_library(model) is not None:  # a native booster: classifier or regressor by its objective
        return booster_estimator(model)
    return model
