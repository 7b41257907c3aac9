"""Rows per second of the Spark engine (local[2]) against the single-process engine.

Generated regression data (``--rows``, default 1,000,000; 10 features) is written as Parquet
files and explained by a gradient-boosting regressor trained on 20,000 other rows:

- SHAP: every row explained. Single process: ``methods.shap.shap_values`` on the rows in memory.
  Spark: ``spark_shap_values`` (executors, ``mapInPandas``), including its sums and the sample
  for the plots.
- Permutation importance (R^2, ``--repeats`` repeats): single process:
  ``methods.permutation.permutation_importance``; Spark: ``spark_permutation_importance``
  (per-partition statistics added up by Spark).

Spark's time includes reading the Parquet files; the session and its Python workers (which
import the engine once each) are started, with one small job, beforehand. The machine is shared,
so the figures are noisy.

    python benchmarks/spark_rows_per_second.py [--rows N] [--master local[2]] [--partitions 8]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingRegressor

from mlflow_explain.config import load_config
from mlflow_explain.methods.permutation import permutation_importance
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.results import Task
from mlflow_explain.spark import spark_session
from mlflow_explain.spark.frames import check_frame
from mlflow_explain.spark.permutation_job import spark_permutation_importance
from mlflow_explain.spark.shap_job import spark_shap_values
from mlflow_explain.spark.statistics import plan_permutation

N_FEATURES = 10


def generate(n_rows: int, seed: int) -> pd.DataFrame:
    """Rows with 10 features (a few informative, interacting) and a noisy target."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n_rows, N_FEATURES)
    y = 3 * X[:, 0] + 2 * X[:, 1] * X[:, 2] + np.sin(3 * X[:, 3]) + 0.5 * X[:, 4] ** 2 + 0.3 * rng.randn(n_rows)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(N_FEATURES)]).assign(y=y)


def _import_engine(batches):
    import mlflow_explain.spark.shap_job  # noqa: F401

    yield from batches


def _warm_up(spark) -> None:
    """Start the Python workers and import the engine in them, once, before timing."""
    frame = spark.range(0, 64, numPartitions=spark.sparkContext.defaultParallelism)
    frame.mapInPandas(_import_engine, frame.schema).count()


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=8, help="Parquet files, hence Spark partitions.")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    train = generate(20_000, seed=1)
    model = GradientBoostingRegressor(n_estimators=50, max_depth=4, random_state=0)
    model.fit(train.drop(columns="y"), train["y"])
    rows = generate(args.rows, seed=2)
    X, y = rows.drop(columns="y"), rows["y"].to_numpy()
    config = load_config(
        overrides={
            "spark": {"master": args.master, "conf": {"spark.ui.enabled": "false"}},
            "permutation": {"n_repeats": args.repeats},
        }
    )
    figures = {}

    _, seconds = timed(
        lambda: shap_values(model, X, Task("regression"), feature_names=list(X.columns), max_rows=len(X), local_rows=0)
    )
    figures[("SHAP", "single process")] = seconds
    _, seconds = timed(lambda: permutation_importance(model, X, y, n_repeats=args.repeats, random_state=0))
    figures[("permutation importance", "single process")] = seconds

    with tempfile.TemporaryDirectory(prefix="spark_bench_") as folder:
        for part, chunk in enumerate(np.array_split(np.arange(len(rows)), args.partitions)):
            rows.iloc[chunk].to_parquet(os.path.join(folder, f"part-{part:03d}.parquet"), index=False)
        spark = spark_session(config.spark)
        _warm_up(spark)
        frame = spark.read.parquet(folder)
        data = check_frame(model, frame, "y")
        handle = spark.sparkContext.broadcast(model)
        plan = plan_permutation(model, data.feature_names, n_repeats=args.repeats, random_state=0)
        _, seconds = timed(lambda: spark_shap_values(model, handle, data, config.shap))
        figures[("SHAP", f"Spark {args.master}")] = seconds
        _, seconds = timed(lambda: spark_permutation_importance(handle, data, plan))
        figures[("permutation importance", f"Spark {args.master}")] = seconds
        partitions = frame.rdd.getNumPartitions()
        spark.stop()

    print(
        f"{args.rows:,} rows, {N_FEATURES} features, GradientBoostingRegressor(50 trees, depth 4), "
        f"{args.repeats} permutation repeats, {partitions} Spark partitions, {os.cpu_count()} CPUs"
    )
    print(f"{'method':<24}{'engine':<20}{'seconds':>10}{'rows/s':>12}")
    for (method, engine), seconds in figures.items():
        print(f"{method:<24}{engine:<20}{seconds:>10.1f}{args.rows / seconds:>12,.0f}")


if __name__ == "__main__":
    main()
