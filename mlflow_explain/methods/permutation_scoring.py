"""The scorer table: scores computed from sums over rows, for every block of permuted copies at once.

Each entry of :data:`SCORES` names the response method it reads, the sufficient statistics it
needs (computed for all copies of a batch in one numpy operation, shape (n_copies, n_stats)) and
the formula from statistics to score. Statistics of disjoint sets of rows add up, so the local
engine scores each copy from its own statistics and the Spark engine sums them over partitions
first; on the same rows both give scikit-learn's score, bit for bit on the local engine.

A scorer that is not a sum over rows (``roc_auc``, ``balanced_accuracy``, a callable...) has no
entry: the local engine calls scikit-learn's scorer once per copy, and Spark refuses it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.metrics import get_scorer


class BatchPredictions(Protocol):
    """What the scorers read from a batch: block boundaries, whole responses, and per-block stand-ins."""

    model: Any
    offsets: list[int]

    def response(self, method: str) -> np.ndarray: ...

    def view(self, block: int) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Targets:
    """Rows, targets and weights that blocks of a batch are scored against.

    ``center`` is subtracted from the targets before they are summed (R^2's total sum of squares);
    None means their own (weighted) mean, as scikit-learn centers them. Partitions whose sums are
    added must share one center.
    """

    X: Any
    y: np.ndarray
    sample_weight: np.ndarray | None
    center: float | None = None

    @functools.cached_property
    def y_center(self) -> float:
        if self.center is not None:
            return self.center
        return float(np.average(self.y.astype(float), weights=self.sample_weight))

    @functools.cached_property
    def labels(self) -> np.ndarray:
        return np.unique(self.y)


# statistics(response of shape (n_copies, n_rows[, n_classes]), targets, classes) -> (n_copies, n_stats)
Statistics = Callable[[np.ndarray, Targets, "np.ndarray | None"], np.ndarray]


@dataclasses.dataclass(frozen=True)
class ReducibleScore:
    """A score computed from sums over rows.

    ``statistics`` gives, for every copy, the sums named in ``statistic_names``; the statistics of
    several blocks of rows combine by addition; ``score`` maps (summed) statistics of shape
    (..., n_stats) to scores of shape (...).
    """

    response: str
    statistic_names: tuple[str, ...]
    statistics: Statistics
    score: Callable[[np.ndarray], np.ndarray]
    numeric: bool  # targets and responses must be numbers (regression scores)

    def block_statistics(
        self, predictions: BatchPredictions, baseline_first: bool, everything: Targets, sampled: Targets
    ) -> np.ndarray:
        """Statistics of every block of a batch, shape (n_blocks, n_stats); block 0 is the unpermuted
        rows (scored against ``everything``) if ``baseline_first``, every other block a copy of ``sampled``."""
        response, classes = predictions.response(self.response), getattr(predictions.model, "classes_", None)
        start = predictions.offsets[1] if baseline_first else 0
        n_copies = len(predictions.offsets) - 1 - baseline_first
        copies = response[start:].reshape(n_copies, len(sampled.y), *response.shape[1:])
        parts = [self.statistics(response[None, :start], everything, classes)] if baseline_first else []
        parts.append(self.statistics(copies, sampled, classes))
        return np.concatenate(parts)

    def accepts(self, responses: np.ndarray, targets: Targets, classes: np.ndarray | None) -> bool:
        """Whether scikit-learn's scorer would score these stacked blocks of responses quietly, so the
        table may; otherwise (few rows, labels the model lacks, multi-output...) scikit-learn's own
        scorer runs, with its own warnings and errors."""
        y = targets.y
        if y.ndim != 1 or len(y) < 2:
            return False
        if self.response == "predict_proba":
            return (
                responses.ndim == 2
                and classes is not None
                and responses.shape[1] == len(classes)
                and np.array_equal(targets.labels, classes)  # scikit-learn takes the classes from the targets
                and bool(np.all((responses >= 0) & (responses <= 1)))
            )
        return responses.ndim == 1 and (not self.numeric or (y.dtype.kind in "biuf" and responses.dtype.kind in "biuf"))


def _sums(values: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    """Per-copy (weighted) sums over the rows axis, the operations scikit-learn's averages use.

    The rows of each copy are made contiguous first: numpy adds contiguous values pairwise, as it
    adds scikit-learn's one-dimensional arrays, and strided ones in another order.
    """
    values = np.ascontiguousarray(values if sample_weight is None else values * sample_weight)
    return values.sum(axis=1)


def _total_weight(targets: Targets) -> float:
    return float(len(targets.y)) if targets.sample_weight is None else float(targets.sample_weight.sum())


def _stack(n_copies: int, *columns: Any) -> np.ndarray:
    """Columns (per copy, or one value for all copies) as an (n_copies, n_columns) array."""
    return np.column_stack([np.broadcast_to(np.asarray(column, dtype=float), (n_copies,)) for column in columns])


def _errors(power: int) -> Statistics:
    """Total weight and sum of |y - prediction| ** power."""

    def statistics(response: np.ndarray, targets: Targets, classes: np.ndarray | None) -> np.ndarray:
        errors = targets.y.astype(float) - response
        errors = errors**2 if power == 2 else np.abs(errors)
        return _stack(len(response), _total_weight(targets), _sums(errors, targets.sample_weight))

    return statistics


def _r2_statistics(response: np.ndarray, targets: Targets, classes: np.ndarray | None) -> np.ndarray:
    """Total weight, sums of the centered targets and of their squares, and the squared errors."""
    y = targets.y.astype(float)
    centered = (y - targets.y_center)[None, :]
    return _stack(
        len(response),
        _total_weight(targets),
        _sums(centered, targets.sample_weight)[0],
        _sums(centered**2, targets.sample_weight)[0],
        _sums((y - response) ** 2, targets.sample_weight),
    )


def _r2(totals: np.ndarray) -> np.ndarray:
    """1 - SSE / total sum of squares; a constant target scores 1 if predicted exactly, else 0 (force_finite)."""
    weight, sum_centered, sum_squares, sse = np.moveaxis(totals, -1, 0)
    total_squares = sum_squares - sum_centered * sum_centered / weight
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total_squares > 0, 1 - sse / total_squares, np.where(sse == 0, 1.0, 0.0))


def _correct(response: np.ndarray, targets: Targets, classes: np.ndarray | None) -> np.ndarray:
    """Total weight and (weighted) count of correct predictions."""
    return _stack(len(response), _total_weight(targets), _sums(response == targets.y, targets.sample_weight))


def _log_loss_statistics(response: np.ndarray, targets: Targets, classes: np.ndarray | None) -> np.ndarray:
    """Total weight and sum of -log(probability of the true class), clipped as scikit-learn clips it.

    For two classes scikit-learn reads the positive column only and takes 1 - p for the other class.
    """
    probabilities = response if response.dtype.kind == "f" else response.astype(float)
    columns = pd.Index(classes).get_indexer(targets.y)
    if (columns < 0).any():
        unknown = targets.y[columns < 0][0]
        raise ValueError(f"The target label {unknown!r} is not one of the model's classes {list(classes)}.")
    if probabilities.shape[-1] == 2:
        positive = probabilities[..., 1]
        true_class = np.where(columns == 1, positive, 1 - positive)
    else:
        true_class = probabilities[:, np.arange(len(columns)), columns]
    eps = np.finfo(probabilities.dtype).eps
    losses = -np.log(np.clip(true_class, eps, 1 - eps))
    return _stack(len(response), _total_weight(targets), _sums(losses, targets.sample_weight))


def _mean(sign: float, root: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """sign * (weighted) mean of the summed column, or its square root."""

    def score(totals: np.ndarray) -> np.ndarray:
        mean = totals[..., 1] / totals[..., 0]
        return sign * (np.sqrt(mean) if root else mean)

    return score


SCORES: dict[str, ReducibleScore] = {
    "r2": ReducibleScore("predict", ("weight", "sum_centered", "sum_centered2", "sse"), _r2_statistics, _r2, True),
    "neg_mean_squared_error": ReducibleScore("predict", ("weight", "sse"), _errors(2), _mean(-1), True),
    "neg_root_mean_squared_error": ReducibleScore("predict", ("weight", "sse"), _errors(2), _mean(-1, True), True),
    "neg_mean_absolute_error": ReducibleScore("predict", ("weight", "sae"), _errors(1), _mean(-1), True),
    "accuracy": ReducibleScore("predict", ("weight", "correct"), _correct, _mean(1), False),
    "neg_log_loss": ReducibleScore("predict_proba", ("weight", "log_loss"), _log_loss_statistics, _mean(-1), False),
}


def default_scoring(model: Any) -> str:
    """Accuracy for classifiers and R^2 otherwise, as scikit-learn's ``model.score``."""
    return "accuracy" if is_classifier(model) else "r2"


@dataclasses.dataclass(frozen=True)
class Scorer:
    """One named scorer of the local engine: the scikit-learn-style callable and its table entry, if any."""

    name: str
    call: Callable
    reducible: ReducibleScore | None

    def score_blocks(
        self, predictions: BatchPredictions, baseline_first: bool, everything: Targets, sampled: Targets
    ) -> np.ndarray:
        """Score of every block of the batch; block 0 is the unpermuted rows if ``baseline_first``.

        From the table when scikit-learn's scorer would score the blocks quietly, else by that scorer, block by block.
        """
        if self.reducible is not None and self._table_applies(predictions, baseline_first, everything, sampled):
            return self.reducible.score(
                self.reducible.block_statistics(predictions, baseline_first, everything, sampled)
            )
        targets = [everything if baseline_first and k == 0 else sampled for k in range(len(predictions.offsets) - 1)]
        return np.array(
            [_call(self.call, predictions.view(k), t.X, t.y, t.sample_weight) for k, t in enumerate(targets)]
        )

    def _table_applies(
        self, predictions: BatchPredictions, baseline_first: bool, everything: Targets, sampled: Targets
    ) -> bool:
        response, classes = predictions.response(self.reducible.response), getattr(predictions.model, "classes_", None)
        start = predictions.offsets[1] if baseline_first else 0
        blocks = [(response[:start], everything)] if baseline_first else []
        if len(response) > start:
            blocks.append((response[start:], sampled))
        return all(self.reducible.accepts(block, targets, classes) for block, targets in blocks)


def scorers(model: Any, scoring: Any) -> dict[str, Scorer]:
    """Named scorers from scikit-learn's ``scoring`` forms; None is accuracy or R^2 as the model calls for."""
    if scoring is None:
        scoring = default_scoring(model)
    if isinstance(scoring, Mapping):
        items = [(str(name), s) for name, s in scoring.items()]
    else:
        if isinstance(scoring, str) or callable(scoring):
            scoring = [scoring]
        items = [(s if isinstance(s, str) else getattr(s, "__name__", f"scorer{i}"), s) for i, s in enumerate(scoring)]
    return {
        name: Scorer(name, get_scorer(s), SCORES.get(s)) if isinstance(s, str) else Scorer(name, s, None)
        for name, s in items
    }


def _call(scorer: Callable, model: Any, X: Any, y: np.ndarray, sample_weight: np.ndarray | None) -> float:
    if sample_weight is not None:
        return scorer(model, X, y, sample_weight=sample_weight)
    return scorer(model, X, y)
