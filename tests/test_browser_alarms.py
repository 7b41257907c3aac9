"""The report's alarms as a person reads them at 1400 px: no drift between two model families (and why), a nearly
perfect leak warned, candidates to drop and correlated clusters."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlflow_explain

from .browser import SCREENSHOTS, css

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CONFIG = {"permutation": {"n_repeats": 3}, "shap": {"max_rows": 200, "dependence_top_k": 0, "local_rows": 1}}


def test_report_says_why_there_is_no_drift_and_shows_the_leak_first(browser, tracking_uri, tmp_path):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    flipped = np.random.RandomState(0).rand(len(y)) < 0.03
    X = X.assign(diagnosis_recorded=np.where(flipped, 1 - y, y).astype(float))
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    with mlflow.start_run(run_name="logistic-regression"):
        linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_train, y_train)
        mlflow_explain.explain(linear, X_val, y_val, config=CONFIG)
    with mlflow.start_run(run_name="random-forest") as run:
        forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(X_train, y_train)
        mlflow_explain.explain(forest, X_val, y_val, config=CONFIG)
    report = Path(MlflowClient().download_artifacts(run.info.run_id, "explain/report.html", str(tmp_path)))

    browser.get(report.as_uri())
    heading = css(browser, "h2")
    assert heading.text == "Against the baseline run"
    note = browser.find_element("xpath", "//h2[1]/following-sibling::p[1]")
    assert note.text.startswith("No drift measured") and "is a LogisticRegression model" in note.text
    assert "Explanation drift alert" not in browser.find_element("tag name", "body").text
    warnings = [p.text for p in browser.find_elements("css selector", "p.warning")]
    assert any("'diagnosis_recorded' matches the label" in text for text in warnings), warnings
    paragraphs = [p.text for p in browser.find_elements("css selector", "p.note")]
    assert any(text.startswith("Candidates to drop") for text in paragraphs), paragraphs
    assert any("cluster(s) of correlated features" in text for text in paragraphs), paragraphs
    browser.execute_script("arguments[0].scrollIntoView()", heading)
    browser.save_screenshot(str(SCREENSHOTS / "report_alarms.png"))
