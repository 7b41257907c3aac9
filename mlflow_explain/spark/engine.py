"""The Spark engine: permutation importance and SHAP values on the executors of a Spark DataFrame (no MLflow)."""

from __future__ import annotations

import dataclasses
import functools
import logging

import pandas as pd

from ..engines.base import ExplainRequest, new_explanation, run_steps
from ..errors import InvalidInputError
from ..results import Explanation
from .frames import SparkData, model_rows, sample_rows
from .permutation_job import spark_permutation_importance
from .shap_job import spark_shap_values
from .statistics import plan_permutation

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class SparkRequest(ExplainRequest):
    """A fitted model, its checked Spark validation rows and where the SHAP values of every row go (if anywhere)."""

    data: SparkData
    shap_output: str | None = None  # a Parquet path Spark writes to; None keeps only the sums and a sample


class SparkEngine:
    """The model broadcast once; per-partition sums and a seeded sample of explained rows come back to the driver."""

    def compute(self, request: SparkRequest) -> Explanation:
        """Every enabled method on the cluster; a failing one is recorded (or re-raised, per ``on_error``)."""
        model, data, cfg = request.model, request.data, request.config
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
        if request.shap_output and not cfg.shap.enabled:
            raise InvalidInputError("shap_output was given but shap.enabled is false.")
        explanation = new_explanation(request, data.task, data.feature_names, data.n_rows, extra_packages=("pyspark",))
        partitions = data.frame.rdd.getNumPartitions()
        logger.info("mlflow_explain on Spark: %d rows in %d partitions.", data.n_rows, partitions)
        handle = data.frame.sparkSession.sparkContext.broadcast(model)
        steps = {}
        if plan is not None:
            steps["permutation"] = functools.partial(spark_permutation_importance, handle, data, plan)
        if cfg.shap.enabled:
            steps["shap"] = functools.partial(spark_shap_values, model, handle, data, cfg.shap, request.shap_output)
        try:
            return run_steps(explanation, steps, cfg.on_error, rows=functools.partial(_rows, request, explanation))
        finally:
            handle.unpersist()


def _rows(request: SparkRequest, explanation: Explanation) -> pd.DataFrame:
    """Rows for the diagnostics: the sample SHAP explained, else a seeded sample of as many rows."""
    if explanation.shap is not None:
        return explanation.shap.data
    shap, data = request.config.shap, request.data
    return model_rows(request.model, sample_rows(data, shap.max_rows, shap.random_state), data.target).frame()
