"""Which permuted copies are evaluated, in which predict calls: the seeded draws and the batches.

Shared by both engines: the local engine draws from all validation rows, the Spark engine from
each partition's rows (partition ``p`` seeded with ``seed + p``). The seed is drawn once up
front from ``random_state`` and the shuffles from it exactly as
``sklearn.inspection.permutation_importance`` draws them, so one set of rows gets scikit-learn's
very permutations.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.utils import check_random_state
from sklearn.utils.random import sample_without_replacement

from ..data import take_rows
from .permutation_scoring import Targets
from .permuted_copies import BatchPredictions, EvaluationSpace

# One block of a batch: None for the unpermuted rows (the baseline), else (unit, repeat).
Job = tuple[int, int] | None
T = TypeVar("T")


def draw_seed(random_state: int | np.random.RandomState | None) -> int:
    """The one seed of every shuffle, drawn from ``random_state`` as scikit-learn draws it."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max + 1))


def draw_shuffles(
    seed: int, n_rows: int, n_repeats: int, max_samples: float | int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rows used and, per repeat, the row order of a permuted column, exactly as scikit-learn draws them.

    scikit-learn gives every column a RandomState seeded with ``seed``, draws the row subsample
    (``max_samples``: a count, or a fraction of ``n_rows``) from it, then shuffles an index array
    in place once per repeat and applies it to the column permuted so far, so repeat r sees the
    composition of the first r shuffles. Seeds past 2**32 - 1 (``seed + p`` on Spark) wrap around.
    """
    if not isinstance(max_samples, numbers.Integral):
        max_samples = int(max_samples * n_rows)
    elif max_samples > n_rows:
        raise ValueError(f"max_samples={max_samples} is more than the {n_rows} validation rows.")
    random_state = np.random.RandomState(seed % 2**32)
    if max_samples < n_rows:
        rows = sample_without_replacement(n_rows, max_samples, random_state=random_state)
    else:
        rows = np.arange(n_rows)
    shuffling = np.arange(len(rows))
    order = np.arange(len(rows))
    shuffles = []
    for _ in range(n_repeats):
        random_state.shuffle(shuffling)
        order = order[shuffling]
        shuffles.append(order)
    return rows, shuffles


def copies_per_call(copy_bytes: int, n_copies: int, workers: int, budget_mb: float) -> int:
    """Copies stacked per predict call: what fits in the budget (counting the copy and the model's
    working memory) split over the workers, and few enough that every worker gets a batch."""
    per_copy = 2 * max(copy_bytes, 1)
    fits = max(1, int(budget_mb * 2**20 / workers // per_copy))
    return int(min(fits, -(-n_copies // workers)))


def nbytes(X: pd.DataFrame | np.ndarray) -> int:
    """Memory held by the values of ``X``."""
    return int(X.memory_usage(deep=True, index=False).sum()) if isinstance(X, pd.DataFrame) else X.nbytes


@dataclasses.dataclass(frozen=True)
class PermutationBatches:
    """Every (unit, repeat) copy of one set of rows, in predict calls of ``copies_per_call`` blocks.

    The unpermuted rows (the baseline) ride in the first call, as block 0.
    """

    model: Any
    space: EvaluationSpace
    row_positions: np.ndarray
    shuffles: list[np.ndarray]
    copies_per_call: int

    @classmethod
    def sized(
        cls,
        model: Any,
        space: EvaluationSpace,
        row_positions: np.ndarray,
        shuffles: list[np.ndarray],
        workers: int,
        memory_budget_mb: float,
    ) -> PermutationBatches:
        """Batches sized to ``memory_budget_mb`` over ``workers`` parallel predict calls."""
        copy_bytes = nbytes(space.X) * len(row_positions) // max(space.X.shape[0], 1)
        n_copies = 1 + len(space.units) * len(shuffles)
        per_call = copies_per_call(copy_bytes, n_copies, workers, memory_budget_mb)
        return cls(model, space, row_positions, shuffles, per_call)

    @property
    def jobs(self) -> list[Job]:
        return [None] + [
            (unit, repeat) for unit in range(len(self.space.units)) for repeat in range(len(self.shuffles))
        ]

    @property
    def batches(self) -> list[list[Job]]:
        jobs = self.jobs
        return [jobs[start : start + self.copies_per_call] for start in range(0, len(jobs), self.copies_per_call)]

    def targets(
        self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None, center: float | None = None
    ) -> tuple[Targets, Targets]:
        """What the baseline (every row) and the copies (the sampled rows) are scored against."""
        rows = self.row_positions
        sampled_weight = None if sample_weight is None else sample_weight[rows]
        return Targets(X, y, sample_weight, center), Targets(take_rows(X, rows), y[rows], sampled_weight, center)

    def evaluate(self, batch: list[Job], score: Callable[[BatchPredictions, bool], T], frame: bool = True) -> T:
        """``score(predictions, baseline_first)`` of the predictions on one batch's stacked blocks.

        ``baseline_first`` says whether block 0 is the unpermuted rows; ``frame``: see EvaluationSpace.stack.
        """
        copies = [None if job is None else (self.space.units[job[0]], self.shuffles[job[1]]) for job in batch]
        stacked, offsets = self.space.stack(self.row_positions, copies, frame=frame)
        predictions = BatchPredictions(self.space.predictor, self.model, stacked, offsets)
        with config_context(skip_parameter_validation=True, assume_finite=self.space.finite):
            return score(predictions, batch[0] is None)
