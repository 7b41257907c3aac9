"""Helpers the tests import: generated data, a mixed-type Pipeline, the examples as subprocesses, hostile names,
and the SQLite tracking store the ``tracking_uri`` fixture copies (the fixtures themselves are in ``conftest.py``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPOSITORY = Path(__file__).resolve().parents[1]

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


def run_example(name: str, cwd, tracking_uri: str | None = None, **variables: str) -> str:
    """Run ``examples/<name>`` as a new user would; return its stdout (see :func:`run_example_process`)."""
    return run_example_process(name, cwd, tracking_uri, **variables).stdout


def run_example_process(
    name: str, cwd, tracking_uri: str | None = None, **variables: str
) -> subprocess.CompletedProcess:
    """Run ``examples/<name>`` as a new user would, checking it succeeds; return the finished process.

    MLflow's environment variables are cleared and ``variables`` set.
    """
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    if tracking_uri:
        environment["MLFLOW_TRACKING_URI"] = tracking_uri
    environment |= variables
    done = subprocess.run(
        [sys.executable, str(REPOSITORY / "examples" / name)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def migrate_sqlite_store(path: Path) -> None:
    """Create ``path`` as an SQLite tracking database with MLflow's schema at head, as ``mlflow db upgrade`` does.

    It holds no experiment: MLflow adds the Default one, under the artifact root of whoever opens the
    file, the first time a store opens it, as it does for a database it has just migrated itself.
    """
    from click.testing import CliRunner
    from mlflow.db import commands

    result = CliRunner().invoke(commands, ["upgrade", f"sqlite:///{path}"])
    assert result.exit_code == 0, result.output


def copy_sqlite_store(template: Path, folder: Path) -> str:
    """Copy a migrated ``template`` database to ``folder/mlflow.db``; return its tracking URI.

    A copy is a fresh store (no experiments or runs, the schema at head) without the second of
    migrations that creating one costs.
    """
    database = folder / "mlflow.db"
    shutil.copyfile(template, database)
    return f"sqlite:///{database}"


POSITIVE_WORDS = ("great", "love", "excellent")
NEGATIVE_WORDS = ("refund", "broken", "awful")
_FILLER_WORDS = (
    "the order came on time and the box was blue with a small manual the phone charger cable works "
    "with my laptop I used it for a week at home and in the office some days it rained"
).split()


def review_texts(n_texts: int = 300, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Generated product reviews whose label a few words decide: 1 when a word of ``POSITIVE_WORDS`` is in the
    text, 0 when one of ``NEGATIVE_WORDS`` is (each text has one of them among 6-14 filler words)."""
    rng = np.random.RandomState(seed)
    texts, labels = [], np.empty(n_texts, dtype=int)
    for i in range(n_texts):
        labels[i] = rng.randint(2)
        words = list(rng.choice(_FILLER_WORDS, rng.randint(6, 15)))
        deciding = POSITIVE_WORDS if labels[i] else NEGATIVE_WORDS
        words.insert(rng.randint(len(words) + 1), str(rng.choice(deciding)))
        texts.append(" ".join(words))
    return texts, labels
