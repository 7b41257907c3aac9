"""A ColumnTransformer's "passthrough" and "drop" are row-wise: the Pipeline keeps the transform-once fast path."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from mlflow_explain.methods.permutation import permutation_importance
from tests.helpers import mixed_frame

KWARGS = dict(scoring=["accuracy", "roc_auc"], n_repeats=2, random_state=3)


def _centered(X):
    """Centers each column on the rows it is given: a row's output depends on the other rows."""
    return X - X.mean(axis=0)


def _pipeline(numeric_step) -> Pipeline:
    """One-hot colours, ``numeric_step`` on income, noise dropped, the rest (city, age) passed through."""
    columns = ColumnTransformer(
        [
            ("color", OneHotEncoder(handle_unknown="ignore"), ["color"]),
            ("income", numeric_step, ["income"]),
            ("unused", "drop", ["noise"]),
        ],
        remainder="passthrough",
    )
    return Pipeline([("columns", columns), ("model", RandomForestClassifier(n_estimators=20, random_state=0))])


@pytest.fixture(scope="module")
def rows():
    X, y = mixed_frame(n_rows=300)
    return X.assign(city=X["city"].cat.codes), y  # numeric city: the forest takes the passed-through columns


@pytest.mark.parametrize(
    "numeric_step",
    ["passthrough", FunctionTransformer()],
    ids=["passthrough", "identity-function-transformer"],
)
def test_passthrough_and_drop_take_the_transform_once_path_with_identical_results(rows, numeric_step, caplog):
    X, y = rows
    model = _pipeline(numeric_step).fit(X, y)
    with caplog.at_level(logging.WARNING, logger="mlflow_explain"):
        fast = permutation_importance(model, X, y, **KWARGS)
    assert fast.path == "pipeline_transformed_once", fast.path_reason
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING], caplog.text
    whole = permutation_importance(model, X, y, split_pipeline=False, **KWARGS)
    assert whole.path == "full_pipeline"
    reference = sklearn_permutation_importance(model, X, y, **KWARGS)
    for scorer in KWARGS["scoring"]:
        np.testing.assert_array_equal(fast.importances[scorer], whole.importances[scorer])
        np.testing.assert_allclose(fast.importances[scorer], reference[scorer].importances, rtol=0, atol=1e-12)
    assert fast.mean("accuracy")[fast.feature_names.index("noise")] == 0.0, "a dropped column cannot matter"


def test_a_users_own_function_transformer_is_not_taken_for_row_wise(rows, caplog):
    X, y = rows
    model = _pipeline(FunctionTransformer(_centered, feature_names_out="one-to-one")).fit(X, y)
    with caplog.at_level(logging.WARNING, logger="mlflow_explain"):
        result = permutation_importance(model, X, y, **KWARGS)
    assert result.path == "full_pipeline"
    assert "FunctionTransformer is not known to transform each row on its own" in result.path_reason
    assert "FunctionTransformer is not known" in caplog.text
    reference = sklearn_permutation_importance(model, X, y, **KWARGS)
    np.testing.assert_allclose(result.importances["roc_auc"], reference["roc_auc"].importances, rtol=0, atol=1e-12)
