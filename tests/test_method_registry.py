"""One registry per kind of method: a method registered once reaches the explanation, metrics, files and report.

A tabular method is its computation and result type (a :class:`~mlflow_explain.results.TabularResult`
subclass, registered by defining it) plus its step in ``engines.tabular.TABULAR_STEPS``; the test
below adds one ("prediction swing") exactly that way and reads it back from the MLflow run, as
docs/architecture.md describes.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from typing import get_args

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import mlflow_explain
from mlflow_explain.config import ExplainConfig, ImageMethod
from mlflow_explain.engines import tabular
from mlflow_explain.publish.tracking import logged_importances
from mlflow_explain.results import (
    RESULT_TYPES,
    TabularResult,
    Task,
    image_result_types,
    tabular_result_types,
)
from mlflow_explain.spark.engine import SPARK_STEPS

has_torch = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("captum") is not None


def test_every_tabular_method_has_a_local_step_a_spark_step_and_a_config_section():
    assert list(tabular.TABULAR_STEPS) == list(tabular_result_types()) == ["permutation", "shap", "tokens"]
    assert set(SPARK_STEPS) == set(tabular_result_types()) - {"tokens"}  # Spark says it does not compute tokens
    for name in tabular_result_types():
        assert "enabled" in type(getattr(ExplainConfig(), name)).model_fields, f"config section {name} has no enabled"


def test_the_config_names_the_registered_image_methods():
    assert set(get_args(ImageMethod)) == set(image_result_types()) == {"gradcam", "integrated_gradients"}


@pytest.mark.torch
@pytest.mark.skipif(not has_torch, reason="PyTorch and Captum are not installed")
def test_every_image_method_file_registers_its_attribution():
    from mlflow_explain.engines.image import _method_class

    for name, result_type in image_result_types().items():
        assert _method_class(name).result_type is result_type


def test_an_unregistered_name_is_no_attribute():
    explanation = mlflow_explain.Explanation(Task("regression"), ["a"], 1, {})
    assert explanation.shap is None and explanation.gradcam is None
    with pytest.raises(AttributeError, match="no attribute 'shapp'"):
        explanation.shapp  # noqa: B018


@pytest.fixture
def swing_method(monkeypatch):
    """A tabular method added as a new one would be: its result type, its step, its config switch.

    The prediction swing of a feature: the mean absolute change of the prediction when the feature
    is moved from its smallest to its largest value in the rows, the others kept.
    """

    @dataclasses.dataclass
    class SwingResult(TabularResult):
        feature_names: list[str]
        swings: np.ndarray
        n_rows: int

        method = "swing"
        title = "Prediction swing"
        metric_prefix = "prediction_swing"
        metric_std = False
        logged_output = "all"

        @property
        def outputs(self) -> list[str]:
            return ["all"]

        @property
        def primary_output(self) -> str:
            return "all"

        @property
        def unit_names(self) -> list[str]:
            return self.feature_names

        def importance_blocks(self, task):
            return [("all", self.feature_names, self.swings, None)]

        def summary(self):
            return {"n_rows": self.n_rows}

        def run_metrics(self):
            return {"explain/rows_swing": self.n_rows}

    def swing(request, explanation):
        X = np.asarray(request.data.X, dtype=float)
        swings = []
        for j in range(X.shape[1]):
            low, high = X.copy(), X.copy()
            low[:, j], high[:, j] = X[:, j].min(), X[:, j].max()
            swings.append(np.abs(request.model.predict(high) - request.model.predict(low)).mean())
        return SwingResult(request.data.feature_names, np.array(swings), len(X))

    monkeypatch.setitem(tabular.TABULAR_STEPS, "swing", swing)
    monkeypatch.setattr(tabular, "enabled", lambda config, name: name == "swing" or getattr(config, name).enabled)
    yield SwingResult
    del RESULT_TYPES["swing"]


def test_a_new_tabular_method_reaches_metrics_files_report_and_drift(tracking_uri, tmp_path, swing_method):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge().fit(X.to_numpy(), y)
    config = {"permutation": {"enabled": False}, "shap": {"enabled": False}}
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain(model, X.iloc[:100], y.iloc[:100], config=config)
    assert isinstance(explanation.swing, swing_method) and explanation.status == "ok"
    expected = np.abs(model.coef_) * (X.iloc[:100].max() - X.iloc[:100].min()).to_numpy()
    np.testing.assert_allclose(explanation.swing.swings, expected, rtol=1e-9)

    logged = MlflowClient().get_run(run.info.run_id)
    assert logged.data.metrics["prediction_swing/bmi"] == pytest.approx(expected[list(X.columns).index("bmi")])
    assert logged.data.metrics["explain/rows_swing"] == 100
    assert logged.data.tags["mlflow_explain.status"] == "ok"
    folder = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="explain", dst_path=tmp_path)
    summary = json.loads((tmp_path / "explain" / "summary.json").read_text())
    assert summary["swing"] == {"n_rows": 100} and summary["permutation"] is None
    table = (tmp_path / "explain" / "importances.csv").read_text()
    assert table.count("swing,all,") == X.shape[1]
    report = (tmp_path / "explain" / "report.html").read_text()
    assert "<h2>Prediction swing</h2>" in report and "bmi" in report
    assert folder.endswith("explain")

    read_back = logged_importances(logged, list(X.columns))
    assert set(read_back.table["method"]) == {"swing"} and set(read_back.table["output"]) == {"all"}
