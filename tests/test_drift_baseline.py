"""Drift compares a run with a baseline of the same model family and features; two model families are not drift."""

from __future__ import annotations

import html
import json
from pathlib import Path

import lightgbm
import mlflow
import numpy as np
import pytest
from catboost import CatBoostRegressor
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlflow_explain
from mlflow_explain.models import model_family

FAST = {
    "permutation": {"n_repeats": 2},
    "shap": {"max_rows": 100, "dependence_top_k": 0, "local_rows": 0},
    "logging": {"report": False},
}


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:300], y.iloc[:300].to_numpy(), X.iloc[300:], y.iloc[300:].to_numpy()


def _explained_run(name: str, model, X, y, config: dict | None = None) -> str:
    with mlflow.start_run(run_name=name) as run:
        mlflow_explain.explain(model, X, y, config={**FAST, **(config or {})})
    return run.info.run_id


def _summary(run_id: str, folder: Path) -> dict:
    return json.loads(Path(MlflowClient().download_artifacts(run_id, "explain/summary.json", str(folder))).read_text())


def test_model_family_is_the_final_estimator_or_the_boosting_library():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    searched = GridSearchCV(RandomForestRegressor(n_estimators=5, random_state=0), {"max_depth": [2, 3]}, cv=2)
    assert model_family(make_pipeline(StandardScaler(), searched.fit(X, y))) == "RandomForestRegressor"
    assert model_family(make_pipeline(StandardScaler(), Ridge())) == "Ridge"
    booster = lightgbm.train({"verbose": -1}, lightgbm.Dataset(X, y), num_boost_round=2)
    assert model_family(booster) == model_family(lightgbm.LGBMRegressor()) == "lightgbm"
    assert model_family(CatBoostRegressor()) == "catboost"


def test_two_model_families_are_not_drift_and_the_report_says_why(tracking_uri, diabetes, tmp_path):
    X_train, y_train, X_val, y_val = diabetes
    ridge = make_pipeline(StandardScaler(), Ridge()).fit(X_train, y_train)
    first = _explained_run("ridge", ridge, X_val, y_val)
    forest = RandomForestRegressor(n_estimators=20, max_depth=3, random_state=0).fit(X_train, y_train)
    second = _explained_run("forest", forest, X_val, y_val, {"logging": {"report": True}})

    run = MlflowClient().get_run(second)
    assert "mlflow_explain.drift" not in run.data.tags and not any("drift" in key for key in run.data.metrics)
    assert run.data.tags["mlflow_explain.model_family"] == "RandomForestRegressor"
    reason = _summary(second, tmp_path)["no_baseline_reason"]
    assert reason.startswith("No drift measured: no explained run in this experiment is a RandomForestRegressor")
    assert f"ridge ({first}), is a Ridge model" in reason and "compare.baseline_match" in reason
    report = Path(MlflowClient().download_artifacts(second, "explain/report.html", str(tmp_path))).read_text()
    assert reason in html.unescape(report) and "Explanation drift alert" not in report

    across = _explained_run("forest-any", forest, X_val, y_val, {"compare": {"baseline_match": "any"}})
    assert MlflowClient().get_run(across).data.tags["mlflow_explain.drift"] in ("ok", "alert"), "any: compared"


def test_the_same_family_is_compared_past_other_families_and_a_real_change_alerts(tracking_uri, diabetes, tmp_path):
    X_train, y_train, X_val, y_val = diabetes
    forest = RandomForestRegressor(n_estimators=20, max_depth=3, random_state=0)
    first = _explained_run("forest", forest.fit(X_train, y_train), X_val, y_val)
    _explained_run("ridge", Ridge().fit(X_train, y_train), X_val, y_val)
    noise = np.random.RandomState(0).randn(len(X_train))
    age_driven = 1000 * X_train["age"].to_numpy() + noise  # the same features, now another feature drives the target
    changed = RandomForestRegressor(n_estimators=20, max_depth=3, random_state=0).fit(X_train, age_driven)
    second = _explained_run("forest-on-age", changed, X_val, 1000 * X_val["age"].to_numpy())

    run = MlflowClient().get_run(second)
    assert run.data.tags["mlflow_explain.drift"] == "alert"
    drift = _summary(second, tmp_path)["drift"]
    assert drift["baseline_run_id"] == first, "the forest before the ridge, not the ridge"
    assert drift["alert"] and drift["ndcg_at_k"] < drift["threshold"]


def test_a_named_baseline_of_another_family_or_without_a_family_gives_the_reason(tracking_uri, diabetes, tmp_path):
    X_train, y_train, X_val, y_val = diabetes
    ridge = _explained_run("ridge", Ridge().fit(X_train, y_train), X_val, y_val)
    forest = RandomForestRegressor(n_estimators=10, max_depth=3, random_state=0).fit(X_train, y_train)
    named = _explained_run("forest", forest, X_val, y_val, {"compare": {"baseline": ridge}})
    reason = _summary(named, tmp_path / "a")["no_baseline_reason"]
    assert f"the baseline run ridge ({ridge}) is a Ridge model, this one a RandomForestRegressor" in reason

    MlflowClient().delete_tag(ridge, "mlflow_explain.model_family")  # as a run explained before model families
    older = _explained_run("ridge-again", Ridge().fit(X_train, y_train), X_val, y_val, {"compare": {"baseline": ridge}})
    assert "records no model family" in _summary(older, tmp_path / "b")["no_baseline_reason"]


@pytest.mark.slow  # two boosters trained and explained
def test_a_catboost_run_after_a_lightgbm_run_is_not_drift(tracking_uri, diabetes, tmp_path):
    X_train, y_train, X_val, y_val = diabetes
    lgbm = lightgbm.LGBMRegressor(n_estimators=30, verbose=-1).fit(X_train, y_train)
    _explained_run("lightgbm", lgbm, X_val, y_val)
    catboost = CatBoostRegressor(iterations=30, verbose=0, random_seed=0, thread_count=1).fit(X_train, y_train)
    second = _explained_run("catboost", catboost, X_val, y_val)
    assert "mlflow_explain.drift" not in MlflowClient().get_run(second).data.tags
    assert "is a lightgbm model" in _summary(second, tmp_path)["no_baseline_reason"]
