"""The examples run as a new user runs them, and leave explained runs behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from .helpers import run_example, run_example_process

pytestmark = pytest.mark.integration


def _run_example(name: str, cwd: Path, **variables: str) -> str:
    output = run_example(name, cwd, **variables)
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in output
    return output


def _client(cwd: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")


def test_quickstart_explains_into_a_local_sqlite_store_without_a_warning(tmp_path):
    done = run_example_process("quickstart.py", tmp_path)
    output = done.stdout
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in output
    warned = [line for line in done.stderr.splitlines() if re.search("warn", line, re.IGNORECASE)]
    assert warned == [], "no warning, MLflow's pickle-safety warning included"
    run_id = re.search(r"Explained run ([0-9a-f]{32})", output).group(1)
    run = _client(tmp_path).get_run(run_id)
    assert run.data.tags["mlflow_explain.status"] == "ok"
    assert "permutation_importance/mean radius" in run.data.metrics and "val_accuracy" in run.data.metrics
    address = (
        f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run_id}/artifacts/explain/report.html"
    )
    assert "Start the MLflow UI in this folder with `mlflow ui --backend-store-uri sqlite:///mlflow.db`" in output
    assert f"then open the report: {address}" in output
    assert "explain" in {item.path for item in _client(tmp_path).list_artifacts(run_id)}


def test_autolog_example_explains_every_model(tmp_path):
    output = _run_example("autolog_sklearn.py", tmp_path)
    run_ids = re.findall(r"run ([0-9a-f]{32})  explanation: ok", output)
    assert len(run_ids) == 4
    for run_id in run_ids:
        metrics = _client(tmp_path).get_run(run_id).data.metrics
        assert "shap_mean_abs/proline" in metrics and "training_score" in metrics


def test_evaluate_plugin_example(tmp_path):
    output = _run_example("evaluate_plugin.py", tmp_path)
    run_id = re.search(r"Evaluated run ([0-9a-f]{32})", output).group(1)
    run = _client(tmp_path).get_run(run_id)
    assert run.data.tags["mlflow_explain.status"] == "ok"
    assert "r2_score" in run.data.metrics and "permutation_importance/bmi" in run.data.metrics


@pytest.mark.torch
def test_gradcam_digits_example(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("captum")
    output = _run_example("gradcam_digits.py", tmp_path, GRADCAM_EPOCHS="3", OMP_NUM_THREADS="1")
    run_id = re.search(r"Explained run ([0-9a-f]{32})", output).group(1)
    run = _client(tmp_path).get_run(run_id)
    assert run.data.tags["mlflow_explain.status"] == "ok" and run.data.params["epochs"] == "3"
    assert run.data.metrics["val_accuracy"] > 0.5 and run.data.metrics["explain/rows_gradcam"] == 540
    assert all(-1 <= run.data.metrics[f"gradcam/{name}_drop"] <= 1 for name in ("deletion", "random"))
    assert run.data.metrics["integrated_gradients/faithfulness"] > 0, "on the digits, IG beats a random mask"
    logged = {item.path for item in _client(tmp_path).list_artifacts(run_id, "explain/gradcam")}
    assert {
        "explain/gradcam/class_0.svg",
        "explain/gradcam/mean_heatmaps.svg",
        "explain/gradcam/heatmaps_predicted.npy",
    } <= logged


@pytest.mark.torch
@pytest.mark.slow  # shap's sampled explainer compiles its numba kernels (~20 s of CPU) until deep SHAP lands
def test_pytorch_tabular_example_explains_the_module_as_it_is(tmp_path):
    pytest.importorskip("torch")
    output = _run_example("pytorch_tabular.py", tmp_path, TABULAR_EPOCHS="60", OMP_NUM_THREADS="1")
    run_id = re.search(r"Explained run ([0-9a-f]{32}) \(status: ok, task: binary\)", output).group(1)
    assert "2 output(s) not summing to 1" in output  # two logits, told apart from probabilities
    run = _client(tmp_path).get_run(run_id)
    assert run.data.tags["mlflow_explain.status"] == "ok" and run.data.metrics["val_accuracy"] > 0.9
    assert run.data.metrics["explain/baseline_score.accuracy"] == pytest.approx(run.data.metrics["val_accuracy"])
    assert (
        "permutation_importance/worst radius" in run.data.metrics and "shap_mean_abs/worst radius" in run.data.metrics
    )
    assert "Explain the logged model again: mlflow-explain explain --model-uri models:/" in output


@pytest.mark.torch
@pytest.mark.slow  # imports Lightning and trains two models in a fresh interpreter
def test_lightning_autolog_example(tmp_path):
    pytest.importorskip("lightning")
    pytest.importorskip("captum")
    output = _run_example("lightning_autolog.py", tmp_path, LIGHTNING_EPOCHS="2", OMP_NUM_THREADS="1")
    run_ids = re.findall(r"run ([0-9a-f]{32})  explanation: ok", output)
    assert len(run_ids) == 2
    cnn, mlp = (_client(tmp_path).get_run(run_id) for run_id in run_ids)
    assert cnn.data.params["epochs"] == "2" and "train_loss" in cnn.data.metrics, "MLflow's own autologging"
    assert -1 <= cnn.data.metrics["gradcam/deletion_drop"] <= 1
    assert mlp.data.params["epochs"] == "2" and "permutation_importance/mean radius" in mlp.data.metrics
    assert "shap_mean_abs/mean radius" in mlp.data.metrics


def test_serve_explanations_example_serves_one_row_and_refuses_a_bad_request(tmp_path):
    output = _run_example("serve_explanations.py", tmp_path)
    assert "HTTP 200" in output
    assert "A request without 'purpose': HTTP 400: Error: The request misses the columns 'purpose'." in output
    total, log_odds = map(float, re.search(r"total ([-+.\d]+), the model's log-odds ([-+.\d]+)", output).groups())
    assert abs(total - log_odds) < 1e-6
    assert all(f"{column:>12}: " in output for column in ["income", "debt_ratio", "employment", "purpose"])
