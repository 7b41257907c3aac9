"""Permutation importance from per-partition sufficient statistics (pure pandas and numpy).

The data is split into partitions that never exchange rows. Partition ``p`` shuffles only its
own rows, with ``RandomState(seed + p)`` drawing, exactly as scikit-learn draws them, first the
row subsample (``max_samples``) and then one shuffle per repeat applied to the column permuted
so far; so repeat ``r`` of partition ``p`` is fixed by (seed, p, r), and a single partition gets
the very shuffles of ``sklearn.inspection.permutation_importance``. Every partition returns
sums (squared and absolute errors, targets and squared targets, correct predictions, log-loss)
and counts per permuted unit and repeat; the scores of the whole data are computed from their
totals, so rows never leave their partition.

The same :meth:`PermutationPlan.statistics` runs inside Spark's ``mapInPandas`` and in
:func:`permutation_importance_partitions`, the single-process reference engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.utils import check_random_state
from sklearn.utils.random import sample_without_replacement

from ..data import take_rows
from ..errors import InvalidInputError
from ..results import PermutationResult

KEYS = ["unit", "repeat"]
BASELINE = -1  # unit and repeat of the unpermuted rows
_MAX_STATISTIC = "copies_per_call"  # aggregated with max; every other statistic with sum


def combiner(statistic: str) -> str:
    """How partitions' values of ``statistic`` are combined: "sum", or "max" for copies per call."""
    return "max" if statistic == _MAX_STATISTIC else "sum"


def _r2(totals: pd.Series) -> float:
    total_squares = totals["sum_y2"] - totals["sum_y"] ** 2 / totals["n"]
    if total_squares <= 0:  # constant target: scikit-learn's convention
        return 1.0 if totals["sse"] == 0 else 0.0
    return float(1.0 - totals["sse"] / total_squares)


@dataclasses.dataclass(frozen=True)
class _Scorer:
    response: str
    statistics: tuple[str, ...]
    score: Callable[[pd.Series], float]


SCORERS = {
    "r2": _Scorer("predict", ("n", "sum_y", "sum_y2", "sse"), _r2),
    "neg_mean_squared_error": _Scorer("predict", ("n", "sse"), lambda t: -t["sse"] / t["n"]),
    "neg_root_mean_squared_error": _Scorer("predict", ("n", "sse"), lambda t: -np.sqrt(t["sse"] / t["n"])),
    "neg_mean_absolute_error": _Scorer("predict", ("n", "sae"), lambda t: -t["sae"] / t["n"]),
    "accuracy": _Scorer("predict", ("n", "correct"), lambda t: t["correct"] / t["n"]),
    "neg_log_loss": _Scorer("predict_proba", ("n", "log_loss_sum"), lambda t: -t["log_loss_sum"] / t["n"]),
}


def _log_loss_sum(y: np.ndarray, probabilities: np.ndarray, classes: np.ndarray) -> float:
    """Sum over rows of -log(probability of the true class), normalised and clipped as scikit-learn does."""
    probabilities = np.asarray(probabilities, dtype=float)
    eps = np.finfo(probabilities.dtype).eps
    probabilities = np.clip(probabilities, eps, 1 - eps)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    columns = pd.Index(classes).get_indexer(y)
    return float(-np.log(probabilities[np.arange(len(y)), columns]).sum())


_STATISTICS: dict[str, Callable[[np.ndarray, dict[str, np.ndarray], np.ndarray], float]] = {
    "n": lambda y, r, c: float(len(y)),
    "sum_y": lambda y, r, c: float(np.sum(y.astype(float))),
    "sum_y2": lambda y, r, c: float(np.dot(y.astype(float), y.astype(float))),
    "sse": lambda y, r, c: float(np.sum((y.astype(float) - r["predict"].astype(float)) ** 2)),
    "sae": lambda y, r, c: float(np.sum(np.abs(y.astype(float) - r["predict"].astype(float)))),
    "correct": lambda y, r, c: float(np.sum(r["predict"] == y)),
    "log_loss_sum": lambda y, r, c: _log_loss_sum(y, r["predict_proba"], c),
}


@dataclasses.dataclass(frozen=True)
class PermutationPlan:
    """What every partition computes: permuted units, scorers, repeats, seed and memory budget."""

    feature_names: list[str]
    scorer_names: list[str]
    n_repeats: int
    seed: int
    max_samples: float
    memory_budget_mb: float

    @property
    def statistic_names(self) -> list[str]:
        names = {name for scorer in self.scorer_names for name in SCORERS[scorer].statistics}
        return [name for name in _STATISTICS if name in names] + ["predict_calls", _MAX_STATISTIC]

    @property
    def responses(self) -> list[str]:
        return sorted({SCORERS[scorer].response for scorer in self.scorer_names})

    def statistics(self, model: Any, X: pd.DataFrame | np.ndarray, y: np.ndarray, partition: int) -> pd.DataFrame:
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

        Returns
        -------
        DataFrame
            Columns ``unit``, ``repeat`` and :attr:`statistic_names`.
        """
        if len(y) == 0:
            return pd.DataFrame(columns=KEYS + self.statistic_names)
        classes = np.asarray(getattr(model, "classes_", []))
        rows, orders = partition_shuffles(self.seed, partition, len(y), self.n_repeats, self.max_samples)
        X_rows, y_rows = take_rows(X, rows), y[rows]
        jobs = [(unit, repeat) for unit in range(len(self.feature_names)) for repeat in range(self.n_repeats)]
        per_call = _copies_per_call(X_rows, self.memory_budget_mb, len(jobs))
        records = [self._record(BASELINE, BASELINE, y, self._respond(model, X), classes)]
        for start in range(0, len(jobs), per_call):
            batch = jobs[start : start + per_call]
            responses = self._respond(
                model, _permuted_copies(X_rows, [(unit, orders[repeat]) for unit, repeat in batch])
            )
            n = len(y_rows)
            for k, (unit, repeat) in enumerate(batch):
                copy = {name: values[k * n : (k + 1) * n] for name, values in responses.items()}
                records.append(self._record(unit, repeat, y_rows, copy, classes))
        frame = pd.DataFrame(records, columns=KEYS + self.statistic_names).fillna(0.0)
        frame.loc[0, ["predict_calls", _MAX_STATISTIC]] = [1 + -(-len(jobs) // per_call), per_call]
        return frame

    def _respond(self, model: Any, X: Any) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(model, name)(X)) for name in self.responses}

    def _record(self, unit: int, repeat: int, y: np.ndarray, responses: dict, classes: np.ndarray) -> dict:
        record = {"unit": unit, "repeat": repeat}
        for name in self.statistic_names[:-2]:
            record[name] = _STATISTICS[name](y, responses, classes)
        return record

    def result(self, totals: pd.DataFrame) -> PermutationResult:
        """Scores of the whole data from the summed statistics (one row per unit and repeat)."""
        totals = totals.set_index(KEYS).sort_index()
        baseline_totals = totals.loc[(BASELINE, BASELINE)]
        baseline = {name: float(SCORERS[name].score(baseline_totals)) for name in self.scorer_names}
        importances = {name: np.empty((len(self.feature_names), self.n_repeats)) for name in self.scorer_names}
        for (unit, repeat), row in totals.drop(index=(BASELINE, BASELINE)).iterrows():
            for name in self.scorer_names:
                importances[name][int(unit), int(repeat)] = baseline[name] - SCORERS[name].score(row)
        return PermutationResult(
            feature_names=list(self.feature_names),
            scorer_names=list(self.scorer_names),
            baseline_scores=baseline,
            importances=importances,
            n_rows=int(totals.loc[(0, 0), "n"]),
            n_repeats=self.n_repeats,
            copies_per_call=int(baseline_totals[_MAX_STATISTIC]),
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
        One permuted unit per feature, in the model's column order.
    scoring : str, list of str or None, default=None
        Scorers computable from sums: see ``SCORERS``; None means accuracy or R^2, as in the core.
    n_repeats, random_state : int
        As in :func:`mlflow_explain.methods.permutation.permutation_importance`; the seed is drawn
        from ``random_state`` as scikit-learn draws it.
    max_samples : float, default=1.0
        Fraction of each partition's rows used for the permuted scores.
    feature_groups : mapping, default=None
        Not supported by this engine; must be empty.
    memory_budget_mb : float, default=512
        Memory for the permuted copies of one partition evaluated in one predict call.

    Returns
    -------
    PermutationPlan

    Raises
    ------
    InvalidInputError
        On a scorer that is not a sum over rows, feature groups, or a row count as ``max_samples``.
    """
    if scoring is None:
        scoring = "accuracy" if is_classifier(model) else "r2"
    names = [scoring] if isinstance(scoring, str) else scoring
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) and name in SCORERS for name in names):
        raise InvalidInputError(
            f"permutation.scoring {scoring!r} cannot be computed from per-partition sums on Spark; "
            f"use one or more of: {', '.join(SCORERS)}."
        )
    if feature_groups:
        raise InvalidInputError("permutation.feature_groups is not supported by the Spark engine; leave it empty.")
    if not isinstance(max_samples, float):
        raise InvalidInputError(
            "permutation.max_samples must be a fraction (float) on Spark, where partitions are sampled, "
            f"not {max_samples!r}."
        )
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max + 1))
    return PermutationPlan(list(map(str, feature_names)), list(names), n_repeats, seed, max_samples, memory_budget_mb)


def partition_shuffles(
    seed: int, partition: int, n_rows: int, n_repeats: int, max_samples: float
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rows a partition uses and, per repeat, the order of its permuted column (scikit-learn's scheme)."""
    random_state = np.random.RandomState((seed + partition) % 2**32)
    n_used = int(max_samples * n_rows)
    rows = (
        sample_without_replacement(n_rows, n_used, random_state=random_state) if n_used < n_rows else np.arange(n_rows)
    )
    shuffle, order, orders = np.arange(len(rows)), np.arange(len(rows)), []
    for _ in range(n_repeats):
        random_state.shuffle(shuffle)
        order = order[shuffle]
        orders.append(order)
    return rows, orders


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
    statistics = [plan.statistics(model, X, y, partition) for partition, (X, y) in enumerate(partitions)]
    return plan.result(aggregate(pd.concat(statistics, ignore_index=True)))


def _copies_per_call(X: pd.DataFrame | np.ndarray, budget_mb: float, n_jobs: int) -> int:
    size = X.memory_usage(deep=True, index=False).sum() if isinstance(X, pd.DataFrame) else X.nbytes
    return int(max(1, min(n_jobs, budget_mb * 2**20 // max(2 * int(size), 1))))


def _permuted_copies(X: pd.DataFrame | np.ndarray, copies: list[tuple[int, np.ndarray]]) -> pd.DataFrame | np.ndarray:
    """Copies of X stacked vertically, copy k with column ``copies[k][0]`` in row order ``copies[k][1]``."""
    if isinstance(X, np.ndarray):
        stacked = np.tile(X, (len(copies), 1))
        for k, (column, order) in enumerate(copies):
            stacked[k * len(X) : (k + 1) * len(X), column] = X[order, column]
        return stacked
    frames = []
    for column, order in copies:
        frame = X.reset_index(drop=True)
        name = frame.columns[column]
        frame[name] = frame[name].take(order).reset_index(drop=True)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
