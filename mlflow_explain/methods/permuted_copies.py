"""Where permuted copies are built and predicted: the model's own input, or a Pipeline's transformed rows.

An :class:`EvaluationSpace` holds the validation rows in the input space of whatever predicts
them (the model, or a Pipeline's final estimator after the preprocessing ran once), the columns
each permutation unit moves in that space, and which path was taken and why. It stacks a
batch of permuted copies into one array (or frame) for one predict call per response method.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from ..data import take_columns
from ..models import response
from .pipeline_split import CannotSplit, split_for_permutation

logger = logging.getLogger(__name__)

# Estimators whose response methods check a frame's column names, then work on its values alone.
_NAME_CHECKING_MODULES = (
    "sklearn.linear_model.",
    "sklearn.svm.",
    "sklearn.tree.",
    "sklearn.ensemble._forest",
    "sklearn.neighbors.",
    "sklearn.naive_bayes",
    "sklearn.discriminant_analysis",
)
_RESPONSE_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")

# One block of a batch: None for the unpermuted rows, else (columns permuted together, row order).
Copy = tuple[list[int], np.ndarray] | None


@dataclasses.dataclass
class EvaluationSpace:
    """Validation rows as ``predictor`` takes them, and the columns each permutation unit moves.

    ``X`` is a frame only when its columns differ in dtype; a frame of one numeric dtype is held
    as an array and handed to the predictor as a frame of ``frame_columns`` again, unless
    ``values_suffice``: the predictor only checks a frame's column names against those it was
    fitted on (which ``frame_columns`` are) before it works on the values.
    """

    predictor: Any
    X: pd.DataFrame | np.ndarray
    units: list[list[int]]
    path: str
    reason: str
    frame_columns: pd.Index | None = None
    values_suffice: bool = False
    _buffers: threading.local = dataclasses.field(default_factory=threading.local, repr=False)

    @functools.cached_property
    def finite(self) -> bool:
        """Whether every value of ``X`` is a finite number, so that every permuted copy is too.

        Then the predictor's own check of each stacked batch for NaN and infinity (a pass over all
        its values) can be skipped: it would pass.
        """
        return isinstance(self.X, np.ndarray) and self.X.dtype.kind in "biuf" and bool(np.isfinite(self.X).all())

    def stack(
        self, row_positions: np.ndarray, copies: list[Copy], frame: bool = True
    ) -> tuple[pd.DataFrame | np.ndarray, list[int]]:
        """All blocks one above the other, and the row offsets where each block starts (plus the end).

        ``frame=False`` hands an array (not a frame of ``frame_columns``) to a predictor whose
        ``values_suffice``: its check of a frame's column names costs more than a small batch's predict.

        A None block is every row of ``X``; a copy block is the rows at ``row_positions`` with
        its columns taken in its own row order.
        """
        sizes = [self.X.shape[0] if copy is None else len(row_positions) for copy in copies]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        if isinstance(self.X, pd.DataFrame):
            identity = np.concatenate(
                [np.arange(self.X.shape[0]) if copy is None else row_positions for copy in copies]
            )
            return self._stack_frame(identity, row_positions, copies, offsets), offsets
        rows = self.X[row_positions]
        stacked = self._buffer(offsets[-1])
        first = 1 if copies and copies[0] is None else 0  # only a batch's first block is ever the baseline
        if first:
            stacked[: offsets[1]] = self.X
        _permute_blocks(stacked[offsets[first] :].reshape(len(copies) - first, *rows.shape), rows, copies[first:])
        if self.frame_columns is not None and (frame or not self.values_suffice):
            return pd.DataFrame(stacked, columns=self.frame_columns, copy=False), offsets
        return stacked, offsets

    def _buffer(self, n_rows: int) -> np.ndarray:
        """A (n_rows, n_columns) array reused by this thread's next batches (fresh pages cost a fault each)."""
        buffer = getattr(self._buffers, "array", None)
        if buffer is None or buffer.shape[0] < n_rows:
            buffer = self._buffers.array = np.empty((n_rows, self.X.shape[1]), dtype=self.X.dtype)
        return buffer[:n_rows]

    def _stack_frame(
        self, identity: np.ndarray, row_positions: np.ndarray, copies: list[Copy], offsets: list[int]
    ) -> pd.DataFrame:
        takes = {position: identity for position in range(self.X.shape[1])}
        for k, copy in enumerate(copies):
            for position in [] if copy is None else copy[0]:
                if takes[position] is identity:
                    takes[position] = identity.copy()
                takes[position][offsets[k] : offsets[k + 1]] = row_positions[copy[1]]
        return take_columns(self.X, [takes[position] for position in range(self.X.shape[1])])


def _permute_blocks(blocks: np.ndarray, rows: np.ndarray, copies: list[Copy]) -> None:
    """Fill ``blocks`` (copies x rows x columns) with ``rows``, each copy's columns in its own row order.

    One-column copies, the common case, are written with one fancy-indexing assignment for all.
    """
    blocks[:] = rows
    single = [k for k, copy in enumerate(copies) if len(copy[0]) == 1]
    if single:
        columns = np.array([copies[k][0][0] for k in single])[:, None]
        orders = np.stack([copies[k][1] for k in single])
        blocks[np.array(single)[:, None], np.arange(rows.shape[0]), columns] = rows[orders, columns]
    for k, (columns, order) in enumerate(copies):
        if len(columns) > 1:
            blocks[k][:, columns] = rows[np.ix_(order, columns)]


def evaluation_space(
    model: Any, X: pd.DataFrame | np.ndarray, units: list[list[int]], split_budget_mb: float | None
) -> EvaluationSpace:
    """The cheapest exact place to evaluate permuted copies of ``X``.

    Parameters
    ----------
    model : fitted estimator
        The model explained.
    X : DataFrame or ndarray
        All validation rows, as the model takes them.
    units : list of list of int
        Raw column positions permuted together, one list per permutation unit.
    split_budget_mb : float or None
        Memory allowed for the rows transformed once by a Pipeline's preprocessing; None never
        splits a Pipeline.

    Returns
    -------
    EvaluationSpace
        ``path`` is "pipeline_transformed_once", "full_pipeline" or "model"; ``reason`` says why.
    """
    if split_budget_mb is not None and isinstance(model, Pipeline):
        try:
            split = split_for_permutation(model, X, split_budget_mb)
        except Exception as err:  # a check that cannot even run is a failed check, never a failed explanation
            why = (
                str(err)
                if isinstance(err, CannotSplit)
                else f"checking the preprocessing failed ({type(err).__name__}: {err})"
            )
            reason = f"every permuted copy runs through the whole Pipeline: {why}"
            logger.warning("permutation importance: %s", reason)
            return _model_space(model, X, units, "full_pipeline", reason)
        return EvaluationSpace(
            split.final_estimator,
            split.X,
            [split.columns_of(unit) for unit in units],
            "pipeline_transformed_once",
            split.reason,
        )
    reason = "the model predicts the permuted copies of its input"
    return _model_space(model, X, units, "full_pipeline" if isinstance(model, Pipeline) else "model", reason)


def _model_space(
    model: Any, X: pd.DataFrame | np.ndarray, units: list[list[int]], path: str, reason: str
) -> EvaluationSpace:
    if isinstance(X, pd.DataFrame) and X.shape[1] and _one_numeric_dtype(X):
        fitted_names = getattr(model, "feature_names_in_", None)
        values_suffice = (
            type(model).__module__.startswith(_NAME_CHECKING_MODULES)
            and fitted_names is not None
            and list(fitted_names) == list(X.columns)
        )
        return EvaluationSpace(
            model, X.to_numpy(), units, path, reason, frame_columns=X.columns, values_suffice=values_suffice
        )
    return EvaluationSpace(model, X, units, path, reason)


def _one_numeric_dtype(X: pd.DataFrame) -> bool:
    dtypes = set(X.dtypes)
    return len(dtypes) == 1 and isinstance(next(iter(dtypes)), np.dtype) and next(iter(dtypes)).kind in "biuf"


class BatchPredictions:
    """The predictor's responses on one stacked batch, computed once per response method."""

    def __init__(self, predictor: Any, model: Any, stacked: Any, offsets: list[int]):
        self.predictor, self.model, self.stacked, self.offsets = predictor, model, stacked, offsets
        self._cache: dict[str, np.ndarray] = {}

    def response(self, method: str) -> np.ndarray:
        """The whole batch's response of ``method`` (predict, predict_proba...)."""
        if method not in self._cache:
            self._cache[method] = np.asarray(self._respond(method))
        return self._cache[method]

    def _respond(self, method: str) -> Any:
        if not (isinstance(self.stacked, np.ndarray) and hasattr(self.predictor, "feature_names_in_")):
            return response(self.predictor, self.stacked, method)
        # The values of the very columns it was fitted on (``values_suffice``, with one worker only:
        # warnings filters are shared by all threads): its warning about missing names does not apply.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return response(self.predictor, self.stacked, method)

    def view(self, block: int) -> _BlockView:
        """A stand-in for the model whose responses are the rows of one block."""
        return _BlockView(self, block)


class _BlockView:
    """Stands in for the model inside a scorer: its response methods return one block's rows.

    Everything else (classes_, tags, attributes a custom scorer reads) comes from the model, so
    scikit-learn's scorers treat it exactly as they treat the model.
    """

    def __init__(self, batch: BatchPredictions, block: int):
        self._batch, self._block = batch, block

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._batch.model, name)
        if name not in _RESPONSE_METHODS:
            return attribute
        start, stop = self._batch.offsets[self._block], self._batch.offsets[self._block + 1]

        def respond(X: Any, *args: Any, **kwargs: Any) -> np.ndarray:
            return self._batch.response(name)[start:stop]

        respond.__name__ = name
        return respond
