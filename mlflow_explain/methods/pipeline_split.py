"""Decide whether a Pipeline's preprocessing can run once for all permuted copies, and prove it.

Permuting raw column j and re-running the whole Pipeline gives the same rows as transforming
once and permuting, together, the transformed columns that come from j, provided that the
preprocessing is row-wise (a row's output depends on that row only) and that each output column
depends on one raw column. That holds for ColumnTransformers of encoders, scalers and imputers;
it is not assumed but checked, structurally and on the data, and any doubt means the caller
re-runs the whole Pipeline on every copy.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import (
    Binarizer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    SplineTransformer,
    StandardScaler,
    TargetEncoder,
)

from ..data import column_names, take_rows
from ..models import dense, is_identity, raw_column_origins, split_pipeline

# Fitted transformers whose transform maps each row on its own, each input column to its own outputs.
ROW_WISE_TRANSFORMERS = (
    Binarizer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    MissingIndicator,
    OneHotEncoder,
    OrdinalEncoder,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    SimpleImputer,
    SplineTransformer,
    StandardScaler,
    TargetEncoder,
)
_CHECK_ROWS = 100
_RESPONSE_CHECKS = ("predict", "predict_proba", "decision_function")
# Dense and sparse input may round a linear model's dot product differently in the last bit.
_RESPONSE_RTOL = 1e-12


@dataclasses.dataclass
class PipelineSplit:
    """A Pipeline's final estimator, the validation rows transformed once, and each output column's raw column."""

    final_estimator: Any
    X: np.ndarray
    origin: np.ndarray
    reason: str

    def columns_of(self, raw_columns: list[int]) -> list[int]:
        """Transformed columns that come from the given raw columns."""
        return np.flatnonzero(np.isin(self.origin, raw_columns)).tolist()


class CannotSplit(Exception):
    """The preprocessing cannot be run once for all copies; the message says why."""


def split_for_permutation(model: Any, X: pd.DataFrame | np.ndarray, memory_budget_mb: float) -> PipelineSplit:
    """Transform ``X`` once with the Pipeline's preprocessing, after checking that this is exact.

    Parameters
    ----------
    model : fitted estimator
        A Pipeline whose last step predicts; anything else cannot be split.
    X : DataFrame or ndarray of shape (n_samples, n_raw_features)
        The validation rows, as the Pipeline takes them.
    memory_budget_mb : float
        The transformed rows must fit in it.

    Returns
    -------
    PipelineSplit
        The final estimator, the transformed rows and the raw column of every transformed column.

    Raises
    ------
    CannotSplit
        When the model is not such a Pipeline or a check fails; the message says which and why.
    """
    preprocessor, final = split_pipeline(model)
    if preprocessor is None:
        raise CannotSplit("the model is not a Pipeline with preprocessing steps")
    problem = structural_problem(preprocessor)
    if problem:
        raise CannotSplit(problem)
    transformed = preprocessor.transform(X)
    if not isinstance(transformed, np.ndarray) and not scipy.sparse.issparse(transformed):
        raise CannotSplit(f"the preprocessing returns a {type(transformed).__name__}, not an array")
    try:
        X_transformed = dense(transformed)
    except (TypeError, ValueError) as err:
        raise CannotSplit(f"the transformed rows are not numeric ({err})") from err
    if X_transformed.nbytes > memory_budget_mb * 2**20:
        raise CannotSplit(f"the transformed rows ({X_transformed.nbytes / 2**20:.0f} MB) exceed memory_budget_mb")
    positions = np.arange(min(max(X.shape[0] // 2, 1), _CHECK_ROWS))  # a strict subset of the rows
    sample = take_rows(X, positions)
    if not _same(dense(preprocessor.transform(sample)), X_transformed[positions]):
        raise CannotSplit("transforming a block of rows does not give the same rows as transforming all rows")
    try:
        origin = raw_column_origins(preprocessor, sample, column_names(X))
    except ValueError as err:
        raise CannotSplit(str(err)) from err
    if scipy.sparse.issparse(transformed) or transformed.dtype != X_transformed.dtype:
        _check_responses(model, final, sample, X_transformed[positions])
    return PipelineSplit(
        final_estimator=final,
        X=X_transformed,
        origin=origin,
        reason=(
            f"{type(final).__name__} evaluated on rows transformed once: the preprocessing is row-wise and "
            f"each of its {len(origin)} output columns comes from one raw column (checked)"
        ),
    )


def structural_problem(step: Any, exact: bool = False) -> str | None:
    """Why ``step`` is not known to be row-wise and column-by-column, or None if it is.

    "passthrough" and "drop" are row-wise, also as the identity FunctionTransformer a fitted ColumnTransformer
    turns "passthrough" into (``models.is_identity``). With ``exact``, a subclass of a known transformer (which
    may override ``transform``) is unknown too.
    """
    if is_identity(step) or (isinstance(step, str) and step == "drop"):
        return None
    if isinstance(step, Pipeline):
        children = [sub for _, sub in step.steps]
    elif isinstance(step, ColumnTransformer):
        children = [sub for _, sub, _ in step.transformers_]
    elif isinstance(step, FeatureUnion):
        children = [sub for _, sub in step.transformer_list]
    elif type(step) in ROW_WISE_TRANSFORMERS or (not exact and isinstance(step, ROW_WISE_TRANSFORMERS)):
        return None
    else:
        return f"{type(step).__name__} is not known to transform each row on its own, column by column"
    return next((problem for problem in (structural_problem(child, exact) for child in children) if problem), None)


def _check_responses(model: Any, final: Any, sample: Any, transformed: np.ndarray) -> None:
    """The final estimator on the dense float rows must answer as the Pipeline does on its own output."""
    for method in _RESPONSE_CHECKS:
        if hasattr(model, method) and hasattr(final, method):
            ours, theirs = np.asarray(getattr(final, method)(transformed)), np.asarray(getattr(model, method)(sample))
            if not _same(ours, theirs, rtol=_RESPONSE_RTOL):
                raise CannotSplit(
                    f"{type(final).__name__}.{method} on the transformed array differs from the Pipeline's"
                )


def _same(a: np.ndarray, b: np.ndarray, rtol: float = 0.0) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return bool(np.allclose(a, b, rtol=rtol, atol=rtol, equal_nan=True))
    return bool(np.array_equal(a, b))
