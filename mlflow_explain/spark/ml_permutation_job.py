"""Permutation importance of a ``pyspark.ml`` model: copies built per partition, scored by ``model.transform``.

A JVM model cannot run inside ``mapInPandas``, so the work takes three Spark stages:

1. ``mapInPandas`` over the validation rows: each partition draws its shuffles with the project's one
   permutation core (``methods.permutation_batches``: partition ``p`` seeded with ``seed + p``, as the
   Spark engine of Python models draws them) and emits its unpermuted rows and every permuted copy,
   batch by batch, each row tagged with its ``(unit, repeat)`` (the unpermuted rows: ``(-1, -1)``).
2. ``model.transform`` of those copies (the whole pipeline, feature stages included), on the executors.
3. ``mapInPandas`` over the predictions: per Arrow batch and ``(unit, repeat)``, the sums of the scorer
   table (``methods.permutation_scoring.SCORES``) against the targets; ``groupBy`` adds them up over
   batches and partitions, and :meth:`PermutationPlan.result` turns the totals into scores.

Only the sums reach the driver. The scores are those of the same permutations scored on one
machine (``tests/test_spark_ml.py`` checks it against scikit-learn's metrics on the collected rows).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark import TaskContext
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

from ..errors import InvalidInputError
from ..methods.permutation_batches import PermutationBatches, draw_shuffles
from ..methods.permutation_scoring import SCORES, Targets
from ..methods.permuted_copies import evaluation_space
from ..results import PermutationResult, Task
from .frames import SparkData, column
from .ml_model import SparkMLModel
from .statistics import BASELINE, KEYS, PermutationPlan, combiner

_UNIT, _REPEAT = "__mlflow_explain_unit", "__mlflow_explain_repeat"
_PREDICTION, _PROBABILITY = "__mlflow_explain_prediction", "__mlflow_explain_probability"


def check_ml_scoring(ml: SparkMLModel, plan: PermutationPlan) -> None:
    """Refuse a scorer the model's outputs cannot feed: regression scores of a classifier, or the reverse, or
    log-loss without a probability column."""
    for name in plan.scorer_names:
        entry = SCORES[name]
        if entry.numeric == ml.task.is_classification:
            kind = "a classifier" if ml.task.is_classification else "a regressor"
            raise InvalidInputError(
                f"permutation.scoring {name!r} does not score {kind} ({type(ml.predictor).__name__}); use "
                f"{'accuracy or neg_log_loss' if ml.task.is_classification else 'r2 or an error score'}."
            )
        if entry.response == "predict_proba" and ml.probability_column is None:
            raise InvalidInputError(
                f"permutation.scoring {name!r} needs class probabilities, which {type(ml.predictor).__name__} "
                "does not give; use accuracy."
            )


def spark_ml_permutation_importance(data: SparkData, plan: PermutationPlan) -> PermutationResult:
    """Permutation importance of a ``pyspark.ml`` model over every row of ``data``, partition by partition.

    Parameters
    ----------
    data : SparkData
        Checked rows of a Spark ML model (``data.ml`` is set).
    plan : PermutationPlan
        From :func:`mlflow_explain.spark.statistics.plan_permutation` over ``data.feature_names``.

    Returns
    -------
    PermutationResult
        ``n_predict_calls`` is 1: the model transforms every copy in one Spark job.
    """
    ml = data.ml
    inputs = data.frame.select(*[column(name) for name in dict.fromkeys([*data.feature_names, data.target])])
    copies = inputs.mapInPandas(
        _permuted_copies(plan, data.feature_names, data.target),
        StructType([*inputs.schema.fields, StructField(_UNIT, IntegerType()), StructField(_REPEAT, IntegerType())]),
    )
    predicted = _predictions(ml, copies, data.target)
    statistics = predicted.mapInPandas(
        _copy_statistics(plan, ml.task, data.target, ml.probability_column is not None, data.target_mean or 0.0),
        StructType(
            [StructField(name, IntegerType(), False) for name in KEYS]
            + [StructField(name, DoubleType(), False) for name in plan.statistic_names]
        ),
    )
    totals = statistics.groupBy(*KEYS).agg(
        *[getattr(F, combiner(name))(column(name)).alias(name) for name in plan.statistic_names]
    )
    totals = totals.toPandas()
    baseline = (totals["unit"] == BASELINE) & (totals["repeat"] == BASELINE)
    counts = {"predict_calls": np.where(baseline, 1.0, 0.0), "copies_per_call": np.where(baseline, len(totals), 0.0)}
    return plan.result(totals.assign(**counts))


def _predictions(ml: SparkMLModel, copies: DataFrame, target: str) -> DataFrame:
    """The model's outputs on the copies: keys, target, prediction and (as an array) the probabilities."""
    outputs = [column(_UNIT), column(_REPEAT), column(target), column(ml.prediction_column).alias(_PREDICTION)]
    if ml.probability_column is not None:
        outputs.append(vector_to_array(column(ml.probability_column)).alias(_PROBABILITY))
    return ml.model.transform(copies).select(*outputs)


def _permuted_copies(plan: PermutationPlan, feature_names: list[str], target: str):
    """The mapInPandas function emitting a partition's rows, then each of its permuted copies, tagged."""

    def copies(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        chunks = [batch for batch in batches if len(batch)]
        if not chunks:
            return
        rows = pd.concat(chunks, ignore_index=True)
        X, y = rows[feature_names], rows[target].to_numpy()
        positions, shuffles = draw_shuffles(
            plan.seed + TaskContext.get().partitionId(), len(rows), plan.n_repeats, plan.max_samples
        )
        space = evaluation_space(None, X, plan.units, None)  # copies of the raw columns: the model reads those
        batched = PermutationBatches.sized(None, space, positions, shuffles, 1, plan.memory_budget_mb)
        for batch in batched.batches:
            blocks = [None if job is None else (space.units[job[0]], shuffles[job[1]]) for job in batch]
            stacked, offsets = space.stack(positions, blocks)
            sizes = np.diff(offsets)
            keys = np.repeat([(BASELINE, BASELINE) if job is None else job for job in batch], sizes, axis=0)
            targets = np.concatenate([y if job is None else y[positions] for job in batch])
            yield pd.DataFrame(stacked, copy=True).assign(
                **{target: targets, _UNIT: keys[:, 0].astype(np.int32), _REPEAT: keys[:, 1].astype(np.int32)}
            )[[*dict.fromkeys([*feature_names, target]), _UNIT, _REPEAT]]

    return copies


def _copy_statistics(plan: PermutationPlan, task: Task, target: str, has_probability: bool, center: float):
    """The mapInPandas function summing, per batch and (unit, repeat), the scorers' statistics."""
    classes = np.asarray(task.classes) if task.is_classification else None
    indexed = classes is not None and classes.dtype.kind not in "biuf"  # labels a StringIndexer named

    def statistics(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            rows = []
            for (unit, repeat), group in batch.groupby([_UNIT, _REPEAT], sort=False):
                y, prediction = group[target].to_numpy(), group[_PREDICTION].to_numpy()
                responses = {"predict": classes[prediction.astype(int)] if indexed else prediction}
                if classes is not None and not indexed:
                    y = y.astype(float)
                if has_probability:
                    responses["predict_proba"] = np.stack(group[_PROBABILITY].to_numpy())
                targets = Targets(None, y, None, center)
                sums = [
                    SCORES[name].statistics(responses[SCORES[name].response][None], targets, classes)[0]
                    for name in plan.scorer_names
                ]
                rows.append([unit, repeat, *np.concatenate(sums), 0, 0, 0])
                if (unit, repeat) == (0, 0):  # the rows each copy permutes, counted once, in the baseline's counts
                    rows.append([BASELINE, BASELINE, *np.zeros(len(plan.statistic_names) - 3), len(y), 0, 0])
            yield pd.DataFrame(rows, columns=KEYS + plan.statistic_names)

    return statistics
