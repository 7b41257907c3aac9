"""Faults against a real MLflow server: server down, failing model or SHAP, concurrent writers, time budgets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_diabetes, make_regression
from sklearn.ensemble import RandomForestRegressor

import mlflow_explain
from mlflow_explain.engines import budget
from mlflow_explain.publish import spool
from mlflow_explain.publish.tracking import explanation_metrics
from mlflow_explain.triggers.cli import main as cli

from .explain_worker import CONFIG

FAST = CONFIG  # the concurrent workers' config: few repeats and rows, so the faults stay quick
N_WORKERS = 8


def _diabetes():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X[:300], y[:300].to_numpy(), X[300:], y[300:].to_numpy()


def _artifacts(client: MlflowClient, run_id: str, folder: str = "explain") -> set[str]:
    """Every file under ``folder`` of a run, relative to it."""
    found, pending = set(), [folder]
    while pending:
        for item in client.list_artifacts(run_id, pending.pop()):
            if item.is_dir:
                pending.append(item.path)
            else:
                found.add(item.path[len(folder) + 1 :])
    return found


def _files(directory: Path) -> set[str]:
    return {path.relative_to(directory).as_posix() for path in directory.rglob("*") if path.is_file()}


@pytest.mark.integration
def test_server_down_spools_the_explanation_and_sync_uploads_all_of_it(
    mlflow_server, server_uri, tmp_path, monkeypatch
):
    X_train, y_train, X_val, y_val = _diabetes()
    client = MlflowClient()
    with mlflow.start_run() as run:  # training, while the server is up
        model = RandomForestRegressor(n_estimators=20, max_depth=5, random_state=0).fit(X_train, y_train)
        mlflow.log_param("n_estimators", 20)
        mlflow.log_metric("val_r2", model.score(X_val, y_val))
    spool_dir = tmp_path / "spool"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast instead of MLflow's minutes of retries

    mlflow_server.stop()
    lost = mlflow_explain.explain(model, X_val, y_val, run_id=run.info.run_id, config=FAST)
    explanation = mlflow_explain.explain(
        model, X_val, y_val, run_id=run.info.run_id, config={**FAST, "logging": {"spool_dir": str(spool_dir)}}
    )
    user_script_goes_on = model.predict(X_val[:5])  # the user's script was not interrupted

    assert len(user_script_goes_on) == 5
    assert "logging" in lost.errors and lost.status == "partial", "without a spool the failure is recorded"
    assert "logging" not in explanation.errors and explanation.permutation is not None and explanation.shap is not None
    assert any("spooled" in warning for warning in explanation.warnings)
    [entry] = spool.entries(spool_dir)
    spooled_files = _files(entry.files)
    assert {
        "summary.json",
        "importances.csv",
        "report.html",
        "shap_values.parquet",
        "feature_keys.json",
    } <= spooled_files
    assert entry.run_id == run.info.run_id and entry.tracking_uri == mlflow_server.url

    failed_sync = CliRunner().invoke(cli, ["sync", "--spool-dir", str(spool_dir)])
    assert failed_sync.exit_code == 1 and "stays spooled" in failed_sync.output and spool.entries(spool_dir)

    mlflow_server.start()
    synced = CliRunner().invoke(cli, ["sync", "--spool-dir", str(spool_dir)])
    assert synced.exit_code == 0, synced.output
    assert f"to run {run.info.run_id}" in synced.output and spool.entries(spool_dir) == []

    logged = client.get_run(run.info.run_id)
    computed = explanation_metrics(explanation)
    assert {key: logged.data.metrics[key] for key in computed} == pytest.approx(computed), "every metric arrived"
    assert logged.data.metrics["val_r2"] == pytest.approx(model.score(X_val, y_val)), "training metrics untouched"
    assert logged.data.params == {"n_estimators": "20"}
    assert _artifacts(client, run.info.run_id) == spooled_files, "every file arrived"
    assert logged.data.tags["mlflow_explain.status"] == explanation.status
    tables = [entry["path"] for entry in json.loads(logged.data.tags["mlflow.loggedArtifacts"])]
    assert tables == ["explain/ranking/permutation.json", "explain/ranking/shap.json"], "the UI's tables registered"


class _RequiresConsistentColumns(RandomForestRegressor):
    """A model that refuses rows whose ``sex`` and ``sex_check`` columns disagree, as input contracts do.

    Real rows always agree, so fitting, scoring and TreeSHAP work; permuted copies do not.
    """

    def predict(self, X):
        bad = np.flatnonzero(np.asarray(X["sex"]) != np.asarray(X["sex_check"]))
        if len(bad):
            raise ValueError(f"{len(bad)} rows have sex != sex_check, the first at position {bad[0]}")
        return super().predict(X)


def _read_summary(client: MlflowClient, run_id: str, tmp_path: Path) -> dict:
    return json.loads(Path(client.download_artifacts(run_id, "explain/summary.json", str(tmp_path))).read_text())


@pytest.mark.integration
def test_model_raising_on_some_rows_leaves_shap_logged_and_status_partial(server_uri, tmp_path):
    X_train, y_train, X_val, y_val = _diabetes()
    X_train, X_val = (frame.assign(sex_check=frame["sex"]) for frame in (X_train, X_val))
    model = _RequiresConsistentColumns(n_estimators=20, max_depth=5, random_state=0).fit(X_train, y_train)

    explanation = mlflow_explain.explain(model, X_val, y_val, config=FAST)

    run = MlflowClient().get_run(mlflow.last_active_run().info.run_id)
    assert run.data.tags["mlflow_explain.status"] == "partial"
    assert set(explanation.errors) == {"permutation"} and "sex != sex_check" in explanation.errors["permutation"]
    assert {f"shap_mean_abs/{name}" for name in X_val.columns} <= set(run.data.metrics)
    assert not any(key.startswith("permutation_importance") for key in run.data.metrics)
    files = _artifacts(MlflowClient(), run.info.run_id)
    assert {"error.txt", "shap_bar.svg", "report.html", "shap_values.parquet"} <= files
    assert "sex != sex_check" in _read_summary(MlflowClient(), run.info.run_id, tmp_path)["errors"]["permutation"]


@pytest.mark.integration
def test_failing_shap_step_leaves_permutation_logged_and_status_partial(server_uri, tmp_path):
    X_train, y_train, X_val, y_val = _diabetes()
    model = RandomForestRegressor(n_estimators=20, max_depth=5, random_state=0).fit(X_train, y_train)

    explanation = mlflow_explain.explain(model, X_val, y_val, config={**FAST, "shap": {"algorithm": "linear"}})

    run_id = mlflow.last_active_run().info.run_id
    run = MlflowClient().get_run(run_id)
    assert run.data.tags["mlflow_explain.status"] == "partial" and set(explanation.errors) == {"shap"}
    assert {f"permutation_importance/{name}" for name in X_val.columns} <= set(run.data.metrics)
    assert not any(key.startswith("shap_mean_abs") for key in run.data.metrics)
    assert {"error.txt", "permutation_importance.svg", "report.html"} <= _artifacts(MlflowClient(), run_id)
    assert "not a linear model" in _read_summary(MlflowClient(), run_id, tmp_path)["errors"]["shap"]


@pytest.mark.integration
@pytest.mark.slow
def test_eight_processes_explaining_into_one_server_at_once_lose_nothing(server_uri, tmp_path):
    worker = Path(__file__).with_name("explain_worker.py")
    environment = {
        **os.environ,
        "MLFLOW_EXPERIMENT_NAME": mlflow.get_experiment(mlflow.tracking.fluent._get_experiment_id()).name,
    }
    outputs = [tmp_path / f"worker{seed}.json" for seed in range(N_WORKERS)]
    processes = [
        subprocess.Popen(
            [sys.executable, str(worker), str(seed), str(output)], env=environment, stderr=subprocess.PIPE, text=True
        )
        for seed, output in enumerate(outputs)
    ]
    errors = [process.communicate(timeout=900)[1] for process in processes]
    assert [process.returncode for process in processes] == [0] * N_WORKERS, "\n".join(errors)[-5000:]

    client = MlflowClient()
    reports = [json.loads(output.read_text()) for output in outputs]
    file_lists = []
    for seed, report in enumerate(reports):
        run = client.get_run(report["run_id"])
        assert report["status"] == "ok" and run.data.tags["mlflow_explain.status"] == "ok"
        assert run.data.params == {"seed": str(seed)} and "train_r2" in run.data.metrics
        assert {key: run.data.metrics[key] for key in report["metrics"]} == pytest.approx(report["metrics"])
        file_lists.append(_artifacts(client, report["run_id"]))
    assert len({report["run_id"] for report in reports}) == N_WORKERS
    core = {"summary.json", "importances.csv", "report.html", "shap_values.parquet", "shap_bar.svg"}

    def same_for_every_run(files):  # dependence/ plots the model's own top features, compare/ needs an earlier run
        return {name for name in files if not name.startswith(("compare/", "dependence/"))}

    for files in file_lists:
        assert core <= files and same_for_every_run(files) == same_for_every_run(file_lists[0])
        assert len([name for name in files if name.startswith("dependence/")]) == FAST["shap"]["dependence_top_k"]


def test_permutation_limits_cut_rows_then_repeats():
    fits = budget.permutation_limits(1e-6, n_rows=1000, rows=1000, n_units=7, n_repeats=5, budget_s=10)
    assert (fits.rows, fits.repeats, fits.message) == (1000, 5, None)
    fewer_rows = budget.permutation_limits(1e-4, n_rows=1000, rows=1000, n_units=7, n_repeats=5, budget_s=2.1)
    assert (fewer_rows.rows, fewer_rows.repeats) == (571, 5) and fewer_rows.estimated_s <= 2.1
    assert "estimated 4 s for 1000 rows x 5 repeats x 7 features" in fewer_rows.message
    assert "using 571 rows x 5 repeats" in fewer_rows.message
    fewer_repeats = budget.permutation_limits(1e-4, n_rows=1000, rows=1000, n_units=7, n_repeats=5, budget_s=0.3)
    assert (fewer_repeats.rows, fewer_repeats.repeats) == (budget.MIN_ROWS, 2) and fewer_repeats.estimated_s <= 0.3
    hopeless = budget.permutation_limits(1e-2, n_rows=1000, rows=1000, n_units=7, n_repeats=5, budget_s=1)
    assert (hopeless.rows, hopeless.repeats) == (budget.MIN_ROWS, 1) and "still over the budget" in hopeless.message


def test_shap_limits_cut_rows():
    assert budget.shap_limits(1 / 1024, rows=2000, budget_s=5).message is None
    cut = budget.shap_limits(1 / 64, rows=2000, budget_s=5)
    assert cut.rows == 320 and "estimated 31 s for 2000 rows" in cut.message and "explaining 320 rows" in cut.message
    assert budget.shap_limits(1.0, rows=2000, budget_s=5).rows == budget.MIN_ROWS


@pytest.mark.slow  # enough rows and trees that the budgets bind
def test_time_budget_makes_both_methods_do_less_and_say_so(tracking_uri):
    X, y = make_regression(n_samples=10000, n_features=12, noise=5.0, random_state=0)
    X = pd.DataFrame(X, columns=[f"x{j}" for j in range(12)])
    model = RandomForestRegressor(n_estimators=40, max_depth=10, random_state=0, n_jobs=1).fit(X[:3000], y[:3000])
    config = {
        "permutation": {"n_repeats": 5, "budget_s": 0.2},
        "shap": {"max_rows": 2000, "budget_s": 0.2},
        "compare": {"enabled": False},
    }

    explanation = mlflow_explain.explain(model, X, y, config=config)

    assert explanation.status == "ok"
    permutation_note = next(w for w in explanation.warnings if w.startswith("permutation:"))
    shap_note = next(w for w in explanation.warnings if w.startswith("shap:"))
    assert "over budget_s=0.2" in permutation_note and "over budget_s=0.2" in shap_note
    used = explanation.permutation.n_rows * explanation.permutation.n_repeats
    assert used < 10000 * 5 and f"using {explanation.permutation.n_rows} rows" in permutation_note
    assert len(explanation.shap.row_positions) < 2000
    assert f"explaining {len(explanation.shap.row_positions)} rows" in shap_note
    summary = json.loads(
        Path(
            MlflowClient().download_artifacts(mlflow.last_active_run().info.run_id, "explain/summary.json", os.getcwd())
        ).read_text()
    )
    assert permutation_note in summary["warnings"] and shap_note in summary["warnings"]
