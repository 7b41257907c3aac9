"""Rankings in the MLflow UI alone: a run's in its artifact viewer, two runs' side by side in the experiment page's
"Artifact evaluation" view (screenshots in test-artifacts/: ui_run_ranking.png, ui_compare_runs.png)."""

from __future__ import annotations

import time

import mlflow
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlflow_explain

from .browser import SCREENSHOTS, css, open_run_page, wait

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CONFIG = {
    "permutation": {"n_repeats": 3},
    "shap": {"max_rows": 60, "dependence_top_k": 1, "local_rows": 1},
    "logging": {"report": False},
}
SHOWN_RANKS = 3  # the rank rows the view shows at 1400 x 1100 (MLflow draws each 190 px tall)

# The evaluation grid (the one with a "rank" column): each row as {column: text}, run columns named by their run.
EVALUATION_ROWS = """
const grid = [...document.querySelectorAll('.ag-root-wrapper')].find(g =>
  [...g.querySelectorAll('.ag-header-cell')].some(h => h.innerText.trim() === 'rank'));
if (!grid) return [];
const names = {};
grid.querySelectorAll('.ag-header-cell[col-id]').forEach(h =>
  names[h.getAttribute('col-id')] = h.innerText.trim().split('\\n').pop());
return [...grid.querySelectorAll('.ag-center-cols-container .ag-row')]
  .sort((a, b) => a.getAttribute('row-index') - b.getAttribute('row-index'))
  .map(row => Object.fromEntries([...row.querySelectorAll('.ag-cell[col-id]')].map(cell =>
    [names[cell.getAttribute('col-id')], cell.innerText.trim()])));
"""


@pytest.fixture(scope="module")
def compared_runs(mlflow_server):
    """Breast cancer's logistic regression and random forest explained into one experiment on the server.

    Returns (experiment id, {run name: (run id, its permutation ranking, most important first)}).
    """
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    models = {
        "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        "random forest": RandomForestClassifier(n_estimators=30, max_depth=4, random_state=0),
    }
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server.url)
    try:
        experiment_id = mlflow.create_experiment(f"rankings-{time.time_ns()}")
        runs = {}
        for name, model in models.items():
            model.fit(X[::2], y[::2])
            with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
                explanation = mlflow_explain.explain(model, X[1::2], y[1::2], config=CONFIG)
            table = explanation.importances
            scorer = explanation.permutation.primary_output
            primary = table[(table["method"] == "permutation") & (table["output"] == scorer)]
            runs[name] = (run.info.run_id, primary.sort_values("rank")["feature"].tolist())
    finally:
        mlflow.set_tracking_uri(previous_uri)
    return experiment_id, runs


def test_a_runs_ranking_shows_as_a_table_in_its_artifact_viewer(browser, mlflow_server, compared_runs):
    experiment_id, runs = compared_runs
    run_id, ranking = runs["random forest"]
    open_run_page(browser, mlflow_server.url, experiment_id, run_id, "/artifacts/explain/ranking/permutation.json")
    table = css(browser, '[role="table"]')
    wait(browser, lambda d: len(table.find_elements("css selector", '[role="row"]')) > SHOWN_RANKS)
    rows = [row.text.split("\n") for row in table.find_elements("css selector", '[role="row"]')]
    _close_assistant(browser)
    browser.save_screenshot(str(SCREENSHOTS / "ui_run_ranking.png"))

    assert rows[0] == ["rank", "feature", "importance", "std"]
    assert [row[:2] for row in rows[1:6]] == [[str(rank), ranking[rank - 1]] for rank in range(1, 6)]


def test_two_runs_top_features_side_by_side_in_the_artifact_evaluation_view(browser, mlflow_server, compared_runs):
    experiment_id, runs = compared_runs
    browser.get("about:blank")
    browser.get(f"{mlflow_server.url}/#/experiments/{experiment_id}/runs?compareRunsMode=ARTIFACT")
    tables = css(browser, '[data-testid="dropdown-tables"]')
    wait(browser, lambda d: "explain/ranking/permutation.json" in tables.text)  # the first table, chosen by itself
    rows = wait(browser, lambda d: _filled(d.execute_script(EVALUATION_ROWS), list(runs)))
    _close_assistant(browser)
    browser.save_screenshot(str(SCREENSHOTS / "ui_compare_runs.png"))

    expected = [
        {"rank": str(rank)} | {name: ranking[rank - 1] for name, (_, ranking) in runs.items()}
        for rank in range(1, SHOWN_RANKS + 1)
    ]
    assert rows[:SHOWN_RANKS] == expected, "grouped by rank, each run's feature at that rank in its own column"
    assert runs["logistic regression"][1][:SHOWN_RANKS] != runs["random forest"][1][:SHOWN_RANKS]


def _filled(rows: list[dict[str, str]], run_names: list[str]) -> list[dict[str, str]] | None:
    """``rows`` once the first ``SHOWN_RANKS`` have a text in every run's column (each run's table is loaded)."""
    first = rows[:SHOWN_RANKS]
    return rows if len(first) == SHOWN_RANKS and all(row.get(name) for row in first for name in run_names) else None


def _close_assistant(driver) -> None:
    """Close MLflow's assistant panel (open by default, a third of the width) so the screenshot shows the view."""
    driver.execute_script("document.querySelectorAll('button[aria-label=\"Close\"]').forEach(button => button.click())")
    time.sleep(0.5)  # the panel slides away
