"""The logged explainer served by the real ``mlflow models serve --env-manager local``, asked over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingRegressor

import mlflow_explain

from .helpers import mixed_frame, mixed_pipeline
from .server import ModelServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/invocations", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _split(frame: pd.DataFrame) -> dict:
    """The ``dataframe_split`` body of ``frame`` (missing values as JSON nulls)."""
    return {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}


def test_served_pipeline_explainer_adds_up_per_raw_column_refuses_a_bad_request_and_keeps_serving(
    tracking_uri, tmp_path
):
    X, _ = mixed_frame(300)
    X = X.astype({"city": str})
    y = np.log(X["income"]) + (X["color"] == "red") * 1.5 + X["age"].fillna(40) / 40
    model = mixed_pipeline(GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0)).fit(X, y)
    with mlflow.start_run():
        info = mlflow_explain.log_explainer(model, background=X)
    rows = X.iloc[:25]

    server = ModelServer(tmp_path, info.model_uri, tracking_uri).start()
    try:
        status, answer = _post(server.url, _split(rows))
        assert status == 200
        first = pd.DataFrame(answer["predictions"])
        shap_columns = [f"shap:prediction:{name}" for name in X.columns]
        assert list(first.columns) == ["prediction", *shap_columns, "base_value:prediction"]
        totals = first[shap_columns].sum(axis=1) + first["base_value:prediction"]
        np.testing.assert_allclose(totals, model.predict(rows), atol=1e-6)
        np.testing.assert_allclose(first["prediction"], model.predict(rows), rtol=1e-12)
        assert (first["shap:prediction:color"].abs() > 0).any()  # one-hot columns summed back onto "color"

        status, error = _post(server.url, _split(rows.drop(columns=["age"]).assign(income="a lot")))
        assert status == 400 and error["error_code"] == "INVALID_PARAMETER_VALUE"
        # MLflow's scoring server puts "Failed to predict data '<the rows>'." before the explainer's sentence.
        assert error["message"].endswith(
            "\nError: The request misses the columns 'age' and has wrongly typed columns 'income' (double expected, "
            "str given)."
        )

        records = json.loads(rows.iloc[:3].to_json(orient="records"))
        status, again = _post(server.url, {"dataframe_records": records})
        assert status == 200
        np.testing.assert_allclose(pd.DataFrame(again["predictions"]).to_numpy(), first.iloc[:3].to_numpy(), atol=1e-9)
    finally:
        server.stop()
