"""Shared fixtures: a private SQLite MLflow store per test, a real MLflow server, explained runs on it.

Helpers the tests import (data, Pipelines, examples, hostile names) are in ``tests/helpers.py``.
"""

from __future__ import annotations

import importlib
import os
import re
import time

import mlflow
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import mlflow_explain

from .helpers import HOSTILE_NAMES, copy_sqlite_store, migrate_sqlite_store, run_example

NATIVE_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pytest_configure(config):
    """One BLAS and one OpenMP thread, in this process and in every process the tests start.

    The tests' models and data are small, and on a machine whose cores are busy these pools' waiting
    threads spin: two threads fit scikit-learn's LogisticRegression on wine in 35 s against 1.8 s with
    one, and HistGradientBoosting 4-10x slower, at load 8 on 2 cores. Libraries loaded from now on read
    the variables; those already loaded are limited by threadpoolctl.

    Keras runs on the torch backend unless the environment names another one.
    """
    for variable in NATIVE_THREAD_VARIABLES:
        os.environ[variable] = "1"
    threadpool_limits(limits=1)
    os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 reads it on import: its models are torch modules


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory):
    """One SQLite database migrated to MLflow's schema (a second of alembic), copied by every ``tracking_uri``."""
    path = tmp_path_factory.mktemp("migrated_store") / "mlflow.db"
    migrate_sqlite_store(path)
    return path


@pytest.fixture
def tracking_uri(migrated_store, tmp_path, monkeypatch):
    """A fresh SQLite tracking store (artifacts beside it) as the current MLflow target."""
    monkeypatch.chdir(tmp_path)
    uri = copy_sqlite_store(migrated_store, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.create_experiment("tests", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()


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


@pytest.fixture(scope="session")
def explained_run(mlflow_server, tmp_path_factory):
    """The quickstart example run against the server over HTTP: (run id, experiment id)."""
    from mlflow.tracking import MlflowClient

    output = run_example("quickstart.py", tmp_path_factory.mktemp("quickstart"), mlflow_server.url)
    run_id = re.search(r"Explained run ([0-9a-f]{32})", output).group(1)
    return run_id, MlflowClient(mlflow_server.url).get_run(run_id).info.experiment_id


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


@pytest.fixture
def fresh_autolog(monkeypatch):
    """A fresh autolog state for the test; the plugin's autolog switched off after it."""
    autolog_module = importlib.import_module("mlflow_explain.triggers.autolog.autolog")  # the package's is a function
    monkeypatch.setattr(autolog_module, "_state", autolog_module._State())
    yield
    mlflow_explain.autolog(disable=True)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by Selenium, one per test module (tests/browser.py has the helpers).

    Not one per session: a browser left open on the MLflow UI keeps polling the server for the rest of the run.
    """
    from .browser import start_browser

    driver = start_browser()
    yield driver
    driver.quit()
