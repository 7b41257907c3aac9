"""Rows per second of a Spark ML model explained on Spark, and the driver's peak memory.

Generated rows (``--rows``, default 1,000,000; 20 numeric columns, a 0/1 label from a few of them,
written as Parquet by Spark, so the driver never holds them) are explained by a ``PipelineModel``
(``VectorAssembler`` + ``RandomForestClassifier``, 20 trees of depth 6) trained on 50,000 other rows,
through the public entry ``mlflow_explain.spark.explain``, once per method (the other one off; no
leakage check, no comparison; into a throw-away SQLite MLflow store):

- ``transform`` alone (predictions counted), the floor any method pays per model evaluation;
- permutation importance (accuracy, ``--repeats`` repeats): every row, 20 x repeats permuted copies;
- SHAP: every row's values (their mean |SHAP|), and a sample for the plots.

For each: the seconds, validation rows per second, and the peak resident memory during that method
of the driver's Python process and of the JVM (in local mode the JVM is the driver and the
executors; the executors' Python workers are not counted): ``VmHWM`` of ``/proc``, reset before each
method by writing 5 to ``clear_refs``. Linux only. The session and its Python workers are started,
with a small job, before timing.

    python benchmarks/spark_ml_rows_per_second.py [--rows N] [--master local[2]] [--partitions 8] [--repeats 2]
        [--methods permutation shap]
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mlflow

import mlflow_explain.spark
from mlflow_explain.config import load_config
from mlflow_explain.spark import spark_session

N_FEATURES = 20
FEATURES = [f"f{index:02d}" for index in range(N_FEATURES)]
TREES, DEPTH = 20, 6


def generate(spark, n_rows: int, partitions: int, seed: int):
    """A Spark DataFrame of ``n_rows`` rows: 20 standard normal columns and a 0/1 label from five of them."""
    from pyspark.sql import functions as F

    columns = [F.randn(seed * 1000 + index).alias(name) for index, name in enumerate(FEATURES)]
    frame = spark.range(n_rows, numPartitions=partitions).select(*columns)
    score = F.col("f00") + 0.8 * F.col("f01") * F.col("f02") - 0.6 * F.col("f03") + F.sin(2 * F.col("f04"))
    return frame.withColumn("label", (score + 0.5 * F.randn(seed) > 0).cast("double"))


def peak_kib(pid: int | str) -> int:
    """The peak resident memory (VmHWM) of process ``pid``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM")


def reset_peak(pid: int | str) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def jvm_pid() -> int:
    """The JVM this process started (its child or grandchild named java)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            parents[int(entry.name)] = (int(rest[1]), name)
    for pid, (parent, name) in parents.items():
        ancestors = {parent, parents.get(parent, (0, ""))[0]}
        if name == "java" and os.getpid() in ancestors:
            return pid
    raise RuntimeError("no JVM started by this process")


def measured(step: Callable[[], object], jvm: int) -> tuple[object, float, int, int]:
    """``step()``, its seconds, and the peak RSS (MiB) of this process and of the JVM while it ran."""
    for pid in ("self", jvm):
        reset_peak(pid)
    started = time.perf_counter()
    result = step()
    return result, time.perf_counter() - started, peak_kib("self") // 1024, peak_kib(jvm) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=8, help="Parquet files, hence Spark partitions.")
    parser.add_argument("--repeats", type=int, default=2, help="Permutation repeats.")
    parser.add_argument("--methods", nargs="+", choices=["permutation", "shap"], default=["permutation", "shap"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    quiet = {"compare": {"enabled": False}, "diagnostics": {"leakage": False}, "logging": {"report": False}}
    methods = {
        "permutation importance": {"shap": {"enabled": False}, "permutation": {"n_repeats": args.repeats}},
        "SHAP": {"permutation": {"enabled": False}},
    }
    methods = {name: overrides for name, overrides in methods.items() if name.split()[0].lower() in args.methods}
    spark = spark_session(load_config(overrides={"spark": {"master": args.master}}).spark)
    spark.sparkContext.setLogLevel("ERROR")
    jvm = jvm_pid()
    with tempfile.TemporaryDirectory(prefix="spark_ml_bench_") as folder:
        mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
        generate(spark, args.rows, args.partitions, seed=2).write.parquet(f"{folder}/rows")
        frame = spark.read.parquet(f"{folder}/rows")
        assembler = VectorAssembler(inputCols=FEATURES, outputCol="features")
        forest = RandomForestClassifier(numTrees=TREES, maxDepth=DEPTH, seed=0)
        model = Pipeline(stages=[assembler, forest]).fit(generate(spark, 50_000, 2, seed=1))
        model.transform(frame.limit(1000)).count()  # workers started, the model's classes loaded
        predictions = model.transform(frame).agg(F.sum("prediction"))  # summed: Spark cannot skip computing them
        figures = {"transform (predictions only)": measured(predictions.first, jvm)}
        for method, overrides in methods.items():
            config = load_config(quiet, overrides)
            explain = functools.partial(mlflow_explain.spark.explain, model, frame, "label", config)
            figures[method] = measured(explain, jvm)
        partitions = frame.rdd.getNumPartitions()
    spark.stop()

    print(
        f"{args.rows:,} rows x {N_FEATURES} columns, VectorAssembler + RandomForestClassifier({TREES} trees, depth "
        f"{DEPTH}), {args.repeats} permutation repeats, {partitions} partitions, Spark {args.master}, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'method':<30}{'seconds':>9}{'rows/s':>10}{'driver Python MiB':>19}{'JVM MiB':>9}  notes")
    for method, (result, seconds, python_mib, jvm_mib) in figures.items():
        notes = ""
        if hasattr(result, "status"):
            computed = "" if result.results else "nothing computed; "
            notes = f"status {result.status}; {computed}" + "; ".join(f"{k}: {v}" for k, v in result.errors.items())
        print(f"{method:<30}{seconds:>9.1f}{args.rows / seconds:>10,.0f}{python_mib:>19,}{jvm_mib:>9,}  {notes}")


if __name__ == "__main__":
    main()
