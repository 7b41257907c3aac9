"""Exact SHAP values of a Spark ML predictor from its features vectors: read on the driver, computed on executors.

Tree models (decision trees, random forests, GBTs; classifiers and regressors) are read once into
shap's ``TreeExplainer`` (``spark_trees.py``: their nodes walked through the JVM into numpy arrays);
the explainer keeps no JVM handle, so it is pickled to the executors, which run exact TreeSHAP.
Linear models (logistic regression, binary and multinomial, linear regression, linear SVM) need
only their coefficients, an intercept and the background mean: ``coef * (x - mean)`` is what
shap's ``LinearExplainer`` returns with an interventional background.

Values are per slot of the predictor's features vector, in the space of one of the model's own
output columns (:attr:`SlotExplainer.output_column`), so executors check additivity against the
very numbers ``model.transform`` wrote; :func:`raw_column_values` sums the slots back onto the raw
columns they were assembled from.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import shap
from pyspark.ml.classification import (
    DecisionTreeClassificationModel,
    GBTClassificationModel,
    LinearSVCModel,
    LogisticRegressionModel,
    RandomForestClassificationModel,
)
from pyspark.ml.regression import (
    DecisionTreeRegressionModel,
    GBTRegressionModel,
    LinearRegressionModel,
    RandomForestRegressionModel,
)

from ..results import Task
from .spark_trees import UnsupportedTreeError, spark_tree_explainer

TREE_MODELS = (
    DecisionTreeClassificationModel,
    DecisionTreeRegressionModel,
    RandomForestClassificationModel,
    RandomForestRegressionModel,
    GBTClassificationModel,
    GBTRegressionModel,
)
LINEAR_MODELS = (LogisticRegressionModel, LinearSVCModel, LinearRegressionModel)

_SPACE_WORDS = {
    "probability": "values in probability (the probability column)",
    "margin": "values in margin (the rawPrediction column)",
    "prediction": "values in the prediction (the prediction column)",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class SlotExplainer(abc.ABC):
    """An exact explainer of a Spark ML predictor over the slots of its features vector (picklable).

    Attributes
    ----------
    algorithm : str
        "tree" or "linear", as ``ShapResult.algorithm``.
    reason : str
        Which explainer, why, and the output its values add up to.
    output_space : str
        "probability", "margin" or "prediction".
    output_column : str
        The column of ``model.transform`` holding that output (a vector, or the prediction).
    n_background : int
        Background rows behind the base value (0 for trees: their own node weights).
    mirror : bool
        The explainer gives the positive class of a binary classifier only; the negative class is its mirror
        image (``-values``, and ``1 - base`` in probability, ``-base`` in margin), as in the output column.
    """

    algorithm: str
    reason: str
    output_space: str
    output_column: str
    n_background: int
    mirror: bool

    def explain(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SHAP values of rows of the features vector.

        Parameters
        ----------
        features : ndarray of shape (n_rows, n_slots)

        Returns
        -------
        (ndarray of shape (n_rows, n_slots, n_outputs), ndarray of shape (n_rows, n_outputs))
            Values and base values; ``values.sum(axis=1) + base`` is the output column.
        """
        values, base = self._slot_values(np.asarray(features, dtype=float))
        values = values[:, :, None] if values.ndim == 2 else values
        base = np.broadcast_to(np.reshape(base, (1, -1)), (len(values), values.shape[2]))
        if self.mirror:
            offset = 1.0 if self.output_space == "probability" else 0.0
            return np.concatenate([-values, values], axis=2), np.hstack([offset - base, base])
        return values, base.copy()

    @abc.abstractmethod
    def _slot_values(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values (n_rows, n_slots[, n_outputs]) and base values (n_outputs,) of the explainer's own outputs."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class TreeSlotExplainer(SlotExplainer):
    """Exact TreeSHAP of a Spark tree model, its trees held by shap as arrays."""

    explainer: shap.TreeExplainer

    def _slot_values(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = self.explainer.shap_values(features, check_additivity=False)  # checked against the model's column
        return np.asarray(values, dtype=float), np.asarray(self.explainer.expected_value, dtype=float)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LinearSlotExplainer(SlotExplainer):
    """Linear SHAP: ``coefficients * (x - mean)``, base ``coefficients @ mean + intercepts``, one row per output."""

    coefficients: np.ndarray  # (n_outputs, n_slots)
    intercepts: np.ndarray  # (n_outputs,)
    mean: np.ndarray  # (n_slots,): the background rows' mean

    def _slot_values(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = (features - self.mean)[:, :, None] * self.coefficients.T[None, :, :]
        return values, self.coefficients @ self.mean + self.intercepts


def slot_explainer(
    predictor: Any, task: Task, columns: dict[str, str | None], algorithm: str, background: Any
) -> SlotExplainer | str:
    """The exact explainer of a Spark ML predictor, or why it has none (the model-agnostic path then runs).

    Parameters
    ----------
    predictor : pyspark.ml Model
        The final prediction stage.
    task : Task
    columns : dict
        The predictor's output columns: ``{"probability": ..., "margin": ..., "prediction": ...}``
        (None where it writes none).
    algorithm : str
        ``shap.algorithm``: "auto", or "tree" / "linear" required, or a model-agnostic one forced.
    background : callable
        Returns the background rows' features vectors, (n_rows, n_slots); called for linear models only.

    Returns
    -------
    SlotExplainer or str

    Raises
    ------
    ValueError
        When ``algorithm`` names an explainer the model does not fit.
    """
    kind = type(predictor).__name__
    if algorithm in ("permutation", "exact"):
        return f"shap.algorithm is {algorithm!r}"
    if algorithm == "deep":
        raise ValueError(f"shap.algorithm is 'deep' but {kind} is not a network; use 'auto'")
    if isinstance(predictor, TREE_MODELS) and algorithm in ("auto", "tree"):
        explainer, problem = _tree_explainer(predictor, task, columns, kind)
        if explainer is not None or algorithm == "auto":
            return explainer or f"{kind} is a tree model without a TreeSHAP form ({problem})"
        raise ValueError(f"shap.algorithm is 'tree' but TreeExplainer cannot explain {kind}: {problem}")
    if isinstance(predictor, LINEAR_MODELS) and algorithm in ("auto", "linear"):
        return _linear_explainer(predictor, task, columns, kind, np.asarray(background(), dtype=float))
    if algorithm in ("tree", "linear"):
        raise ValueError(f"shap.algorithm is {algorithm!r} but {kind} is no Spark {algorithm} model; use 'auto'")
    return f"{kind} is neither a Spark tree model nor a linear one"


def _tree_explainer(
    predictor: Any, task: Task, columns: dict[str, str | None], kind: str
) -> tuple[TreeSlotExplainer | None, str | None]:
    try:
        explainer = spark_tree_explainer(predictor, task.is_classification)
    except UnsupportedTreeError as err:
        return None, str(err)
    if not task.is_classification:
        space = "prediction"
    else:
        space = "probability" if explainer.model.tree_output == "probability" else "margin"
    trees = len(explainer.model.trees)
    reason = (
        f"{kind} is a Spark tree model: exact TreeSHAP (shap's TreeExplainer) of its {trees} tree(s), read on the "
        f"driver and computed on the executors; {_SPACE_WORDS[space]}"
    )
    if isinstance(predictor, GBTClassificationModel):
        reason += " (Spark's GBT margin is half the log-odds)"
    mirror = task.kind == "binary" and np.size(explainer.expected_value) == 1  # a GBT's one margin
    explained = TreeSlotExplainer(
        algorithm="tree",
        reason=reason,
        output_space=space,
        output_column=_column(columns, space, kind),
        n_background=0,
        mirror=mirror,
        explainer=explainer,
    )
    return explained, None


def _linear_explainer(
    predictor: Any, task: Task, columns: dict[str, str | None], kind: str, background: np.ndarray
) -> LinearSlotExplainer:
    if isinstance(predictor, LogisticRegressionModel):
        coefficients = predictor.coefficientMatrix.toArray()
        intercepts = predictor.interceptVector.toArray()
    else:
        coefficients = predictor.coefficients.toArray().reshape(1, -1)
        intercepts = np.array([predictor.intercept])
    space = "margin" if task.is_classification else "prediction"
    reason = (
        f"{kind} is a Spark linear model: linear SHAP from its coefficients and the mean of {len(background)} "
        f"background rows (shap's LinearExplainer, interventional), computed on the executors; {_SPACE_WORDS[space]}"
    )
    mirror = task.kind == "binary" and len(coefficients) == 1
    return LinearSlotExplainer(
        algorithm="linear",
        reason=reason,
        output_space=space,
        output_column=_column(columns, space, kind),
        n_background=len(background),
        mirror=mirror,
        coefficients=coefficients,
        intercepts=intercepts,
        mean=background.mean(axis=0),
    )


def _column(columns: dict[str, str | None], space: str, kind: str) -> str:
    name = columns.get(space)
    if not name:
        raise ValueError(f"{kind} writes no {space} column, which its SHAP values add up to")
    return name


def raw_column_membership(vector_columns: Sequence[str], feature_columns: Sequence[str]) -> np.ndarray:
    """(n_slots, n_raw) matrix: 1 where a slot of the features vector comes from a raw column."""
    position = {name: j for j, name in enumerate(feature_columns)}
    membership = np.zeros((len(vector_columns), len(feature_columns)))
    membership[np.arange(len(vector_columns)), [position[name] for name in vector_columns]] = 1.0
    return membership


def raw_column_values(values: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """Slot values (n_rows, n_slots, n_outputs) summed onto raw columns: (n_rows, n_raw, n_outputs)."""
    return np.einsum("nsk,sr->nrk", values, membership)
