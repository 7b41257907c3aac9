"""Class names for integer targets: explain(class_names=), autolog(class_names=), --class-names (issue 16)."""

from __future__ import annotations

import json

import mlflow
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import mlflow_explain
from mlflow_explain.errors import InvalidInputError
from mlflow_explain.triggers.cli import main

NAMES = ["setosa", "versicolor", "virginica"]
CONFIG = {"permutation": {"n_repeats": 2}, "shap": {"max_rows": 60, "dependence_top_k": 1, "local_rows": 1}}


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)  # y is 0, 1, 2
    model = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X.iloc[::2], y.iloc[::2])
    return model, X.iloc[1::2], y.iloc[1::2]


def test_class_names_are_in_metric_keys_tables_plots_and_report(iris, tracking_uri, tmp_path):
    model, X, y = iris
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain(model, X, y, config=CONFIG, class_names=NAMES)
    client = MlflowClient()
    metrics = client.get_run(run.info.run_id).data.metrics
    for name in NAMES:
        assert f"shap_mean_abs.{name}/petal length _cm_" in metrics
    assert not any(key.startswith(("shap_mean_abs.0/", "shap_mean_abs.1/", "shap_mean_abs.2/")) for key in metrics)
    folder = client.download_artifacts(run.info.run_id, "explain", str(tmp_path))
    summary = json.loads((tmp_path / "explain" / "summary.json").read_text(encoding="utf-8"))
    assert summary["task"]["classes"] == [0, 1, 2] and summary["task"]["class_names"] == NAMES
    assert summary["shap"]["outputs"] == NAMES
    table = pq.read_table(f"{folder}/shap_values.parquet").to_pandas()
    assert "shap:virginica:petal length (cm)" in table.columns
    beeswarm = (tmp_path / "explain" / "shap_beeswarm.versicolor.svg").read_text(encoding="utf-8")
    assert "class &#x27;versicolor&#x27;" in beeswarm or "class 'versicolor'" in beeswarm
    report = (tmp_path / "explain" / "report.html").read_text(encoding="utf-8")
    assert "0: setosa, 1: versicolor, 2: virginica" in report
    assert explanation.importances.query("method == 'shap'")["output"].unique().tolist() == ["all", *NAMES]


def test_a_mapping_names_classes_by_label_and_bad_names_are_one_sentence(iris, tracking_uri):
    model, X, y = iris
    by_label = {2: "virginica", 0: "setosa", 1: "versicolor"}
    explanation = mlflow_explain.explain(model, X, y, config=CONFIG, class_names=by_label)
    assert explanation.shap.output_names == NAMES
    with pytest.raises(InvalidInputError, match="class_names has 2 name.s. but the model has 3 classes"):
        mlflow_explain.explain(model, X, y, config=CONFIG, class_names=NAMES[:2])
    with pytest.raises(InvalidInputError, match="class_names must be distinct"):
        mlflow_explain.explain(model, X, y, config=CONFIG, class_names=["a", "a", "b"])


def test_autolog_and_the_cli_take_class_names(iris, tracking_uri, tmp_path):
    model, X, y = iris
    mlflow_explain.autolog(validation_data=(X, y), config=CONFIG, class_names=NAMES)
    try:
        with mlflow.start_run() as run:
            LogisticRegression(max_iter=500).fit(X, y)
    finally:
        mlflow_explain.autolog(disable=True)
    assert "shap_mean_abs.virginica/petal width _cm_" in MlflowClient().get_run(run.info.run_id).data.metrics

    with mlflow.start_run() as logged:
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
    data = tmp_path / "val.csv"
    X.assign(species=y).to_csv(data, index=False)
    arguments = ["explain", "--model-uri", info.model_uri, "--data", str(data), "--target", "species"]
    sets = ["--set", "permutation.n_repeats=2", "--set", "shap.max_rows=40", "--set", "logging.report=false"]
    result = CliRunner().invoke(main, [*arguments, "--class-names", "setosa, versicolor, virginica", *sets])
    assert result.exit_code == 0, result.output
    assert "shap_mean_abs.setosa/sepal width _cm_" in MlflowClient().get_run(logged.info.run_id).data.metrics
    wrong = CliRunner().invoke(main, [*arguments, "--class-names", "setosa,versicolor", *sets])
    assert wrong.exit_code == 2 and "class_names has 2 name(s) but the model has 3 classes" in wrong.output
