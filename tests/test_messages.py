"""Messages that help: near-miss column names, full lists or "and N more", a failed method said in one line."""

from __future__ import annotations

import logging

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

import mlflow_explain
from mlflow_explain import InvalidInputError
from mlflow_explain.errors import MAX_LISTED, did_you_mean, listed


@pytest.fixture(scope="module")
def cancer():
    """A forest fitted on the breast-cancer frame (30 columns named like 'mean radius')."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y), X, y


def _message(*args, **kwargs) -> str:
    with pytest.raises(InvalidInputError) as caught:
        mlflow_explain.explain(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message, "one sentence"
    return message


def test_a_misspelt_target_gets_the_near_miss_and_every_column(cancer, tracking_uri):
    model, X, y = cancer
    message = _message(model, X.assign(diagnosis=y), target="diagnosys")
    assert "Target column 'diagnosys' is not in the validation data (did you mean 'diagnosis'?)" in message
    assert message.endswith("worst symmetry, worst fractal dimension, diagnosis."), "all 31 columns, none cut"
    assert "more" not in message


def test_a_column_spelt_another_way_gets_did_you_mean(cancer, tracking_uri):
    model, X, y = cancer
    message = _message(model, X.rename(columns={"mean radius": "mean_radius"}), y)
    assert "lacks column(s) the model was trained on: mean radius (did you mean 'mean_radius'?)" in message


def test_a_long_column_list_ends_with_and_n_more(tracking_uri):
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.randn(60, MAX_LISTED + 12), columns=[f"sensor_{i:02d}" for i in range(MAX_LISTED + 12)])
    model = RandomForestRegressor(n_estimators=2, max_depth=2, random_state=0).fit(X, rng.randn(60))
    message = _message(model, X.assign(load=1.0), target="target")
    assert message.endswith(f"sensor_{MAX_LISTED - 1:02d} and 13 more."), message
    assert f"sensor_{MAX_LISTED:02d}" not in message


def test_listed_and_did_you_mean():
    assert listed(["a", "b"], limit=2) == "a, b" and listed(list("abcde"), limit=2) == "a, b and 3 more"
    assert did_you_mean("worst_area", ["worst area", "mean area"]) == " (did you mean 'worst area'?)"
    assert did_you_mean("zzz", ["worst area", "mean area"]) == ""


def test_a_failed_method_is_one_warning_line_with_its_traceback_at_debug_and_in_error_txt(
    tracking_uri, caplog, tmp_path
):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = RandomForestRegressor(n_estimators=5, max_depth=3, random_state=0).fit(X[:300], y[:300])
    config = {"permutation": {"n_repeats": 2}, "shap": {"algorithm": "linear"}}
    with caplog.at_level(logging.DEBUG, logger="mlflow_explain"), mlflow.start_run() as run:
        explanation = mlflow_explain.explain(model, X[300:], y[300:], config=config)
    assert explanation.status == "partial"
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1, [record.getMessage() for record in warnings]
    said = warnings[0]
    assert said.exc_info is None and "\n" not in said.getMessage()
    assert said.getMessage() == (
        "mlflow_explain: shap failed: ValueError: shap.algorithm is 'linear' but RandomForestRegressor is not a "
        "linear model with coef_"
    )
    debug = [record.getMessage() for record in caplog.records if record.levelno == logging.DEBUG]
    assert any("shap failed:\nTraceback (most recent call last):" in message for message in debug)
    path = MlflowClient().download_artifacts(run.info.run_id, "explain/error.txt", str(tmp_path))
    error = open(path, encoding="utf-8").read()
    first, _, rest = error.partition("\n")
    assert first == f"shap: {explanation.errors['shap']}"
    assert "Traceback (most recent call last):" in rest and "in _choose" in rest and rest.rstrip().endswith("coef_")
