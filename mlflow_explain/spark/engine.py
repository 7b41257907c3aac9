"""The Spark engine: permutation importance and SHAP values on the executors of a Spark DataFrame (no MLflow)."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from ..engines.base import ExplainRequest, new_explanation, run_steps
from ..engines.tabular import enabled, has_input
from ..errors import InvalidInputError
from ..results import Explanation, PermutationResult, ShapResult, TabularResult, tabular_result_types
from .frames import SparkData, model_rows, sample_rows
from .permutation_job import spark_permutation_importance
from .shap_job import spark_shap_values
from .statistics import plan_permutation

if TYPE_CHECKING:
    from pyspark import Broadcast

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class SparkRequest(ExplainRequest):
    """A fitted model, its checked Spark validation rows and where the SHAP values of every row go (if anywhere)."""

    data: SparkData
    shap_output: str | None = None  # a Parquet path Spark writes to; None keeps only the sums and a sample


class SparkEngine:
    """The model broadcast once; per-partition sums and a seeded sample of explained rows come back to the driver."""

    def compute(self, request: SparkRequest) -> Explanation:
        """Every enabled method on the cluster; a failing one is recorded (or re-raised, per ``on_error``).

        The methods are the registered tabular methods enabled in the config, each run by its entry in
        :data:`SPARK_STEPS`; one without an entry is said in the warnings and skipped.
        """
        model, data, cfg = request.model, request.data, request.config
        if request.shap_output and not cfg.shap.enabled:
            raise InvalidInputError("shap_output was given but shap.enabled is false.")
        methods = [name for name in tabular_result_types() if enabled(cfg, name) and has_input(model, name)]
        builders = {name: SPARK_STEPS[name](request) for name in methods if name in SPARK_STEPS}
        explanation = new_explanation(request, data.task, data.feature_names, data.n_rows, extra_packages=("pyspark",))
        for name in methods:
            if name not in SPARK_STEPS:
                explanation.warnings.append(
                    f"{name} is not computed on Spark: explain a sample with mlflow_explain.explain."
                )
                logger.warning("mlflow_explain: %s", explanation.warnings[-1])
        partitions = data.frame.rdd.getNumPartitions()
        logger.info("mlflow_explain on Spark: %d rows in %d partitions.", data.n_rows, partitions)
        handle = data.frame.sparkSession.sparkContext.broadcast(model)
        steps = {name: functools.partial(build, handle) for name, build in builders.items()}
        try:
            return run_steps(explanation, steps, cfg.on_error, rows=functools.partial(_rows, request, explanation))
        finally:
            handle.unpersist()


def _permutation(request: SparkRequest) -> Callable[[Broadcast], PermutationResult]:
    """Permutation importance on the executors; the plan is checked here, before anything runs."""
    permutation = request.config.permutation
    plan = plan_permutation(
        request.model,
        request.data.feature_names,
        scoring=permutation.scoring,
        n_repeats=permutation.n_repeats,
        random_state=permutation.random_state,
        max_samples=permutation.max_samples,
        feature_groups=permutation.feature_groups,
        memory_budget_mb=permutation.memory_budget_mb,
    )
    return lambda handle: spark_permutation_importance(handle, request.data, plan)


def _shap(request: SparkRequest) -> Callable[[Broadcast], ShapResult]:
    """SHAP values of every row on the executors (written to ``shap_output`` when given), a sample kept."""
    cfg = request.config.shap
    return lambda handle: spark_shap_values(request.model, handle, request.data, cfg, request.shap_output)


SPARK_STEPS: dict[str, Callable[[SparkRequest], Callable[[Broadcast], TabularResult]]] = {
    "permutation": _permutation,
    "shap": _shap,
}  # each tabular method Spark runs: (request) -> (the broadcast model) -> its result


def _rows(request: SparkRequest, explanation: Explanation) -> pd.DataFrame:
    """Rows for the diagnostics: the sample SHAP explained, else a seeded sample of as many rows."""
    if explanation.shap is not None:
        return explanation.shap.data
    shap, data = request.config.shap, request.data
    return model_rows(request.model, sample_rows(data, shap.max_rows, shap.random_state), data.target).frame()
