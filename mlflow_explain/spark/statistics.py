"""Permutation importance from per-partition sufficient statistics (pure pandas and numpy).

The data is split into partitions that never exchange rows. Partition ``p`` runs the local
engine's permutation core on its own rows (``methods.permutation_batches``: the same draws,
seeded with ``seed + p``, the same batches and copies) and returns, per permuted unit and
repeat, the sums of the scorer table (``methods.permutation_scoring.SCORES``) instead of
scores; the scores of the whole data are computed from their totals, so rows never leave their
partition, and a single partition gets the very result of the local engine (and of
``sklearn.inspection.permutation_importance``).

The same :meth:`PermutationPlan.statistics` runs inside Spark's ``mapInPandas`` and in
:func:`permutation_importance_partitions`, the single-process reference engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from ..methods.permutation import permutation_units
from ..methods.permutation_batches import PermutationBatches, draw_seed, draw_shuffles
from ..methods.permutation_scoring import SCORES, BatchPredictions, default_scoring
from ..methods.permuted_copies import evaluation_space
from ..results import PermutationResult

KEYS = ["unit", "repeat"]
BASELINE = -1  # unit and repeat of the unpermuted rows
# Statistics of the partition itself, in its baseline row, and how partitions combine them.
_COUNTS = {"permuted_rows": "sum", "predict_calls": "sum", "copies_per_call": "max"}


def combiner(statistic: str) -> str:
    """How partitions' values of ``statistic`` are combined: "sum", or "max" for copies per call."""
    return _COUNTS.get(statistic, "sum")


def target_center(y: np.ndarray) -> float:
    """A center for the targets' sums (their mean; 0 for labels), shared by every partition."""
    return float(np.mean(y)) if y.dtype.kind in "biuf" and len(y) else 0.0


@dataclasses.dataclass(frozen=True)
class PermutationPlan:
    """What every partition computes: permuted units, scorers, repeats, seed and memory budget."""

    feature_names: list[str]
    scorer_names: list[str]
    n_repeats: int
    seed: int
    max_samples: float
    memory_budget_mb: float
    units: list[list[int]]  # column positions permuted together, one list per name of feature_names

    @property
    def statistic_names(self) -> list[str]:
        """The scorers' statistics, as ``<scorer>:<statistic>``, then the partition's counts."""
        names = [f"{scorer}:{name}" for scorer in self.scorer_names for name in SCORES[scorer].statistic_names]
        return names + list(_COUNTS)

    def statistics(
        self, model: Any, X: pd.DataFrame | np.ndarray, y: np.ndarray, partition: int, center: float
    ) -> pd.DataFrame:
        """Sufficient statistics of one partition: a row per (unit, repeat), the baseline as (-1, -1).

        Parameters
        ----------
        model : fitted estimator
        X : DataFrame or ndarray
            The partition's rows in the layout the model expects.
        y : ndarray
            The partition's targets.
        partition : int
            Index of the partition, which seeds its shuffles.
        center : float
            Subtracted from the targets before their sums; the same for every partition.

        Returns
        -------
        DataFrame
            Columns ``unit``, ``repeat`` and :attr:`statistic_names`.
        """
        if len(y) == 0:
            return pd.DataFrame(columns=KEYS + self.statistic_names)
        space = evaluation_space(model, X, self.units, None)
        rows, shuffles = draw_shuffles(self.seed + partition, len(y), self.n_repeats, self.max_samples)
        batches = PermutationBatches.sized(model, space, rows, shuffles, 1, self.memory_budget_mb)
        everything, sampled = batches.targets(X, y, None, center)
        scores = [SCORES[name] for name in self.scorer_names]

        def statistics(predictions: BatchPredictions, baseline_first: bool) -> np.ndarray:
            return np.hstack([s.block_statistics(predictions, baseline_first, everything, sampled) for s in scores])

        frame = pd.DataFrame(
            np.vstack([batches.evaluate(batch, statistics) for batch in batches.batches]),
            columns=self.statistic_names[: -len(_COUNTS)],
        )
        keys = np.array([(BASELINE, BASELINE) if job is None else job for job in batches.jobs])
        frame.insert(0, "unit", keys[:, 0])
        frame.insert(1, "repeat", keys[:, 1])
        for name in _COUNTS:
            frame[name] = 0.0
        frame.loc[0, list(_COUNTS)] = [len(rows), len(batches.batches), batches.copies_per_call]
        return frame

    def result(self, totals: pd.DataFrame) -> PermutationResult:
        """Scores of the whole data from the summed statistics (one row per unit and repeat)."""
        totals = totals.set_index(KEYS).sort_index()
        baseline_totals = totals.loc[(BASELINE, BASELINE)]
        copies = totals.drop(index=(BASELINE, BASELINE))
        baseline, importances = {}, {}
        for name in self.scorer_names:
            columns = [f"{name}:{statistic}" for statistic in SCORES[name].statistic_names]
            score = SCORES[name].score
            baseline[name] = float(score(baseline_totals[columns].to_numpy(dtype=float)))
            permuted = score(copies[columns].to_numpy(dtype=float)).reshape(len(self.units), self.n_repeats)
            importances[name] = baseline[name] - permuted
        return PermutationResult(
            feature_names=list(self.feature_names),
            scorer_names=list(self.scorer_names),
            baseline_scores=baseline,
            importances=importances,
            n_rows=int(baseline_totals["permuted_rows"]),
            n_repeats=self.n_repeats,
            copies_per_call=int(baseline_totals["copies_per_call"]),
            n_predict_calls=int(baseline_totals["predict_calls"]),
        )


def plan_permutation(
    model: Any,
    feature_names: Sequence[str],
    *,
    scoring: Any = None,
    n_repeats: int = 5,
    random_state: int = 0,
    max_samples: float | int = 1.0,
    feature_groups: Any = None,
    memory_budget_mb: float = 512,
) -> PermutationPlan:
    """Check the permutation options the partitioned engine supports and fix its seed.

    Parameters
    ----------
    model : fitted estimator
    feature_names : sequence of str
        The model's columns, in its order.
    scoring : str, list of str or None, default=None
        Scorers computable from sums: see ``methods.permutation_scoring.SCORES``; None means
        accuracy or R^2, as in the local engine.
    n_repeats, random_state : int
        As in :func:`mlflow_explain.methods.permutation.permutation_importance`; the seed is drawn
        from ``random_state`` as scikit-learn draws it.
    max_samples : float, default=1.0
        Fraction of each partition's rows used for the permuted scores.
    feature_groups : mapping of name to columns, default=None
        Columns permuted together and reported as one feature, as in the local engine.
    memory_budget_mb : float, default=512
        Memory for the permuted copies of one partition evaluated in one predict call.

    Returns
    -------
    PermutationPlan

    Raises
    ------
    InvalidInputError
        On a scorer that is not a sum over rows, a bad feature group, or a row count as ``max_samples``.
    """
    if scoring is None:
        scoring = default_scoring(model)
    names = [scoring] if isinstance(scoring, str) else scoring
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) and name in SCORES for name in names):
        refused = [name for name in names if name not in SCORES] if isinstance(names, (list, tuple)) else [names]
        raise InvalidInputError(
            f"permutation.scoring {', '.join(map(repr, refused))} cannot be computed from per-partition sums on "
            f"Spark (the local engine computes it with scikit-learn's scorer); use one or more of: {', '.join(SCORES)}."
        )
    if not isinstance(max_samples, float):
        raise InvalidInputError(
            "permutation.max_samples must be a fraction (float) on Spark, where partitions are sampled, "
            f"not {max_samples!r}."
        )
    try:
        units, unit_names = permutation_units(list(map(str, feature_names)), feature_groups or {})
    except ValueError as err:
        raise InvalidInputError(str(err)) from err
    return PermutationPlan(
        unit_names, list(names), n_repeats, draw_seed(random_state), max_samples, memory_budget_mb, units
    )


def aggregate(statistics: pd.DataFrame) -> pd.DataFrame:
    """Totals per (unit, repeat) of per-partition statistics (pandas; Spark does the same in the cluster)."""
    how = {name: combiner(name) for name in statistics.columns if name not in KEYS}
    return statistics.groupby(KEYS, as_index=False).agg(how)


def permutation_importance_partitions(
    model: Any, partitions: Iterable[tuple[Any, np.ndarray]], plan: PermutationPlan
) -> PermutationResult:
    """The single-process engine: the partitioned scheme run over ``(X, y)`` partitions in order.

    Parameters
    ----------
    model : fitted estimator
    partitions : iterable of (X, y)
        The partitions in order; partition ``p`` is seeded with ``plan.seed + p``.
    plan : PermutationPlan
        From :func:`plan_permutation`.

    Returns
    -------
    PermutationResult
    """
    partitions = list(partitions)
    center = target_center(np.concatenate([y for _, y in partitions]))
    statistics = [plan.statistics(model, X, y, partition, center) for partition, (X, y) in enumerate(partitions)]
    return plan.result(aggregate(pd.concat(statistics, ignore_index=True)))
