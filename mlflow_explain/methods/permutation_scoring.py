"""Scoring the blocks of one batch of permuted copies, vectorized for the common scorers.

Calling a scikit-learn scorer per permuted copy costs about a millisecond of validation, more
than the model's own prediction on a small validation set. For the scorers named in
``_VECTOR_SCORES``, the same formula is applied to all copies of a batch in one numpy operation
(equal to scikit-learn's to rounding, about 1e-15). Any other scorer is called per copy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import get_scorer

# scores(y, predictions of shape (n_copies, n_rows), sample_weight or None) -> (n_copies,)
VectorScore = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], np.ndarray]


class BatchPredictions(Protocol):
    """What the scorers read from a batch: block boundaries, whole responses, and per-block stand-ins."""

    offsets: list[int]

    def response(self, method: str) -> np.ndarray: ...

    def view(self, block: int) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Targets:
    """Rows, targets and weights that blocks of a batch are scored against."""

    X: Any
    y: np.ndarray
    sample_weight: np.ndarray | None


@dataclasses.dataclass(frozen=True)
class Scorer:
    """One named scorer: the scikit-learn-style callable and, if there is one, its vectorized form."""

    name: str
    call: Callable
    vector: VectorScore | None

    def score_blocks(
        self, predictions: BatchPredictions, baseline_first: bool, everything: Targets, sampled: Targets
    ) -> np.ndarray:
        """Score of every block of the batch; block 0 is the unpermuted rows if ``baseline_first``."""
        targets = [everything if baseline_first and k == 0 else sampled for k in range(len(predictions.offsets) - 1)]
        if self.vector is not None:
            scores = self._vectorized(predictions, baseline_first, targets)
            if scores is not None:
                return scores
        return np.array(
            [_call(self.call, predictions.view(k), t.X, t.y, t.sample_weight) for k, t in enumerate(targets)]
        )

    def _vectorized(
        self, predictions: BatchPredictions, baseline_first: bool, targets: list[Targets]
    ) -> np.ndarray | None:
        response = predictions.response("predict")
        if response.ndim != 1 or targets[-1].y.ndim != 1 or len(targets[-1].y) < 2:
            return None
        numeric = response.dtype.kind in "biuf" and targets[-1].y.dtype.kind in "biuf"
        if self.vector is not _accuracy and not numeric:
            return None
        start = predictions.offsets[1] if baseline_first else 0
        copies = response[start:].reshape(-1, len(targets[-1].y))
        parts = [self.vector(targets[0].y, response[None, :start], targets[0].sample_weight)] if baseline_first else []
        parts.append(self.vector(targets[-1].y, copies, targets[-1].sample_weight))
        return np.concatenate(parts)


def scorers(model: Any, scoring: Any) -> dict[str, Scorer]:
    """Named scorers from scikit-learn's ``scoring`` forms; None is accuracy or R^2 as the model calls for."""
    if scoring is None:
        scoring = "accuracy" if is_classifier(model) else "r2"
    if isinstance(scoring, Mapping):
        items = [(str(name), s) for name, s in scoring.items()]
    else:
        if isinstance(scoring, str) or callable(scoring):
            scoring = [scoring]
        items = [(s if isinstance(s, str) else getattr(s, "__name__", f"scorer{i}"), s) for i, s in enumerate(scoring)]
    return {
        name: Scorer(name, get_scorer(s), _VECTOR_SCORES.get(s)) if isinstance(s, str) else Scorer(name, s, None)
        for name, s in items
    }


def _call(scorer: Callable, model: Any, X: Any, y: np.ndarray, sample_weight: np.ndarray | None) -> float:
    if sample_weight is not None:
        return scorer(model, X, y, sample_weight=sample_weight)
    return scorer(model, X, y)


def _average(values: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    if sample_weight is None:
        return values.mean(axis=1)
    return values @ sample_weight / sample_weight.sum()


def _r2(y: np.ndarray, predictions: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    y = y.astype(float)
    weight = 1.0 if sample_weight is None else sample_weight
    numerator = (weight * (y - predictions) ** 2).sum(axis=1)
    denominator = (weight * (y - np.average(y, weights=sample_weight)) ** 2).sum()
    if denominator == 0:  # scikit-learn's force_finite: a constant target scores 1 if predicted exactly, else 0
        return np.where(numerator == 0, 1.0, 0.0)
    return 1 - numerator / denominator


def _accuracy(y: np.ndarray, predictions: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    return _average((predictions == y).astype(float), sample_weight)


def _neg_mean_squared_error(y: np.ndarray, predictions: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    return -_average((y.astype(float) - predictions) ** 2, sample_weight)


def _neg_root_mean_squared_error(
    y: np.ndarray, predictions: np.ndarray, sample_weight: np.ndarray | None
) -> np.ndarray:
    return -np.sqrt(-_neg_mean_squared_error(y, predictions, sample_weight))


def _neg_mean_absolute_error(y: np.ndarray, predictions: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    return -_average(np.abs(y.astype(float) - predictions), sample_weight)


_VECTOR_SCORES: dict[str, VectorScore] = {
    "r2": _r2,
    "accuracy": _accuracy,
    "neg_mean_squared_error": _neg_mean_squared_error,
    "neg_root_mean_squared_error": _neg_root_mean_squared_error,
    "neg_mean_absolute_error": _neg_mean_absolute_error,
}
