"""Native boosters (xgb.Booster, lgb.Booster, CatBoost models): task from the objective, the library's own TreeSHAP
equal to shap's TreeExplainer, permutation importance equal to scikit-learn's, and every trigger."""

from __future__ import annotations

import json

import catboost
import lightgbm
import mlflow
import numpy as np
import pandas as pd
import pytest
import shap
import xgboost
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.inspection import permutation_importance as sklearn_permutation_importance

import mlflow_explain
from mlflow_explain.boosters import booster_estimator
from mlflow_explain.errors import InvalidInputError
from mlflow_explain.methods.permutation import permutation_importance
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task
from mlflow_explain.triggers.cli import main

TREES = 30
FAST = {"permutation": {"n_repeats": 2}, "shap": {"max_rows": 60, "dependence_top_k": 1, "local_rows": 1}}


def _binary():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:, :8], y  # few columns: a small, quick model


def _multiclass():
    return load_iris(return_X_y=True, as_frame=True)


def _regression():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y / 100  # targets of order 1, as the additivity tolerance assumes


def _xgboost(objective, data, **params):
    X, y = data()
    params = {"objective": objective, "max_depth": 3, "nthread": 1, **params}
    return xgboost.train(params, xgboost.DMatrix(X, label=y), TREES), X, y


def _lightgbm(objective, data, **params):
    X, y = data()
    params = {"objective": objective, "num_leaves": 7, "verbose": -1, "num_threads": 1, **params}
    return lightgbm.train(params, lightgbm.Dataset(X, label=y), TREES), X, y


def _catboost(model, data):
    X, y = data()
    return model.fit(X, y), X, y


CATBOOST = {
    "iterations": TREES,
    "depth": 3,
    "verbose": 0,
    "thread_count": 1,
    "random_seed": 0,
    "allow_writing_files": False,
}
BOOSTERS = {
    "xgboost-binary": lambda: _xgboost("binary:logistic", _binary),
    "xgboost-softprob": lambda: _xgboost("multi:softprob", _multiclass, num_class=3),
    "xgboost-softmax": lambda: _xgboost("multi:softmax", _multiclass, num_class=3),
    "xgboost-squarederror": lambda: _xgboost("reg:squarederror", _regression),
    "xgboost-poisson": lambda: _xgboost("count:poisson", _regression),
    "lightgbm-binary": lambda: _lightgbm("binary", _binary),
    "lightgbm-multiclass": lambda: _lightgbm("multiclass", _multiclass, num_class=3),
    "lightgbm-regression": lambda: _lightgbm("regression", _regression),
    "lightgbm-poisson": lambda: _lightgbm("poisson", _regression),
    "catboost-classifier": lambda: _catboost(catboost.CatBoostClassifier(**CATBOOST), _binary),
    "catboost-multiclass": lambda: _catboost(
        catboost.CatBoostClassifier(loss_function="MultiClass", **CATBOOST), _multiclass
    ),
    "catboost-bare-logloss": lambda: _catboost(catboost.CatBoost({"loss_function": "Logloss", **CATBOOST}), _binary),
    "catboost-regressor": lambda: _catboost(catboost.CatBoostRegressor(**CATBOOST), _regression),
    "catboost-poisson": lambda: _catboost(catboost.CatBoostRegressor(loss_function="Poisson", **CATBOOST), _regression),
}
# (task, output space) each objective makes: classifiers and log links in margin space, identity links in prediction.
EXPECTED = {
    "xgboost-binary": ("binary", "margin"),
    "xgboost-softprob": ("multiclass", "margin"),
    "xgboost-softmax": ("multiclass", "margin"),
    "xgboost-squarederror": ("regression", "prediction"),
    "xgboost-poisson": ("regression", "margin"),
    "lightgbm-binary": ("binary", "margin"),
    "lightgbm-multiclass": ("multiclass", "margin"),
    "lightgbm-regression": ("regression", "prediction"),
    "lightgbm-poisson": ("regression", "margin"),
    "catboost-classifier": ("binary", "margin"),
    "catboost-multiclass": ("multiclass", "margin"),
    "catboost-bare-logloss": ("binary", "margin"),
    "catboost-regressor": ("regression", "prediction"),
    "catboost-poisson": ("regression", "margin"),
}


@pytest.fixture(scope="module")
def boosters():
    """Each booster trained once (tests only read them), with its data."""
    return {name: make() for name, make in BOOSTERS.items()}


def _explained(raw, X, y, rows=80):
    model = booster_estimator(raw)
    task = detect_task(model, y.to_numpy())
    return model, task, shap_values(model, X, task, feature_names=list(X.columns), max_rows=rows)


def _shap_reference(raw, X):
    """shap's TreeExplainer values (n, features, outputs): its own C++ TreeSHAP on its own parse of the trees.

    Left to itself, TreeExplainer hands an XGBoost or LightGBM booster to the library's TreeSHAP (what is
    tested); marking the parsed model "internal" makes it run shap's algorithm instead. shap has no
    algorithm of its own for CatBoost (its parse carries no node covers), so there it is TreeExplainer as shipped.
    """
    explainer = shap.TreeExplainer(raw)
    if not isinstance(raw, catboost.CatBoost):
        explainer.model.model_type = "internal"
    values = np.asarray(explainer.shap_values(X, check_additivity=False))
    return values[:, :, None] if values.ndim == 2 else values


@pytest.mark.parametrize("name", sorted(set(BOOSTERS) - {"lightgbm-multiclass"}))
def test_tree_shap_equals_shaps_tree_explainer_and_adds_up(boosters, name):
    raw, X, y = boosters[name]
    model, task, result = _explained(raw, X, y)
    assert (task.kind, result.output_space) == EXPECTED[name]
    assert result.algorithm == "tree" and "own exact multithreaded TreeSHAP" in result.reason
    reference = _shap_reference(raw, X.iloc[result.row_positions])
    ours = result.values[:, :, 1:] if task.kind == "binary" else result.values  # shap gives the positive class
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5)
    _assert_additive(model, result, name)


def test_lightgbm_multiclass_values_add_up_to_each_class_margin(boosters):
    raw, X, y = boosters["lightgbm-multiclass"]  # shap's own parse of a multiclass LightGBM model has one output
    model, task, result = _explained(raw, X, y)
    assert result.values.shape[2] == 3 and task.classes == (0, 1, 2)
    _assert_additive(model, result, "lightgbm-multiclass")


def _assert_additive(model, result, name):
    """Values + base value = the library's own output in the named space, to 1e-6 (relative for XGBoost's float32)."""
    rows = result.data
    output = model.predict(rows) if result.output_space == "prediction" else model.decision_function(rows)
    output = np.asarray(output).reshape(len(rows), -1)
    if output.shape[1] == 1 and result.values.shape[2] == 2:
        output = np.hstack([-output, output])
    gap = np.abs(result.values.sum(axis=1) + result.base_values - output).max()
    scale = max(1.0, np.abs(output).max()) if name.startswith("xgboost") else 1.0
    assert gap <= 1e-6 * scale
    assert result.max_additivity_error == pytest.approx(gap, abs=1e-12)


def test_a_binary_lightgbm_booster_is_a_classifier_of_its_probabilities(boosters):
    raw, X, y = boosters["lightgbm-binary"]
    model = booster_estimator(raw)
    assert detect_task(model, y.to_numpy()).kind == "binary"
    probabilities = model.predict_proba(X)
    np.testing.assert_array_equal(probabilities[:, 1], raw.predict(X))
    np.testing.assert_array_equal(model.predict(X), (raw.predict(X) > 0.5).astype(int))
    assert model.details == {"library": "lightgbm", "objective": "binary", "output_space": "margin"}


def test_softmax_booster_probabilities_are_the_softprob_ones():
    softprob, X, _ = _xgboost("multi:softprob", _multiclass, num_class=3)
    softmax, _, _ = _xgboost("multi:softmax", _multiclass, num_class=3)
    expected = softprob.predict(xgboost.DMatrix(X))
    np.testing.assert_allclose(booster_estimator(softmax).predict_proba(X), expected, atol=1e-6)


class _Plain(BaseEstimator):
    """A fitted booster behind scikit-learn's interface, as a user would wrap it (``fit`` does nothing)."""

    def fit(self, X, y=None):
        return self

    def __sklearn_is_fitted__(self):
        return True


class _PlainClassifier(ClassifierMixin, _Plain):
    def __init__(self, probabilities=None, classes=None):
        self.probabilities, self.classes = probabilities, classes

    @property
    def classes_(self):
        return self.classes

    def predict_proba(self, X):
        p = np.asarray(self.probabilities(X), dtype=float)
        return np.column_stack([1 - p, p]) if p.ndim == 1 else p

    def predict(self, X):
        return self.classes[np.argmax(self.predict_proba(X), axis=1)]


class _PlainRegressor(RegressorMixin, _Plain):
    def __init__(self, prediction=None):
        self.prediction = prediction

    def predict(self, X):
        return np.asarray(self.prediction(X))


@pytest.mark.parametrize(
    "name, wrapper, scoring",
    [
        (
            "xgboost-binary",
            lambda raw: _PlainClassifier(lambda X: raw.predict(xgboost.DMatrix(X)), np.array([0, 1])),
            ["accuracy", "neg_log_loss"],
        ),
        ("lightgbm-regression", lambda raw: _PlainRegressor(raw.predict), ["r2"]),
        (
            "catboost-multiclass",
            lambda raw: _PlainClassifier(raw.predict_proba, raw.classes_),
            ["accuracy", "neg_log_loss"],
        ),
    ],
)
def test_permutation_importance_equals_sklearn_on_a_plain_wrapper(boosters, name, wrapper, scoring):
    raw, X, y = boosters[name]
    ours = permutation_importance(booster_estimator(raw), X, y.to_numpy(), scoring=scoring, n_repeats=3, random_state=4)
    theirs = sklearn_permutation_importance(wrapper(raw), X, y, scoring=scoring, n_repeats=3, random_state=4)
    for scorer in scoring:
        np.testing.assert_allclose(ours.importances[scorer], theirs[scorer].importances, rtol=0, atol=1e-9)
    assert ours.importances[scoring[0]].mean(axis=1).max() > 0.01  # the model does use its features


def test_labels_outside_the_objectives_classes_are_one_clear_error(boosters):
    raw, X, y = boosters["xgboost-binary"]
    with pytest.raises(InvalidInputError, match="label.*not trained on"):
        detect_task(booster_estimator(raw), np.where(y.to_numpy() == 1, "yes", "no"))


def test_an_unfitted_catboost_model_is_one_clear_error():
    with pytest.raises(InvalidInputError, match="not fitted; call fit"):
        booster_estimator(catboost.CatBoostClassifier(iterations=3))


@pytest.mark.parametrize("name", ["xgboost-binary", "lightgbm-binary", "catboost-classifier"])
def test_explain_logs_a_booster_as_a_classifier_with_native_tree_shap(boosters, name, tracking_uri, tmp_path):
    raw, X, y = boosters[name]
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain(raw, X.iloc[400:], y.iloc[400:], config=FAST)
    assert explanation.status == "ok", explanation.errors
    client = MlflowClient()
    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics["permutation_importance/mean radius"] >= 0 and "shap_mean_abs/mean radius" in metrics
    summary = json.loads(open(client.download_artifacts(run.info.run_id, "explain/summary.json", str(tmp_path))).read())
    assert summary["task"]["kind"] == "binary" and summary["shap"]["output_space"] == "margin"
    assert summary["model_details"]["library"] == name.split("-")[0]
    assert summary["shap"]["max_additivity_error"] < 1e-5 and "TreeSHAP" in summary["shap"]["reason"]


def test_a_lightgbm_booster_matches_a_frames_names_with_spaces(tracking_uri):
    X, y = _binary()
    raw = lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(X, label=y), 5)
    assert raw.feature_name()[0] == "mean_radius"
    with mlflow.start_run():
        explanation = mlflow_explain.explain(raw, X.iloc[:, ::-1], y, config={"shap": {"enabled": False}})
    assert explanation.status == "ok" and explanation.feature_names[0] == "mean radius"


@pytest.mark.parametrize(
    "name, flavor",
    [("xgboost-binary", mlflow.xgboost), ("catboost-multiclass", mlflow.catboost)],
)
def test_cli_explains_a_booster_logged_by_its_flavor(boosters, name, flavor, tracking_uri, tmp_path):
    raw, X, y = boosters[name]
    data = tmp_path / "val.parquet"
    X.assign(label=y).to_parquet(data)
    with mlflow.start_run() as run:
        info = flavor.log_model(raw, name="model", pip_requirements=[])
    result = CliRunner().invoke(
        main,
        ["explain", "--model-uri", info.model_uri, "--data", str(data), "--target", "label"]
        + [f"--set=shap.max_rows={FAST['shap']['max_rows']}", "--set=permutation.n_repeats=2"],
    )
    assert result.exit_code == 0, result.output
    assert "status ok" in result.stdout
    logged = MlflowClient().get_run(run.info.run_id).data
    assert logged.tags["mlflow_explain.status"] == "ok"
    assert any(key.startswith("shap_mean_abs") for key in logged.metrics)


def test_evaluator_explains_a_logged_lightgbm_booster_as_a_classifier(boosters, tracking_uri):
    raw, X, y = boosters["lightgbm-binary"]
    with mlflow.start_run():
        info = mlflow.lightgbm.log_model(raw, name="model", pip_requirements=[])
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(
            info.model_uri,
            X.iloc[400:].assign(label=y.iloc[400:]),
            targets="label",
            model_type="classifier",
            evaluators=["explain"],
            evaluator_config={"explain": FAST},
        )
    summary = result.artifacts["explain/summary.json"].content
    assert summary["task"]["kind"] == "binary" and summary["status"] == "ok"
    assert result.metrics["shap_mean_abs/mean radius"] > 0
    assert MlflowClient().get_run(run.info.run_id).data.tags["mlflow_explain.status"] == "ok"


@pytest.mark.parametrize("name", ["xgboost-softprob", "catboost-classifier"])
def test_log_explainer_serves_a_boosters_native_tree_shap(boosters, name, tracking_uri):
    raw, X, y = boosters[name]
    with mlflow.start_run():
        info = mlflow_explain.log_explainer(raw)
    served = mlflow.pyfunc.load_model(info.model_uri)
    assert served.metadata.metadata["mlflow_explain"]["output_space"] == "margin"
    answer = served.predict(X.iloc[:20])
    model = booster_estimator(raw)
    margin = model.decision_function(X.iloc[:20]).reshape(20, -1)
    margin = np.hstack([-margin, margin]) if margin.shape[1] == 1 else margin
    for k, output in enumerate(served.metadata.metadata["mlflow_explain"]["outputs"]):
        columns = [f"shap:{output}:{feature}" for feature in X.columns]
        total = answer[columns].sum(axis=1) + answer[f"base_value:{output}"]
        np.testing.assert_allclose(total, margin[:, k], atol=1e-5)
    np.testing.assert_array_equal(answer["prediction"], model.predict(X.iloc[:20]))


def test_a_catboost_model_with_categorical_columns_is_explained_on_its_pool():
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"colour": rng.choice(["red", "blue", "green"], 300), "size": rng.rand(300)})
    y = ((X["colour"] == "red") ^ (X["size"] > 0.5)).astype(int)
    raw = catboost.CatBoostClassifier(cat_features=["colour"], **CATBOOST).fit(X, y)
    model, task, result = _explained(raw, X, y, rows=50)
    np.testing.assert_allclose(result.values[:, :, 1:], _shap_reference(raw, X.iloc[result.row_positions]), atol=1e-9)
    assert result.max_additivity_error < 1e-9 and np.abs(result.values[:, 0, 1]).mean() > 0.1


def test_a_log_link_regression_is_plotted_as_its_raw_score(boosters, tracking_uri, tmp_path):
    raw, X, y = boosters["xgboost-poisson"]
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain(raw, X, y, config={**FAST, "permutation": {"enabled": False}})
    assert explanation.status == "ok" and explanation.shap.output_space == "margin"
    path = MlflowClient().download_artifacts(run.info.run_id, "explain/shap_bar.svg", str(tmp_path))
    text = open(path, encoding="utf-8").read()
    assert "raw score (margin, before the link)" in text and "log-odds" not in text
