"""Bounded time, visible progress: the explanation's budget planned before the work, TreeSHAP on every core."""

from __future__ import annotations

import html
import io
import json
import re
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import shap
from mlflow.tracking import MlflowClient
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

import mlflow_explain
from mlflow_explain.engines import budget
from mlflow_explain.methods import tree_chunks


@pytest.fixture(scope="module")
def deep_forest():
    """A forest of deep trees (default depth) whose SHAP values of 2,000 rows take seconds, and its rows."""
    X, y = make_classification(n_samples=4000, n_features=8, n_informative=5, random_state=0)
    model = RandomForestClassifier(n_estimators=40, random_state=0, n_jobs=1).fit(X[:2000], y[:2000])
    return model, X[2000:], y[2000:]


def test_shares_give_cheap_methods_what_they_want_and_split_the_rest():
    assert budget.shares({"permutation": 2.0, "shap": 100.0}, 50.0) == {"permutation": 2.0, "shap": 48.0}
    assert budget.shares({"permutation": 40.0, "shap": 100.0}, 50.0) == {"permutation": 25.0, "shap": 25.0}
    assert budget.shares({"permutation": 1.0, "shap": 2.0}, 50.0) == {"permutation": 1.0, "shap": 2.0}


@pytest.mark.slow  # a forest's SHAP values timed, then cut to the budget
def test_autolog_plans_its_default_budget_before_the_work_and_says_the_cut(tracking_uri, deep_forest):
    model, X_val, y_val = deep_forest
    budget_s = 2.0
    config = {"budget": {"autolog_s": budget_s}, "shap": {"n_jobs": 1}, "compare": {"enabled": False}}
    mlflow_explain.autolog(validation_data=(X_val, y_val), config=config)
    try:
        with mlflow.start_run() as run:
            started = time.perf_counter()
            RandomForestClassifier(n_estimators=40, random_state=0, n_jobs=1).fit(X_val, y_val)
            fit_and_explain_s = time.perf_counter() - started
    finally:
        mlflow_explain.autolog(disable=True)
    folder = MlflowClient().download_artifacts(run.info.run_id, "explain", str(Path.cwd()))
    summary = json.loads((Path(folder) / "summary.json").read_text())
    cut = next(note for note in summary["warnings"] if note.startswith("shap: the estimated"))
    assert f"share of the explanation's time budget of {budget_s:g} s" in cut
    planned = int(re.search(r"explaining (\d+) rows", cut).group(1))
    assert summary["shap"]["n_rows"] <= planned < 2000, "the plan cut the rows before SHAP ran"
    timed = r"TreeExplainer \(exact\), [\d,]+ (of [\d,]+ )?rows in [\d.]+ s on 1 core"
    assert re.search(timed, summary["shap"]["reason"])
    assert "exact and fast" not in summary["shap"]["reason"]
    assert cut in html.unescape((Path(folder) / "report.html").read_text()), "the report says the cut too"
    assert fit_and_explain_s < 60, "a generous bound: the full 2,000 rows alone take far longer here"


def test_explain_has_no_budget_unless_set():
    config = mlflow_explain.load_config()
    assert config.budget.explain_s is None and config.budget.autolog_s == 60.0


@pytest.mark.slow  # starts worker processes
def test_treeshap_on_every_core_equals_one_call_exactly(deep_forest, monkeypatch):
    model, X_val, _ = deep_forest
    explainer = shap.TreeExplainer(model)
    rows = X_val[:200]
    monkeypatch.setattr(tree_chunks, "PARALLEL_AFTER_S", 0.0)  # chunks go to worker processes however quick

    values, done, timing = tree_chunks.tree_shap_values(explainer, rows, n_jobs=2)

    assert timing.workers == 2 and timing.rows == 200 and np.array_equal(done, np.arange(200))
    assert np.array_equal(values, explainer.shap_values(rows, check_additivity=False))


def test_treeshap_stops_at_its_deadline_with_a_random_sample_of_rows(deep_forest):
    model, X_val, _ = deep_forest
    explainer = shap.TreeExplainer(model)
    rows = X_val[:400]

    values, done, timing = tree_chunks.tree_shap_values(explainer, rows, n_jobs=1, deadline=time.perf_counter())

    assert tree_chunks.PROBE_ROWS < timing.rows < 400 and len(done) == timing.rows == len(values)
    assert np.all(np.diff(done) > 0) and done[-1] > timing.rows, "a sample of all the rows, not the first ones"
    assert np.array_equal(values, explainer.shap_values(rows[done], check_additivity=False))
    assert str(timing).endswith("on 1 core (stopped at the time limit)") and f"{timing.rows:,} of 400 rows" in str(
        timing
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [False, True])
def test_the_progress_bar_shows_on_a_terminal_only(deep_forest, monkeypatch, terminal):
    model, X_val, _ = deep_forest
    bars = []

    class RecordedBar(tree_chunks.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(bool(self.disable))  # closing a bar disables it

    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.setattr(tree_chunks, "tqdm", RecordedBar)

    tree_chunks.tree_shap_values(shap.TreeExplainer(model), X_val[:40], n_jobs=1)

    assert bars == [not terminal]
    assert ("SHAP (TreeExplainer)" in stream.getvalue()) is terminal
