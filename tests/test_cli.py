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


def _console_script() -> str:
    executable = shutil.which("mlflow-explain", path=os.path.dirname(sys.executable)) or shutil.which("mlflow-explain")
    assert executable, "the console script is installed with the package"
    return executable


def _cli(*arguments: str, cwd=None, tracking_uri: str | None = None) -> subprocess.CompletedProcess:
    """``mlflow-explain`` as a user runs it: a new process, MLflow's variables cleared but ``tracking_uri``."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    if tracking_uri:
        environment["MLFLOW_TRACKING_URI"] = tracking_uri
    return subprocess.run(
        [_console_script(), *arguments], cwd=cwd, env=environment, capture_output=True, text=True, timeout=600
    )


@pytest.mark.integration
def test_explain_as_a_real_subprocess(logged_model, tracking_uri):
    model_uri, run_id, data = logged_model
    done = _cli(
        "explain", "--model-uri", model_uri, "--data", str(data), "--target", "progression", "--set",
        "permutation.n_repeats=2", tracking_uri=tracking_uri,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == "" and f"into run {run_id}: status ok." in done.stdout
    assert MlflowClient().get_run(run_id).data.tags["mlflow_explain.status"] == "ok"


@pytest.mark.integration
def test_bad_input_on_stderr_is_the_one_sentence_without_download_bars(logged_model, tracking_uri):
    _, run_id, data = logged_model
    bad = _cli(  # a runs:/ URI: MLflow downloads the model's files, with a progress bar unless told not to
        "explain", "--model-uri", f"runs:/{run_id}/model", "--data", str(data), "--target", "progresion",
        tracking_uri=tracking_uri,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith(
        "Error: Target column 'progresion' is not in the validation data (did you mean 'progression'?); its columns "
        "are: age, sex, bmi,"
    )
    assert bad.stderr.count("\n") == 1 and bad.stderr.endswith("s6, progression.\n"), bad.stderr


@pytest.mark.integration
def test_a_store_that_is_not_there_is_named_not_created(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _cli("explain", "--model-uri", f"runs:/{'0' * 32}/model", "--data", "val.csv", cwd=elsewhere)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"Error: There is no MLflow tracking store at sqlite:///{elsewhere}/mlflow.db ({elsewhere}/mlflow.db does "
        "not exist); point at yours with --tracking-uri or MLFLOW_TRACKING_URI, or run from the folder that holds "
        "it.\n"
    )
    assert list(elsewhere.iterdir()) == [], "no empty mlflow.db left behind"
