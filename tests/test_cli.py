"""The mlflow-explain command line: config, and explain on a logged model (in-process and as a subprocess)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys

import mlflow
import pytest
import yaml
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor

from mlflow_explain.triggers.cli import main

# Declared, as users may: inferring them loads the model in a subprocess at every log_model (10-40 s here).
REQUIREMENTS = [*mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=False), "skops"]


@pytest.fixture(scope="module")
def forest(tmp_path_factory):
    """A random forest fitted once, and its validation rows as Parquet (tests only read them)."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = RandomForestRegressor(n_estimators=20, random_state=0).fit(X.iloc[:300], y.iloc[:300])
    data = tmp_path_factory.mktemp("forest") / "val.parquet"
    X.iloc[300:].assign(progression=y.iloc[300:]).to_parquet(data)
    return model, data


@pytest.fixture
def logged_model(forest, tracking_uri):
    """The forest logged with mlflow.sklearn.log_model (skops) into a new run of this test's store."""
    model, data = forest
    with mlflow.start_run() as run:
        mlflow.log_param("n_estimators", 20)
        info = mlflow.sklearn.log_model(
            model, name="model", skops_trusted_types=["sklearn.tree._tree.Tree"], pip_requirements=REQUIREMENTS
        )
    return info.model_uri, run.info.run_id, data


def test_config_prints_the_effective_config(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("permutation:\n  n_repeats: 9\n")
    result = CliRunner().invoke(main, ["config", "--config", str(path), "--set", "shap.max_rows=123"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["permutation"]["n_repeats"] == 9 and printed["shap"]["max_rows"] == 123
    assert printed["shap"]["background_rows"] == 100


def test_config_rejects_unknown_keys_with_exit_code_2():
    result = CliRunner().invoke(main, ["config", "--set", "shap.rows=1"])
    assert result.exit_code == 2
    assert "Unknown config key(s): shap.rows" in result.output


def test_explain_logs_into_the_models_run(logged_model):
    model_uri, run_id, data = logged_model
    result = CliRunner().invoke(
        main,
        [
            "explain",
            "--model-uri",
            model_uri,
            "--data",
            str(data),
            "--target",
            "progression",
            "--set",
            "permutation.n_repeats=3",
            "--set",
            "shap.max_rows=50",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"Explained RandomForestRegressor into run {run_id}: status ok." in result.output
    run = MlflowClient().get_run(run_id)
    prefix = "permutation_importance/"
    importances = {key[len(prefix) :]: value for key, value in run.data.metrics.items() if key.startswith(prefix)}
    summary = result.stdout.splitlines()
    header = summary.index("Top features of 10, Permutation importance (decrease in r2 when the feature is shuffled):")
    listed = dict(line.split()[1:3] for line in summary[header + 1 : header + 6])
    assert list(listed) == sorted(importances, key=importances.get, reverse=True)[:5]
    assert {name: float(value) for name, value in listed.items()} == pytest.approx(
        {name: importances[name] for name in listed}, rel=1e-3
    )
    address = (
        f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run_id}/artifacts/explain/report.html"
    )
    assert f"Start the MLflow UI in this folder with `mlflow ui --backend-store-uri {mlflow.get_tracking_uri()}`, " in (
        result.output
    )
    assert f"then open the report: {address}" in result.output
    assert run.data.tags["mlflow_explain.status"] == "ok" and run.data.params["n_estimators"] == "20"
    assert "permutation_importance/bmi" in run.data.metrics and run.data.metrics["explain/rows_shap"] == 50
    assert run.data.metrics["explain/rows_validation"] == 142


def test_explain_into_another_run(logged_model):
    model_uri, run_id, data = logged_model
    with mlflow.start_run() as other:
        pass
    result = CliRunner().invoke(
        main,
        [
            "explain",
            "--model-uri",
            model_uri,
            "--data",
            str(data),
            "--target",
            "progression",
            "--run-id",
            other.info.run_id,
            "--set",
            "shap.enabled=false",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "permutation_importance/bmi" in MlflowClient().get_run(other.info.run_id).data.metrics
    assert "permutation_importance/bmi" not in MlflowClient().get_run(run_id).data.metrics


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--target", "nope"], "Target column 'nope' is not in the validation data"),
        (["--target", "progression", "--set", "shap.algo=tree"], "Unknown config key(s): shap.algo"),
        (["--target", "progresion"], "Target column 'progresion' is not in the validation data (did you mean "),
        (["--target", "progression", "--set", "shap.algo=tree"], "Unknown config key(s): shap.algo"),
        (
            ["--target", "progression", "--run-id", "0" * 32],
            f"MLflow: Run with id={'0' * 32} not found; searched the tracking store sqlite:///",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(logged_model, arguments, message):
    model_uri, _, data = logged_model
    result = CliRunner().invoke(main, ["explain", "--model-uri", model_uri, "--data", str(data)] + arguments)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_an_unknown_model_names_the_store_searched(tracking_uri):
    result = CliRunner().invoke(main, ["explain", "--model-uri", "models:/m-0123456789abcdef", "--target", "y"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "Error: MLflow: Logged model with ID 'm-0123456789abcdef' not found; searched the tracking store "
        f"{tracking_uri} (another store: --tracking-uri or MLFLOW_TRACKING_URI).\n"
    )


@pytest.mark.parametrize("permutation, exit_code", [("false", 1), ("true", 0)])
def test_a_failed_method_is_one_warning_and_a_failed_explanation_exits_1(logged_model, permutation, exit_code, caplog):
    model_uri, run_id, data = logged_model
    arguments = ["--target", "progression", "--set", "shap.algorithm=linear", "--set", "permutation.n_repeats=2"]
    with caplog.at_level(logging.WARNING, logger="mlflow_explain"):
        result = CliRunner().invoke(
            main,
            ["explain", "--model-uri", model_uri, "--data", str(data), "--set", f"permutation.enabled={permutation}"]
            + arguments,
        )
    assert result.exit_code == exit_code, result.output
    warned = [record.getMessage() for record in caplog.records]
    assert len(warned) == 1 and warned[0].startswith("mlflow_explain: shap failed: ValueError"), warned
    assert "is not a linear model" in warned[0]
    expected = "failed" if exit_code else "partial"
    assert f"status {expected} (shap failed: see explain/error.txt in the run)." in result.stdout
    said = result.stderr.strip().splitlines()
    assert said == ([f"Error: the explanation of run {run_id} failed: no method gave a result."] if exit_code else [])
    assert MlflowClient().get_run(run_id).data.tags["mlflow_explain.status"] == expected


def test_missing_data_file_exits_2(logged_model, tmp_path):
    model_uri, _, _ = logged_model
    result = CliRunner().invoke(
        main, ["explain", "--model-uri", model_uri, "--data", str(tmp_path / "x.csv"), "--target", "y"]
    )
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_help_documents_every_option():
    result = CliRunner().invoke(main, ["explain", "--help"])
    for option in ("--model-uri", "--data", "--target", "--run-id", "--config", "--set"):
        assert option in result.output


@pytest.mark.integration
def test_explain_as_a_real_subprocess(logged_model, tracking_uri):
    model_uri, run_id, data = logged_model
    executable = shutil.which("mlflow-explain", path=os.path.dirname(sys.executable)) or shutil.which("mlflow-explain")
    assert executable, "the console script is installed with the package"
    environment = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    done = subprocess.run(
        [
            executable,
            "explain",
            "--model-uri",
            model_uri,
            "--data",
            str(data),
            "--target",
            "progression",
            "--set",
            "permutation.n_repeats=2",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert MlflowClient().get_run(run_id).data.tags["mlflow_explain.status"] == "ok"
    bad = subprocess.run(
        [executable, "explain", "--model-uri", model_uri, "--data", str(data), "--target", "absent"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and bad.stderr.strip().startswith("Error: Target column 'absent'")
