"""Comparison across runs and experiments, drift against a baseline, diagnostics."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from scipy.stats import spearmanr
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Lasso, Ridge

import mlflow_explain
from mlflow_explain.engines.comparison import ndcg_at_k, spearman, top_k_overlap
from mlflow_explain.engines.diagnostics import above_noise
from mlflow_explain.triggers.cli import main

FAST = {
    "permutation": {"n_repeats": 3},
    "shap": {"max_rows": 150, "dependence_top_k": 1, "local_rows": 1},
    "logging": {"report": False},
}


def _hand_ndcg(reference: dict, other: dict, k: int) -> float:
    """nDCG@k written out the long way: relevance from the reference, order from the other ranking."""
    relevance = {feature: max(value, 0.0) for feature, value in reference.items()}
    ranked = sorted(other, key=other.get, reverse=True)[:k]
    ideal = sorted(relevance.values(), reverse=True)[:k]
    dcg = sum(relevance.get(feature, 0.0) / np.log2(position + 2) for position, feature in enumerate(ranked))
    return dcg / sum(value / np.log2(position + 2) for position, value in enumerate(ideal))


def test_stability_measures_by_hand():
    a = pd.Series({"x": 5.0, "y": 3.0, "z": 1.0, "w": 0.5})
    b = pd.Series({"x": 4.0, "y": 0.1, "z": 2.0, "w": 0.0})
    assert spearman(a, b) == pytest.approx(spearmanr([5, 3, 1, 0.5], [4, 0.1, 2, 0]).statistic)
    assert top_k_overlap(a, b, 2) == 0.5
    assert ndcg_at_k(a, a, 3) == pytest.approx(1.0)
    expected = (5 / np.log2(2) + 1 / np.log2(3)) / (5 / np.log2(2) + 3 / np.log2(3))
    assert ndcg_at_k(a, b, 2) == pytest.approx(expected)
    assert ndcg_at_k(a, b, 2) == pytest.approx(_hand_ndcg(a.to_dict(), b.to_dict(), 2))


def _explain_in(experiment: str, model, X, y, name: str, config=FAST) -> str:
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=name) as run:
        model.fit(X, y)
        mlflow_explain.explain(model, X, y, config=config)
    return run.info.run_id


def _importances(client, run_id, tmp_path) -> pd.DataFrame:
    return pd.read_csv(client.download_artifacts(run_id, "explain/importances.csv", str(tmp_path)))


def test_compare_two_experiments_through_the_cli(tracking_uri, tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    runs = [
        _explain_in("alpha", RandomForestRegressor(n_estimators=20, random_state=0), X, y, "forest"),
        _explain_in("alpha", Ridge(), X, y, "ridge"),
        _explain_in("alpha", GradientBoostingRegressor(n_estimators=30, random_state=0), X, y, "boosting"),
        _explain_in("beta", HistGradientBoostingRegressor(max_iter=30, random_state=0), X, y, "hist-boosting"),
        _explain_in("beta", Lasso(alpha=0.5), X, y, "lasso"),
    ]
    result = CliRunner().invoke(
        main, ["compare", "--experiment", "alpha", "--experiment", "beta", "--set", "compare.top_k=5"]
    )
    assert result.exit_code == 0, result.output
    comparison_id = result.output.split("comparison run ")[1].split(".")[0]
    client = MlflowClient()
    comparison = client.get_run(comparison_id)
    assert comparison.data.tags["mlflow_explain.kind"] == "comparison"
    assert comparison.data.metrics["compare/runs"] == 5
    listed = {item.path for item in client.list_artifacts(comparison_id, "compare")}
    for name in (
        "importance_heatmap.permutation.svg",
        "importance_heatmap.shap.svg",
        "rank_shift.permutation.svg",
        "rank_shift.shap.svg",
        "importances_by_run.csv",
        "stability.csv",
        "report.html",
    ):
        assert f"compare/{name}" in listed
    page = open(client.download_artifacts(comparison_id, "compare/report.html", str(tmp_path)), encoding="utf-8").read()
    assert "forest (alpha)" in page and "lasso (beta)" in page and "data:image/svg+xml;base64," in page

    stability = pd.read_csv(client.download_artifacts(comparison_id, "compare/stability.csv", str(tmp_path)))
    assert len(stability) == 10 * 2, "every pair of the five runs, for both methods"
    tables = {run_id: _importances(client, run_id, tmp_path / run_id) for run_id in runs}
    for row in stability.itertuples():
        first, second = tables[row.run_a], tables[row.run_b]
        output = "all" if row.method == "shap" else "r2"
        a = first[(first.method == row.method) & (first.output == output)].set_index("feature")["importance"]
        b = (
            second[(second.method == row.method) & (second.output == output)]
            .set_index("feature")["importance"]
            .reindex(a.index)
        )
        assert row.spearman == pytest.approx(spearmanr(a, b).statistic)
        assert row.top_5_overlap == pytest.approx(len(set(a.nlargest(5).index) & set(b.nlargest(5).index)) / 5)
        assert row.ndcg_at_5 == pytest.approx(_hand_ndcg(a.to_dict(), b.to_dict(), 5))
    by_run = pd.read_csv(client.download_artifacts(comparison_id, "compare/importances_by_run.csv", str(tmp_path)))
    assert set(by_run["run_id"]) == set(runs) and set(by_run["experiment"]) == {"alpha", "beta"}


def test_leaked_target_is_flagged_and_drift_alert_raised(tracking_uri, tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    rng = np.random.RandomState(0)
    clean = X.assign(leak=rng.randn(len(X)))
    leaked = X.assign(leak=y + rng.randn(len(X)))
    config = {**FAST, "logging": {"report": True}}
    baseline = _explain_in("leakage", RandomForestRegressor(n_estimators=30, random_state=0), clean, y, "clean", config)
    suspect = _explain_in(
        "leakage", RandomForestRegressor(n_estimators=30, random_state=0), leaked, y, "leaked", config
    )
    client = MlflowClient()
    assert "mlflow_explain.drift" not in client.get_run(baseline).data.tags, "the first run has no baseline"
    run = client.get_run(suspect)
    assert run.data.tags["mlflow_explain.drift"] == "alert"
    assert run.data.metrics["explain/drift_ndcg"] < 0.9
    summary = json.loads(open(client.download_artifacts(suspect, "explain/summary.json", str(tmp_path))).read())
    assert summary["drift"]["baseline_run_id"] == baseline and summary["drift"]["alert"] is True
    leaks = [f for f in summary["diagnostics"] if f["kind"] == "target_leakage"]  # not a mere dominant feature
    assert [(f["features"], f["severity"]) for f in leaks] == [(["leak"], "warning")]
    report = open(client.download_artifacts(suspect, "explain/report.html", str(tmp_path)), encoding="utf-8").read()
    assert "Explanation drift alert" in report and "leak" in report and "target leakage" in report
    moved = pd.read_csv(client.download_artifacts(suspect, "explain/compare/drift_moved_features.csv", str(tmp_path)))
    assert moved.iloc[0]["feature"] == "leak" and moved.iloc[0]["rank"] == 1


def test_same_model_twice_does_not_alert(tracking_uri):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    _explain_in("stable", Ridge(), X, y, "first")
    second = _explain_in("stable", Ridge(), X, y, "second")
    run = MlflowClient().get_run(second)
    assert run.data.tags["mlflow_explain.drift"] == "ok" and run.data.metrics["explain/drift_ndcg"] == pytest.approx(
        1.0
    )


def test_diagnostics_find_noise_and_correlated_features(tracking_uri):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    rng = np.random.RandomState(1)
    data = X.assign(bmi_copy=X["bmi"] + rng.randn(len(X)) * 0.001, constant=1.0)
    with mlflow.start_run():
        explanation = mlflow_explain.explain(Ridge(alpha=0.01).fit(data, y), data, y, config=FAST)
    kinds = {finding.kind: finding for finding in explanation.diagnostics}
    assert "{'bmi', 'bmi_copy'}" in kinds["correlated_features"].message, "a cluster of their own"
    assert "constant" in kinds["noise_features"].features, "shuffling a constant column cannot change the score"
    agreement = kinds["method_disagreement"]
    table = explanation.importances
    permutation = table[(table.method == "permutation")].set_index("feature")["importance"]
    shap = table[(table.method == "shap") & (table.output == "all")].set_index("feature")["importance"]
    ranked = list(above_noise(explanation))  # the features above noise: 'constant' and the like are not ranked
    assert list(agreement.features) == ranked and "constant" not in ranked
    assert agreement.value == pytest.approx(spearmanr(permutation[ranked], shap[ranked]).statistic)


def test_edge_cases_give_clear_messages(tracking_uri):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    explained = _explain_in("edges", Ridge(), X, y, "explained")
    mlflow.set_experiment("edges")
    with mlflow.start_run(run_name="not-explained") as plain:
        mlflow.log_metric("rmse", 1.0)
    other_features = _explain_in("edges", Ridge(), X.drop(columns=["age"]), y, "fewer-features")
    with mlflow.start_run(run_name="deleted") as deleted:
        pass
    MlflowClient().delete_run(deleted.info.run_id)

    comparison = mlflow_explain.compare(
        run_ids=[explained, plain.info.run_id, deleted.info.run_id, other_features], config=FAST
    )
    notes = " ".join(comparison.notes)
    assert "not-explained has no explanation" in notes and "is deleted" in notes and "same features" in notes
    assert len(comparison.runs) == 2 and comparison.stability["shared_features"].eq(9).all()

    single = mlflow_explain.compare(run_ids=[explained], config=FAST)
    assert "nothing to compare it with" in " ".join(single.notes) and single.stability.empty and single.run_id

    result = CliRunner().invoke(main, ["compare", "--run-id", plain.info.run_id])
    assert result.exit_code == 2 and "None of the 1 matching run(s) has an explanation" in result.stderr
    result = CliRunner().invoke(main, ["compare", "--experiment", "no-such-experiment"])
    assert result.exit_code == 2 and "no experiment named 'no-such-experiment'" in result.stderr


def test_many_correlated_clusters_are_one_readable_finding():
    from sklearn.datasets import load_breast_cancer

    from mlflow_explain.engines.diagnostics import diagnose
    from mlflow_explain.engines.redundancy import correlation_clusters
    from mlflow_explain.results import Explanation, Task

    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    findings = diagnose(
        Explanation(task=Task("binary", (0, 1)), feature_names=list(X.columns), n_rows=len(X), config={}), X
    )
    correlated = [finding for finding in findings if finding.kind == "correlated_features"]
    assert len(correlated) == 1
    n_clusters = len(correlation_clusters(X))
    assert correlated[0].value == n_clusters > 5
    assert f"and {n_clusters - 5} more" in correlated[0].message
    assert "{'mean radius', 'mean perimeter', 'mean area', 'worst radius', 'worst perimeter', 'worst area'}" in (
        correlated[0].message
    )
