"""The Spark engine's entry point: explain a model on a Spark DataFrame and log it as the core does."""

from __future__ import annotations

import logging
import time
from typing import Any

import pyspark

from .. import tracking
from ..api import log_to_run
from ..config import ConfigSource, ExplainConfig, load_config
from ..diagnostics import diagnose
from ..engine import guarded, package_versions, timed
from ..errors import InvalidInputError
from ..models import check_model
from ..results import Explanation
from .frames import SparkData, check_frame, model_rows, sample_rows
from .permutation_job import spark_permutation_importance
from .shap_job import spark_shap_values
from .statistics import plan_permutation

logger = logging.getLogger(__name__)


def explain(
    model_or_uri: Any,
    spark_df: Any,
    target: str,
    config: ConfigSource = None,
    run_id: str | None = None,
    shap_output: str | None = None,
) -> Explanation:
    """Explain a model on every row of a Spark DataFrame and log it into an MLflow run.

    SHAP values and permuted scores are computed on the executors (``mapInPandas``, the model
    broadcast once); only sums, counts and a seeded sample of explained rows (for the plots and
    local explanations) come back to the driver. Metrics, artifacts and tags are those of
    :func:`mlflow_explain.explain`.

    Parameters
    ----------
    model_or_uri : fitted estimator or str
        The model, or an MLflow model URI (``runs:/<run id>/model``, ``models:/<name>/<version>``).
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
    started = time.perf_counter()
    cfg = load_config(config)
    model = tracking.load_logged_model(model_or_uri)[0] if isinstance(model_or_uri, str) else model_or_uri
    check_model(model)
    data = check_frame(model, spark_df, target)
    plan = None
    if cfg.permutation.enabled:
        permutation = cfg.permutation
        plan = plan_permutation(
            model,
            data.feature_names,
            scoring=permutation.scoring,
            n_repeats=permutation.n_repeats,
            random_state=permutation.random_state,
            max_samples=permutation.max_samples,
            feature_groups=permutation.feature_groups,
            memory_budget_mb=permutation.memory_budget_mb,
        )
    explanation = Explanation(
        task=data.task,
        feature_names=data.feature_names,
        n_rows=data.n_rows,
        config=cfg.to_dict(),
        versions={**package_versions(model), "pyspark": pyspark.__version__},
        model_type=type(model).__name__,
    )
    logger.info("mlflow_explain on Spark: %d rows in %d partitions.", data.n_rows, data.frame.rdd.getNumPartitions())
    _compute(explanation, model, data, cfg, plan, shap_output)
    log_to_run(explanation, cfg, run_id, started)
    return explanation


def _compute(
    explanation: Explanation, model: Any, data: SparkData, cfg: ExplainConfig, plan: Any, shap_output: str | None
) -> None:
    """Run the enabled methods on the cluster; a failing one is recorded (or re-raised, per on_error)."""
    if shap_output and not cfg.shap.enabled:
        raise InvalidInputError("shap_output was given but shap.enabled is false.")
    handle = data.frame.sparkSession.sparkContext.broadcast(model)
    try:
        if plan is not None:
            with timed(explanation, "permutation"):
                explanation.permutation = guarded(
                    explanation, "permutation", cfg.on_error, spark_permutation_importance, handle, data, plan
                )
        if cfg.shap.enabled:
            with timed(explanation, "shap"):
                explanation.shap = guarded(
                    explanation, "shap", cfg.on_error, spark_shap_values, model, handle, data, cfg.shap, shap_output
                )
    finally:
        handle.unpersist()
    if explanation.shap is not None:
        rows = explanation.shap.data
    elif explanation.permutation is not None:
        rows = model_rows(model, sample_rows(data, cfg.shap.max_rows, cfg.shap.random_state), data.target).frame()
    else:
        return
    explanation.diagnostics = guarded(explanation, "diagnostics", cfg.on_error, diagnose, explanation, rows) or []
