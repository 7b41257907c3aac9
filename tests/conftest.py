"""Shared fixtures: a private SQLite MLflow store per test, a real MLflow server, bundled data sets."""

from __future__ import annotations

import time

import matplotlib
import mlflow
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch):
    """A fresh SQLite tracking store (artifacts beside it) as the current MLflow target."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.create_experiment("tests", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()


def mixed_frame(n_rows: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Generated mixed-type data: numeric with NaNs, strings, a pandas categorical; binary target."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.5, n_rows),
            "color": rng.choice(["red", "green", "blue"], n_rows),
            "age": np.where(rng.rand(n_rows) < 0.15, np.nan, rng.randint(18, 80, n_rows).astype(float)),
            "city": pd.Categorical(rng.choice(["paris", "lyon", "nice", "lille"], n_rows)),
            "noise": rng.randn(n_rows),
        }
    )
    signal = np.log(X["income"]) - 10 + (X["color"] == "red") * 1.5 + X["age"].fillna(40) / 40 - 1
    y = (signal + 0.3 * rng.randn(n_rows) > 0.4).astype(int).to_numpy()
    return X, y


def mixed_pipeline(final_estimator):
    """ColumnTransformer(one-hot + imputers) followed by ``final_estimator``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    preprocessing = ColumnTransformer(
        [
            (
                "categorical",
                make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                ["color", "city"],
            ),
            ("numeric", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()), ["income", "age", "noise"]),
        ]
    )
    return Pipeline([("preprocess", preprocessing), ("model", final_estimator)])


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """One real ``mlflow server`` (SQLite backend, local artifacts, free port) shared by the session."""
    from .server import MlflowServer

    server = MlflowServer(tmp_path_factory.mktemp("mlflow_server")).start()
    yield server
    server.stop()


@pytest.fixture
def server_uri(mlflow_server, request, monkeypatch):
    """The shared server as the current MLflow target, with a new experiment named after the test."""
    if not mlflow_server.healthy():  # a fault test left it stopped
        mlflow_server.start()
    previous_uri = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    mlflow.set_tracking_uri(mlflow_server.url)
    mlflow.set_experiment(f"{request.node.name}-{time.time_ns()}")
    yield mlflow_server.url
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(previous_uri)


@pytest.fixture(scope="session")
def spark():
    """One local Spark session (two cores, two partitions) shared by every test that needs Spark."""
    from mlflow_explain import load_config
    from mlflow_explain.spark import spark_session

    config = load_config(
        overrides={
            "spark": {
                "master": "local[2]",
                "app_name": "mlflow_explain_tests",
                "conf": {
                    "spark.ui.enabled": "false",
                    "spark.sql.shuffle.partitions": "2",
                    "spark.default.parallelism": "2",
                },
            }
        }
    )
    session = spark_session(config.spark)
    yield session
    session.stop()


def run_example(name: str, cwd, tracking_uri: str | None = None, **variables: str) -> str:
    """Run ``examples/<name>`` as a new user would; return its stdout.

    MLflow's environment variables are cleared and ``variables`` set.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    environment = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    if tracking_uri:
        environment["MLFLOW_TRACKING_URI"] = tracking_uri
    environment |= variables
    example = Path(__file__).resolve().parents[1] / "examples" / name
    done = subprocess.run(
        [sys.executable, str(example)], cwd=cwd, env=environment, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="session")
def explained_run(mlflow_server, tmp_path_factory):
    """The quickstart example run against the server over HTTP: (run id, experiment id)."""
    import re

    from mlflow.tracking import MlflowClient

    output = run_example("quickstart.py", tmp_path_factory.mktemp("quickstart"), mlflow_server.url)
    run_id = re.search(r"Explained run ([0-9a-f]{32})", output).group(1)
    return run_id, MlflowClient(mlflow_server.url).get_run(run_id).info.experiment_id


HOSTILE_NAMES = [
    "a/b",
    "a_b",
    "a:b",
    "..",
    "../../etc/passwd",
    "quote'\"`",
    "back\\slash",
    " padded ",
    "tab\there",
    "<script>document.title='pwned';document.body.setAttribute('data-pwned','script')</script>",
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">",
    "température °C",
    "数据",
    "é" * 300,
    "x" * 300,
    "x" * 299 + "/",
]


@pytest.fixture(scope="session")
def hostile_run(mlflow_server):
    """A model whose features have hostile names, explained into the server: (run id, names, explanation)."""
    from sklearn.datasets import make_regression
    from sklearn.ensemble import RandomForestRegressor

    import mlflow_explain

    X, y = make_regression(n_samples=400, n_features=len(HOSTILE_NAMES), n_informative=6, random_state=0)
    X = pd.DataFrame(X, columns=HOSTILE_NAMES)
    model = RandomForestRegressor(n_estimators=20, max_depth=5, random_state=0).fit(X[:300], y[:300])
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server.url)
    try:
        with mlflow.start_run(experiment_id=mlflow.create_experiment(f"hostile-{time.time_ns()}")) as run:
            explanation = mlflow_explain.explain(
                model,
                X[300:],
                y[300:],
                config={
                    "permutation": {"n_repeats": 2},
                    "shap": {"max_rows": 100, "dependence_top_k": len(HOSTILE_NAMES)},
                },
            )
    finally:
        mlflow.set_tracking_uri(previous_uri)
    return run.info.run_id, HOSTILE_NAMES, explanation
