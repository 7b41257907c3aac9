"""Rankings in the MLflow UI alone: a run's in its artifact viewer, two runs' side by side in the experiment page's
"Artifact evaluation" view, by rank and by feature (screenshots in test-artifacts/: ui_run_ranking.png,
ui_compare_runs.png, ui_compare_runs_by_feature.png)."""

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
from mlflow_explain.output.ranking import ranking_tables

from .browser import SCREENSHOTS, css, open_run_page, wait

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CONFIG = {
    "permutation": {"n_repeats": 3},
    "shap": {"max_rows": 60, "dependence_top_k": 1, "local_rows": 1},
    "logging": {"report": False},
}
SHOWN_RANKS = 3  # the rank rows the view shows at 1400 x 1100 (MLflow draws each 190 px tall)

# The evaluation grid (the one grouped by the column arguments[0]): each row as {column: text}, run columns named by
# their run.
EVALUATION_ROWS = """
const grid = [...document.querySelectorAll('.ag-root-wrapper')].find(g =>
  [...g.querySelectorAll('.ag-header-cell')].some(h => h.innerText.trim() === arguments[0]));
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

    Returns (experiment id, {run name: (run id, its permutation ranking table as logged)}).
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
            runs[name] = (run.info.run_id, ranking_tables(explanation)["permutation"])
    finally:
        mlflow.set_tracking_uri(previous_uri)
    return experiment_id, runs


def test_a_runs_ranking_shows_as_a_table_in_its_artifact_viewer(browser, mlflow_server, compared_runs):
    experiment_id, runs = compared_runs
    run_id, table = runs["random forest"]
    ranking = table["feature"].tolist()
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
    rows = wait(browser, lambda d: _filled(d.execute_script(EVALUATION_ROWS, "rank"), list(runs)))
    _close_assistant(browser)
    browser.save_screenshot(str(SCREENSHOTS / "ui_compare_runs.png"))

    expected = [
        {"rank": str(rank)} | {name: table["feature"][rank - 1] for name, (_, table) in runs.items()}
        for rank in range(1, SHOWN_RANKS + 1)
    ]
    assert rows[:SHOWN_RANKS] == expected, "grouped by rank, each run's feature at that rank in its own column"
    top = {name: table["feature"][:SHOWN_RANKS].tolist() for name, (_, table) in runs.items()}
    assert top["logistic regression"] != top["random forest"], "two models, two rankings"


def test_grouped_by_feature_the_view_shows_a_features_importance_in_each_run(browser, mlflow_server, compared_runs):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    experiment_id, runs = compared_runs
    feature = runs["random forest"][1]["feature"][0]
    browser.get("about:blank")
    browser.get(f"{mlflow_server.url}/#/experiments/{experiment_id}/runs?compareRunsMode=ARTIFACT")
    wait(browser, lambda d: _filled(d.execute_script(EVALUATION_ROWS, "rank"), list(runs)))
    css(browser, 'button[aria-label="Select \\"group by\\" columns"]').click()
    for column in ("feature", "rank"):  # group by feature, then no longer by rank: the view compares importance
        option = f'//*[@role="option"][normalize-space()="{column}"]'
        wait(browser, lambda d, option=option: d.find_elements(By.XPATH, option))[0].click()
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    css(browser, 'input[placeholder="Filter by feature"]').send_keys(feature)
    rows = wait(
        browser,
        lambda d: [row for row in d.execute_script(EVALUATION_ROWS, "feature") if row.get("feature") == feature],
    )
    _close_assistant(browser)
    browser.save_screenshot(str(SCREENSHOTS / "ui_compare_runs_by_feature.png"))

    logged = {name: float(table.set_index("feature").at[feature, "importance"]) for name, (_, table) in runs.items()}
    shown = {name: repr(value) for name, value in logged.items()}  # as the UI writes a number (JSON.stringify)
    assert rows == [{"feature": feature} | shown], "the feature's importance in each run, side by side"


def _filled(rows: list[dict[str, str]], run_names: list[str]) -> list[dict[str, str]] | None:
    """``rows`` once the first ``SHOWN_RANKS`` have a text in every run's column (each run's table is loaded)."""
    first = rows[:SHOWN_RANKS]
    return rows if len(first) == SHOWN_RANKS and all(row.get(name) for row in first for name in run_names) else None


def _close_assistant(driver) -> None:
    """Close MLflow's assistant panel (open by default, a third of the width) so the screenshot shows the view."""
    driver.execute_script("document.querySelectorAll('button[aria-label=\"Close\"]').forEach(button => button.click())")
    time.sleep(0.5)  # the panel slides away
