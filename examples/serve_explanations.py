"""Explanations at serving time: log an explainer, serve it with `mlflow models serve`, ask why for one row.

pip install -e . && python examples/serve_explanations.py

A scikit-learn Pipeline (one-hot encoding + gradient boosting) on generated loan data is logged as an
explainer model; `mlflow models serve` answers each posted row with the model's prediction and one SHAP
value per raw column (the one-hot columns summed back onto the column they came from).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import mlflow
import numpy as np
import pandas as pd
from example_store import TRACKING_URI, browse_hint
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

import mlflow_explain


def loans(n_rows: int = 800, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Generated loan applications and whether they were repaid."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(
        {
            "income": rng.lognormal(10.5, 0.4, n_rows),
            "debt_ratio": rng.uniform(0, 1, n_rows),
            "employment": rng.choice(["salaried", "self-employed", "unemployed"], n_rows, p=[0.7, 0.2, 0.1]),
            "purpose": rng.choice(["car", "home", "studies"], n_rows),
        }
    )
    score = np.log(X["income"]) - 10.5 - 2 * X["debt_ratio"] - 1.5 * (X["employment"] == "unemployed")
    return X, (score + 0.3 * rng.randn(n_rows) > -0.8).astype(int).to_numpy()


def serve(model_uri: str) -> tuple[subprocess.Popen, str]:
    """Start `mlflow models serve` of ``model_uri`` on a free local port; wait until it answers /ping."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local", "--port", str(port)]
    print("$", " ".join(command))
    environment = {**os.environ, "MLFLOW_TRACKING_URI": TRACKING_URI}
    server = subprocess.Popen([sys.executable, "-m", *command], env=environment, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while server.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.5)
    stop(server)
    raise RuntimeError("mlflow models serve did not start")


def stop(server: subprocess.Popen) -> None:
    """Stop the server and its workers (its whole process group)."""
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=60)


def ask(url: str, rows: pd.DataFrame) -> tuple[int, dict]:
    """POST ``rows`` as a dataframe_split request; the status and the JSON answer."""
    body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
    request = urllib.request.Request(
        f"{url}/invocations", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def main() -> str:
    logging.basicConfig(level=logging.WARNING)
    mlflow.set_tracking_uri(TRACKING_URI)
    mlflow.set_experiment("mlflow_explain serving")
    X, y = loans()
    one_hot = ColumnTransformer(
        [("categories", OneHotEncoder(handle_unknown="ignore"), ["employment", "purpose"])], remainder="passthrough"
    )
    model = Pipeline([("one_hot", one_hot), ("boosting", GradientBoostingClassifier(random_state=0))]).fit(X, y)

    with mlflow.start_run(run_name="loans") as run:
        info = mlflow_explain.log_explainer(model, background=X)
    print(f"Logged explainer {info.model_uri} into run {run.info.run_id}.")

    server, url = serve(info.model_uri)
    try:
        applicant = X.iloc[[3]]
        status, answer = ask(url, applicant)
        row = answer["predictions"][0]
        print(f"Applicant: {applicant.to_dict(orient='records')[0]}")
        print(f"Prediction: {row['prediction']} (HTTP {status}); why, in log-odds of repaying:")
        for column in X.columns:
            print(f"    {column:>12}: {row[f'shap:1:{column}']:+.3f}")
        total = row["base_value:1"] + sum(row[f"shap:1:{column}"] for column in X.columns)
        log_odds = model.decision_function(applicant)[0]
        print(f"    base value {row['base_value:1']:+.3f}; total {total:+.6f}, the model's log-odds {log_odds:+.6f}")
        status, error = ask(url, applicant.drop(columns=["purpose"]))
        print(f"A request without 'purpose': HTTP {status}: {error['message'].splitlines()[-1]}")
    finally:
        stop(server)
    print(f"Browse the run: {browse_hint()}")
    return run.info.run_id


if __name__ == "__main__":
    main()
