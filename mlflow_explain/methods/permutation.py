"""Permutation importance, evaluated on many permuted copies per predict call.

Same shuffles, scores and result as ``sklearn.inspection.permutation_importance`` for the same
``random_state``, ``n_repeats`` and ``max_samples``; the difference is that the permuted copies
of the data are stacked into large batches (sized to a memory budget), so the model is called
once per batch instead of once per feature and repeat, the unpermuted baseline rides along in the
first batch, common scores are computed for a whole batch at once from the scorer table
(``permutation_scoring``), and a Pipeline with verified row-wise, column-by-column preprocessing is
transformed only once (``permuted_copies``, ``pipeline_split``). The draws, the batch sizes and the
scores are those the Spark engine uses on each partition (``permutation_batches``).
"""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from ..data import column_names
from ..results import PermutationResult
from .permutation_batches import PermutationBatches, draw_seed, draw_shuffles
from .permutation_scoring import BatchPredictions, scorers
from .permuted_copies import evaluation_space

logger = logging.getLogger(__name__)

# Below this many permuted values per worker, a second predict call costs more than it saves
# (a random forest on 90 rows x 10 features x 5 repeats ran 2x slower on two threads).
_MIN_CELLS_PER_WORKER = 2**18


def permutation_importance(
    model: Any,
    X: pd.DataFrame | np.ndarray,
    y: np.ndarray,
    *,
    scoring: str | Callable | Sequence | Mapping | None = None,
    n_repeats: int = 5,
    random_state: int | np.random.RandomState | None = 0,
    max_samples: float | int = 1.0,
    sample_weight: np.ndarray | None = None,
    feature_groups: Mapping[str, Sequence] | None = None,
    feature_names: Sequence[str] | None = None,
    n_jobs: int = 1,
    memory_budget_mb: float = 512,
    split_pipeline: bool = True,
) -> PermutationResult:
    """Permutation importance of each feature (or feature group) for one or several scorers.

    Parameters
    ----------
    model : fitted estimator
        Anything with the methods the scorers call (``predict``, ``predict_proba``...).
    X : DataFrame or ndarray of shape (n_samples, n_features)
        Validation rows; DataFrame columns of any dtype are permuted as they are.
    y : ndarray of shape (n_samples,)
        Targets.
    scoring : str, callable, list or dict, default=None
        scikit-learn scorer name(s) or ``scorer(estimator, X, y)`` callables; None means
        accuracy for classifiers and R^2 otherwise. The first one is the primary scorer.
    n_repeats : int, default=5
        Times each feature is shuffled.
    random_state : int, RandomState or None, default=0
        Seed of the shuffles; drawn once up front, as scikit-learn does.
    max_samples : int or float, default=1.0
        Rows drawn (without replacement) for the permuted scores: a count or a fraction.
    sample_weight : ndarray of shape (n_samples,), default=None
        Weights passed to the scorers.
    feature_groups : mapping of name to columns, default=None
        Columns permuted together (with one shuffle) and reported as one feature.
    feature_names : sequence of str, default=None
        Names of the columns of ``X``; default its column names (x0, x1, ... for an array).
    n_jobs : int, default=1
        Parallel workers (threads) evaluating batches; -1 means all cores. Small jobs (under
        about 260,000 permuted values per worker) use fewer. Results do not depend on it.
    memory_budget_mb : float, default=512
        Memory allowed for the permuted copies evaluated in one predict call, over all workers.
    split_pipeline : bool, default=True
        For a Pipeline whose preprocessing is verified row-wise and column-by-column, transform
        the rows once and permute the transformed columns of each raw column together (same
        result, far fewer transforms); False always re-runs the whole Pipeline on every copy.

    Returns
    -------
    PermutationResult
        Importances of shape (n_features, n_repeats) per scorer: baseline minus permuted score;
        ``path`` and ``path_reason`` say where the copies were evaluated and why.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.linear_model import Ridge
    >>> X, y = load_diabetes(return_X_y=True)
    >>> result = permutation_importance(Ridge().fit(X, y), X, y, n_repeats=3)
    >>> result.mean("r2").shape
    (10,)
    """
    columns = [str(name) for name in feature_names] if feature_names is not None else column_names(X)
    units, unit_names = permutation_units(columns, feature_groups or {})
    named_scorers = scorers(model, scoring)
    row_positions, shuffles = draw_shuffles(draw_seed(random_state), X.shape[0], n_repeats, max_samples)
    space = evaluation_space(model, X, units, memory_budget_mb if split_pipeline else None)
    logger.info("permutation importance: %s: %s", space.path, space.reason)
    n_cells = (1 + len(units) * n_repeats) * len(row_positions) * space.X.shape[1]
    workers = _n_workers(n_jobs, n_cells)
    batches = PermutationBatches.sized(model, space, row_positions, shuffles, workers, memory_budget_mb)
    everything, sampled = batches.targets(X, y, sample_weight)

    def score(predictions: BatchPredictions, baseline_first: bool) -> dict[str, np.ndarray]:
        return {
            name: scorer.score_blocks(predictions, baseline_first, everything, sampled)
            for name, scorer in named_scorers.items()
        }

    progress = tqdm(batches.batches, desc="permutation importance", unit="batch", disable=None, leave=False)
    if workers == 1:  # joblib's set-up costs more than a small job's whole predict
        batch_scores = [batches.evaluate(batch, score, frame=False) for batch in progress]
    else:
        batch_scores = Parallel(n_jobs=workers, prefer="threads")(
            delayed(batches.evaluate)(batch, score) for batch in progress
        )
    scores = {name: np.concatenate([batch[name] for batch in batch_scores]) for name in named_scorers}
    baseline = {name: float(scores[name][0]) for name in named_scorers}
    return PermutationResult(
        feature_names=unit_names,
        scorer_names=list(named_scorers),
        baseline_scores=baseline,
        importances={name: baseline[name] - scores[name][1:].reshape(len(units), n_repeats) for name in named_scorers},
        n_rows=len(row_positions),
        n_repeats=n_repeats,
        copies_per_call=batches.copies_per_call,
        n_predict_calls=len(batches.batches),
        path=space.path,
        path_reason=space.reason,
    )


def permutation_units(columns: list[str], groups: Mapping[str, Sequence]) -> tuple[list[list[int]], list[str]]:
    """Column positions permuted together, with their names: one per ungrouped column or group, in column order."""
    grouped: dict[int, str] = {}
    for name, members in groups.items():
        members = [members] if isinstance(members, str) else list(members)
        if not members:
            raise ValueError(f"Feature group {name!r} is empty.")
        for member in members:
            position = _column_position(member, columns, name)
            if position in grouped:
                raise ValueError(
                    f"Column {columns[position]!r} is in two feature groups: {grouped[position]!r} and {name!r}."
                )
            grouped[position] = name
    units, names, seen = [], [], set()
    for position, column in enumerate(columns):
        group = grouped.get(position)
        if group is None:
            units.append([position])
            names.append(column)
        elif group not in seen:
            seen.add(group)
            units.append([p for p, g in grouped.items() if g == group])
            names.append(str(group))
    return units, names


def _column_position(member: Any, columns: list[str], group: str) -> int:
    if isinstance(member, numbers.Integral) and 0 <= member < len(columns):
        return int(member)
    if str(member) in columns:
        return columns.index(str(member))
    raise ValueError(f"Feature group {group!r} names column {member!r}, which is not in the data.")


def _n_workers(n_jobs: int, n_cells: int) -> int:
    """Threads to use: n_jobs (negative counts back from all cores), but one while the permuted
    values are too few to pay for a second predict call."""
    wanted = max(1, (os.cpu_count() or 1) + 1 + n_jobs if n_jobs < 0 else n_jobs)
    return max(1, min(wanted, n_cells // _MIN_CELLS_PER_WORKER))
