"""Shared fixtures: a private SQLite MLflow store per test, and bundled data sets."""

from __future__ import annotations

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
    X = pd.DataFrame({
        "income": rng.lognormal(10, 0.5, n_rows),
        "color": rng.choice(["red", "green", "blue"], n_rows),
        "age": np.where(rng.rand(n_rows) < 0.15, np.nan, rng.randint(18, 80, n_rows).astype(float)),
        "city": pd.Categorical(rng.choice(["paris", "lyon", "nice", "lille"], n_rows)),
        "noise": rng.randn(n_rows),
    })
    signal = np.log(X["income"]) - 10 + (X["color"] == "red") * 1.5 + X["age"].fillna(40) / 40 - 1
    y = (signal + 0.3 * rng.randn(n_rows) > 0.4).astype(int).to_numpy()
    return X, y


def mixed_pipeline(final_estimator):
    """ColumnTransformer(one-hot + imputers) followed by ``final_estimator``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    preprocessing = ColumnTransformer([
        ("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
         ["color", "city"]),
        ("numeric", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()), ["income", "age", "noise"]),
    ])
    return Pipeline([("preprocess", preprocessing), ("model", final_estimator)])
