"""The benchmark's helpers: every tool gets the same rows and agrees with mlflow_explain (no timings here)."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from benchmarks import peers
from benchmarks.cases import diabetes_forest, mixed_pipeline
from benchmarks.report import Row, markdown, targets
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task


def test_permutation_peers_give_identical_importances_and_the_limit_predicts_every_copy():
    case = diabetes_forest()
    ours = peers.ours_permutation(case, n_repeats=2)
    reference = peers.sklearn_permutation(case, n_repeats=2)
    assert peers.importance_gap(ours, reference) < 1e-12
    assert ours.importances["r2"].max() > 0.01  # the forest does use its features
    stacked = peers.limit_rows(case, n_repeats=2)
    assert stacked.shape == (len(case.X) * (case.X.shape[1] * 2 + 1), case.X.shape[1])
    assert len(peers.limit_predict(case, stacked)) == len(stacked)


def test_shap_direct_on_a_pipeline_sums_back_to_the_same_raw_values():
    with threadpool_limits(1):  # OpenMP boosting on a busy 2-core CI machine: one thread is far faster
        case = mixed_pipeline(n_rows=600)
        assert case.X.shape[1] == 60 and case.mlflow_model_agnostic
        ours = shap_values(
            case.model, case.X, detect_task(case.model, case.y), feature_names=list(case.X.columns), max_rows=40
        )
        direct = peers.shap_direct(case, ours)
        gap = peers.shap_gap(case, ours, direct)
    assert ours.algorithm == "tree", ours.reason
    assert direct.shape[0] == 40 and direct.shape[1] > 60 and direct.shape[2] == 1  # one-hot columns
    assert gap < 1e-9
    assert np.abs(direct).max() > 0


def test_targets_are_met_or_not_from_the_medians():
    case = diabetes_forest()
    row = Row(case=case, n_repeats=5, importance_gap=0.0, shap_gap=0.0, shap_rows=111)
    row.limit, row.ours_permutation = peers.Timing(0.10, 3), peers.Timing(0.20, 3)
    row.sklearn_permutation = peers.Timing(1.5, 3)
    row.eli5_permutation = peers.Timing(None, 3, failure="ImportError: no eli5")
    row.shap_direct, row.ours_shap = peers.Timing(1.0, 3), peers.Timing(1.1, 3)
    row.mlflow_shap, row.plugin, row.plugin_own = peers.Timing(200.0, 1), peers.Timing(2.0, 1), peers.Timing(5.0, 1)
    row.explain = peers.Timing(3.0, 1, result=(3.0, 2.5))
    checks = targets([row], {"peak_mib": 900.0}, {"rows": 50_000, "features": 100, "repeats": 10})
    assert [check.met for check in checks] == [False, True, True, True, True, True, True, True, False]
    assert "2.00x the limit" in checks[0].measured and "40.00x faster" in checks[-1].measured
    text = markdown(
        [row],
        checks,
        {"failure": "skipped"},
        {"rows": 1, "features": 1, "repeats": 1},
        machine="test machine",
        command="python benchmarks/run.py",
        repeats=(3, 1),
        seconds=60,
    )
    assert "n/a: ImportError: no eli5" in text and "**not met**" in text and "test machine" in text
    assert "| 5 | 40x | 2 | 100x |" in text, "the plugin's own time and the whole evaluate call, each with its ratio"


@pytest.mark.slow  # logs a model, its requirements inferred in a subprocess, and runs mlflow.models.evaluate
def test_the_plugin_figure_times_the_explain_evaluator_inside_a_real_evaluate_call(tracking_uri):
    from mlflow_explain.triggers.evaluator import ExplainEvaluator

    case = diabetes_forest()
    case.model.set_params(n_estimators=10).fit(case.X, case.y)  # a small forest: this test is about the timing
    original = ExplainEvaluator.evaluate
    rows = case.X.iloc[:40]
    whole, own = peers.plugin_evaluate(peers.log_model(case), case, rows, peers.plugin_config(len(rows)), repeats=1)
    assert ExplainEvaluator.evaluate is original, "the benchmark's wrapper is removed afterwards"
    assert whole.failure is None and own.failure is None, (whole.failure, own.failure)
    assert 0 < own.seconds < whole.seconds, "the plugin's own part is inside the whole evaluate call"
    assert "explain/shap_values.parquet" in whole.result and "explain/report.html" in whole.result
