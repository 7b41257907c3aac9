"""The Spark engine: permutation importance and SHAP values on the executors of a Spark DataFrame (no MLflow)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pandas as pd

from ..engines.base import ExplainRequest, new_explanation, run_steps
from ..engines.tabular import enabled, has_input
from ..errors import InvalidInputError
from ..results import Explanation, PermutationResult, ShapResult, TabularResult, tabular_result_types
from .frames import SparkData, model_rows, sample_rows
from .ml_permutation_job import check_ml_scoring, spark_ml_permutation_importance
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
    """A Python model broadcast once (a pyspark.ml model applied with ``transform``); per-partition sums and a
    seeded sample of explained rows come back to the driver."""

    def compute(self, request: SparkRequest) -> Explanation:
        """Every enabled method on the cluster; a failing one is recorded (or re-raised, per ``on_error``).

        The methods are the registered tabular methods enabled in the config, each run by its entry in
        :data:`SPARK_STEPS` (:data:`SPARK_ML_STEPS` for a pyspark.ml model); one without an entry is said
        in the warnings and skipped.
        """
        model, data, cfg = request.model, request.data, request.config
        if request.shap_output and not cfg.shap.enabled:
            raise InvalidInputError("shap_output was given but shap.enabled is false.")
        table = SPARK_STEPS if data.ml is None else SPARK_ML_STEPS
        methods = [name for name in tabular_result_types() if enabled(cfg, name) and has_input(model, name)]
        builders = {name: table[name](request) for name in methods if name in table}
        explanation = new_explanation(request, data.task, data.feature_names, data.n_rows, extra_packages=("pyspark",))
        for name in methods:
            if name not in table:
                explanation.warnings.append(
                    f"{name} is not computed for pyspark.ml models."
                    if data.ml is not None
                    else f"{name} is not computed on Spark: explain a sample with mlflow_explain.explain."
                )
                logger.warning("mlflow_explain: %s", explanation.warnings[-1])
        partitions = data.frame.rdd.getNumPartitions()
        logger.info("mlflow_explain on Spark: %d rows in %d partitions.", data.n_rows, partitions)
        sample = functools.cache(functools.partial(_diagnostic_rows, request))
        rows = functools.partial(_rows, request, explanation, sample)
        leakage = cfg.diagnostics.leakage  # the leakage check needs the rows' targets
        target = (lambda: sample()[data.target].to_numpy()) if leakage else None
        with _shared_model(request) as handle:
            steps = {name: functools.partial(build, handle) for name, build in builders.items()}
            return run_steps(explanation, steps, cfg.on_error, rows=rows, target=target)


@contextlib.contextmanager
def _shared_model(request: SparkRequest) -> Iterator[Broadcast | None]:
    """The Python model broadcast to the executors for the steps' time; None for a pyspark.ml model (a JVM
    object, applied with ``transform``)."""
    if request.data.ml is not None:
        yield None
        return
    handle = request.data.frame.sparkSession.sparkContext.broadcast(request.model)
    try:
        yield handle
    finally:
        handle.unpersist()


def _permutation(request: SparkRequest) -> Callable[[Broadcast], PermutationResult]:
    """Permutation importance on the executors; the plan is checked here, before anything runs."""
    permutation = request.config.permutation
    scoring = permutation.scoring
    if scoring is None and request.data.ml is not None:  # the local engine's primary scorer for the task
        scoring = "accuracy" if request.data.task.is_classification else "r2"
    plan = plan_permutation(
        request.model,
        request.data.feature_names,
        scoring=scoring,
        n_repeats=permutation.n_repeats,
        random_state=permutation.random_state,
        max_samples=permutation.max_samples,
        feature_groups=permutation.feature_groups,
        memory_budget_mb=permutation.memory_budget_mb,
    )
    if request.data.ml is None:
        return lambda handle: spark_permutation_importance(handle, request.data, plan)
    check_ml_scoring(request.data.ml, plan)
    return lambda _: spark_ml_permutation_importance(request.data, plan)


def _shap(request: SparkRequest) -> Callable[[Broadcast], ShapResult]:
    """SHAP values of every row on the executors (written to ``shap_output`` when given), a sample kept."""
    cfg = request.config.shap
    return lambda handle: spark_shap_values(request.model, handle, request.data, cfg, request.shap_output)


SPARK_STEPS: dict[str, Callable[[SparkRequest], Callable[[Broadcast], TabularResult]]] = {
    "permutation": _permutation,
    "shap": _shap,
}  # each tabular method Spark runs: (request) -> (the broadcast model) -> its result
SPARK_ML_STEPS: dict[str, Callable[[SparkRequest], Callable[[None], TabularResult]]] = {
    "permutation": _permutation,
}  # each tabular method Spark runs for a pyspark.ml model: (request) -> (None) -> its result


def _rows(request: SparkRequest, explanation: Explanation, sample: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Rows for the diagnostics: the sample SHAP explained, else ``sample`` (:func:`_diagnostic_rows`).

    With the leakage check on, always ``sample``: the check needs each row's target.
    """
    if explanation.shap is not None and not request.config.diagnostics.leakage:
        return explanation.shap.data
    return sample()[request.data.feature_names].reset_index(drop=True)


def _diagnostic_rows(request: SparkRequest) -> pd.DataFrame:
    """A seeded sample of ``shap.max_rows`` rows: their raw feature columns and their targets."""
    shap, data = request.config.shap, request.data
    rows = sample_rows(data, shap.max_rows, shap.random_state)
    if data.ml is not None:
        return rows
    validation = model_rows(request.model, rows, data.target, data.row_id)
    return validation.frame().assign(**{data.target: validation.y})
