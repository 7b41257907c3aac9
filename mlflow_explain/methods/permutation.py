"""Permutation importance, evaluated on many permuted copies per predict call.

Same shuffles, scores and result as ``sklearn.inspection.permutation_importance`` for the same
``random_state``, ``n_repeats`` and ``max_samples``; the difference is that the permuted copies
of the data are stacked into large batches (sized to a memory budget), so the model is called
once per batch instead of once per feature and repeat.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import is_classifier
from sklearn.metrics import get_scorer
from sklearn.utils import check_random_state
from sklearn.utils.random import sample_without_replacement
from tqdm.auto import tqdm

from ..data import column_names, take_rows
from ..results import PermutationResult

_RESPONSE_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")


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
        Parallel workers (threads) evaluating batches.
    memory_budget_mb : float, default=512
        Memory allowed for the permuted copies evaluated in one predict call, over all workers.

    Returns
    -------
    PermutationResult
        Importances of shape (n_features, n_repeats) per scorer: baseline minus permuted score.

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
    units, unit_names = _permutation_units(columns, feature_groups or {})
    scorers = _scorers(model, scoring)
    n_rows = X.shape[0]
    random_seed = check_random_state(random_state).randint(np.iinfo(np.int32).max + 1)
    row_positions, shuffles = _shuffles(random_seed, n_rows, n_repeats, max_samples)
    X_rows = take_rows(X, row_positions)
    y_rows = y[row_positions]
    weight_rows = None if sample_weight is None else sample_weight[row_positions]

    baseline = {name: _score(scorer, model, X, y, sample_weight) for name, scorer in scorers.items()}
    jobs = [(unit, repeat) for unit in range(len(units)) for repeat in range(n_repeats)]
    workers = _n_workers(n_jobs)
    per_call = _copies_per_call(X_rows, len(jobs), memory_budget_mb / workers)
    batches = [jobs[start:start + per_call] for start in range(0, len(jobs), per_call)]

    def score_batch(batch):
        copies = [(units[unit], shuffles[repeat]) for unit, repeat in batch]
        predictions = _BatchPredictions(model, _stack_copies(X_rows, copies), len(row_positions))
        return [
            {name: _score(scorer, predictions.view(k), X_rows, y_rows, weight_rows) for name, scorer in scorers.items()}
            for k in range(len(batch))
        ]

    progress = tqdm(batches, desc="permutation importance", unit="batch", disable=None, leave=False)
    batch_scores = Parallel(n_jobs=workers, prefer="threads")(delayed(score_batch)(batch) for batch in progress)
    importances = {name: np.empty((len(units), n_repeats)) for name in scorers}
    for batch, scores in zip(batches, batch_scores, strict=True):
        for (unit, repeat), score in zip(batch, scores, strict=True):
            for name in scorers:
                importances[name][unit, repeat] = baseline[name] - score[name]
    return PermutationResult(
        feature_names=unit_names,
        scorer_names=list(scorers),
        baseline_scores=baseline,
        importances=importances,
        n_rows=len(row_positions),
        n_repeats=n_repeats,
        copies_per_call=per_call,
        n_predict_calls=len(batches),
    )


def _permutation_units(columns: list[str], groups: Mapping[str, Sequence]) -> tuple[list[list[int]], list[str]]:
    """Column positions permuted together, with their names: one per ungrouped column or group."""
    grouped: dict[int, str] = {}
    for name, members in groups.items():
        members = [members] if isinstance(members, str) else list(members)
        if not members:
            raise ValueError(f"Feature group {name!r} is empty.")
        for member in members:
            position = _column_position(member, columns, name)
            if position in grouped:
                raise ValueError(f"Column {columns[position]!r} is in two feature groups: {grouped[position]!r} and {name!r}.")
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


def _scorers(model: Any, scoring: Any) -> dict[str, Callable]:
    if scoring is None:
        scoring = "accuracy" if is_classifier(model) else "r2"
    if isinstance(scoring, Mapping):
        return {str(name): get_scorer(s) if isinstance(s, str) else s for name, s in scoring.items()}
    if isinstance(scoring, str) or callable(scoring):
        scoring = [scoring]
    return {
        (s if isinstance(s, str) else getattr(s, "__name__", f"scorer{i}")): get_scorer(s) if isinstance(s, str) else s
        for i, s in enumerate(scoring)
    }


def _shuffles(seed: int, n_rows: int, n_repeats: int, max_samples: float | int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rows used and, per repeat, the row order of a permuted column, exactly as sklearn draws them.

    sklearn gives every column a RandomState seeded with ``seed``, draws the row subsample from it,
    then shuffles an index array in place once per repeat and applies it to the column permuted
    so far, so repeat r sees the composition of the first r shuffles.
    """
    if not isinstance(max_samples, numbers.Integral):
        max_samples = int(max_samples * n_rows)
    elif max_samples > n_rows:
        raise ValueError(f"max_samples={max_samples} is more than the {n_rows} validation rows.")
    random_state = np.random.RandomState(seed)
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


def _n_workers(n_jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) + 1 + n_jobs if n_jobs < 0 else n_jobs)


def _copies_per_call(X: pd.DataFrame | np.ndarray, n_jobs: int, budget_mb: float) -> int:
    """Permuted copies that fit in the budget, counting the copy and the model's working memory."""
    copy_bytes = X.memory_usage(deep=True, index=False).sum() if isinstance(X, pd.DataFrame) else X.nbytes
    per_copy = 2 * max(int(copy_bytes), 1)
    return int(min(n_jobs, max(1, budget_mb * 2**20 // per_copy)))


def _stack_copies(X: pd.DataFrame | np.ndarray, copies: list[tuple[list[int], np.ndarray]]) -> pd.DataFrame | np.ndarray:
    """Stack copies of X, copy k having columns ``copies[k][0]`` reordered by ``copies[k][1]``."""
    n_rows = X.shape[0]
    if isinstance(X, np.ndarray):
        stacked = np.tile(X, (len(copies), 1))
        for k, (columns, order) in enumerate(copies):
            stacked[k * n_rows:(k + 1) * n_rows, columns] = X[order][:, columns]
        return stacked
    identity = np.tile(np.arange(n_rows), len(copies))
    data = {}
    for position, name in enumerate(X.columns):
        take = identity
        for k, (columns, order) in enumerate(copies):
            if position in columns:
                take = take.copy() if take is identity else take
                take[k * n_rows:(k + 1) * n_rows] = order
        data[name] = X.iloc[:, position].array.take(take)
    return pd.DataFrame(data, columns=X.columns)


def _score(scorer: Callable, model: Any, X: Any, y: np.ndarray, sample_weight: np.ndarray | None) -> float:
    if sample_weight is not None:
        return scorer(model, X, y, sample_weight=sample_weight)
    return scorer(model, X, y)


class _BatchPredictions:
    """Predictions of the model on a stack of copies, computed once per response method."""

    def __init__(self, model: Any, stacked: Any, n_rows: int):
        self.model, self.stacked, self.n_rows = model, stacked, n_rows
        self._cache: dict[str, np.ndarray] = {}

    def response(self, method: str, copy: int) -> np.ndarray:
        if method not in self._cache:
            self._cache[method] = getattr(self.model, method)(self.stacked)
        return self._cache[method][copy * self.n_rows:(copy + 1) * self.n_rows]

    def view(self, copy: int) -> _CopyView:
        return _CopyView(self, copy)


class _CopyView:
    """Stands in for the model inside a scorer: its response methods return one copy's rows.

    Everything else (classes_, tags, attributes a custom scorer reads) comes from the model, so
    scikit-learn's scorers treat it exactly as they treat the model.
    """

    def __init__(self, batch: _BatchPredictions, copy: int):
        self._batch, self._copy = batch, copy

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._batch.model, name)
        if name not in _RESPONSE_METHODS:
            return attribute

        def respond(X: Any, *args: Any, **kwargs: Any) -> np.ndarray:
            return self._batch.response(name, self._copy)

        respond.__name__ = name
        return respond
