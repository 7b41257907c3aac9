"""What a user reads about rows is true: which of their rows each explanation is, and how many were cut (issue 16)."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shap
from mlflow.tracking import MlflowClient
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsRegressor

import mlflow_explain


def _labelled_frame(n_rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Generated rows whose index labels are not their positions (shuffled text labels)."""
    X, y = make_classification(n_rows, 5, n_informative=3, random_state=seed)
    labels = [f"customer-{i}" for i in np.random.RandomState(seed).permutation(n_rows)]
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(5)], index=labels), y


def _explain_folder(run_id: str, tmp_path) -> str:
    return MlflowClient().download_artifacts(run_id, "explain", str(tmp_path))


def test_shap_rows_and_local_explanations_point_at_the_users_rows_after_sampling(tracking_uri, tmp_path):
    X, y = _labelled_frame(500)
    model = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0).fit(X, y)
    config = {
        "validation": {"max_rows": 200},
        "shap": {"max_rows": 80, "local_rows": 2, "dependence_top_k": 1},
        "permutation": {"n_repeats": 2},
    }
    with mlflow.start_run() as run:
        mlflow_explain.explain(model, X, y, config=config)
    folder = _explain_folder(run.info.run_id, tmp_path)

    table = pq.read_table(f"{folder}/shap_values.parquet").to_pandas()
    assert len(table) == 80 and table["row"].max() >= 200, "rows must index the 500 rows passed, not the sample"
    assert list(table["index"]) == list(X.index[table["row"]])
    np.testing.assert_array_equal(table[[f"value:f{i}" for i in range(5)]].to_numpy(), X.iloc[table["row"]])
    reference = shap.TreeExplainer(model).shap_values(X.iloc[table["row"]])[:, :, 1]
    np.testing.assert_allclose(table[[f"shap:1:f{i}" for i in range(5)]].to_numpy(), reference, atol=1e-9)

    local = pd.read_csv(f"{folder}/local/local_explanations.csv")
    rows = sorted(local["row"].unique())
    assert len(rows) == 2 and set(rows) <= set(table["row"])
    for row in rows:
        assert set(local.loc[local["row"] == row, "index"]) == {X.index[row]}
        own = local[(local["row"] == row) & (local["feature"] == "f0")]
        assert float(own["value"].iloc[0]) == pytest.approx(X["f0"].iloc[row])
        waterfall = (tmp_path / "explain" / "local" / f"waterfall_row{row}.svg").read_text(encoding="utf-8")
        assert f"Row {row} (index {X.index[row]})" in waterfall


def test_every_cap_on_rows_is_said_with_how_many_of_how_many(tracking_uri, tmp_path):
    X, y = make_regression(300, 4, noise=1.0, random_state=0)
    model = KNeighborsRegressor(n_neighbors=5).fit(X, y)  # no tree, no linear model: the slow explainer and its cap
    config = {
        "validation": {"max_rows": 120},
        "shap": {"permutation_max_rows": 8, "background_rows": 10, "local_rows": 1, "dependence_top_k": 1},
        "permutation": {"n_repeats": 2},
    }
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain(model, X, y, config=config)
    _explain_folder(run.info.run_id, tmp_path)
    expected = [
        "Explained on a seeded sample of 120 of the 300 validation rows passed (validation.max_rows=120).",
        "SHAP values were computed on a seeded sample of 8 of the 120 validation rows "
        "(shap.permutation_max_rows=8, the cap of the slow model-agnostic explainer).",
    ]
    assert [w for w in explanation.warnings if "seeded sample" in w] == expected
    summary = json.loads((tmp_path / "explain" / "summary.json").read_text(encoding="utf-8"))
    assert (summary["n_rows"], summary["n_rows_passed"]) == (120, 300)
    assert all(message in summary["warnings"] for message in expected)
    report = (tmp_path / "explain" / "report.html").read_text(encoding="utf-8")
    assert all(message in report for message in expected)
    assert "120 of the 300 passed" in report


def test_no_cap_no_warning_and_rows_passed_equal_rows(tracking_uri, tmp_path):
    X, y = _labelled_frame(150, seed=1)
    model = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X, y)
    with mlflow.start_run() as run:
        explanation = mlflow_explain.explain(model, X, y, config={"permutation": {"n_repeats": 2}})
    _explain_folder(run.info.run_id, tmp_path)
    summary = json.loads((tmp_path / "explain" / "summary.json").read_text(encoding="utf-8"))
    assert (summary["n_rows"], summary["n_rows_passed"]) == (150, 150)
    assert not any("seeded sample" in warning for warning in explanation.warnings)
    table = pq.read_table(tmp_path / "explain" / "shap_values.parquet").to_pandas()
    assert list(table["row"]) == list(range(150)) and list(table["index"]) == list(X.index)
