"""The explain evaluator against mlflow.models.evaluate's own default SHAP explainability.

Same model, same rows. MLflow's SHAP cost is isolated as the median time of
``evaluate(evaluators="default")`` with ``log_model_explainability`` on, minus the same call
with it off. The plugin is timed on the SHAP computation alone (``shap_values`` on the same rows)
and as a whole ``evaluate(evaluators=["explain"])`` call with permutation importance off
(SHAP values, plots, report and logging).

    python benchmarks/evaluate_vs_mlflow_shap.py [--quick] [--rows N]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import platform
import statistics
import tempfile
import time
import warnings
from functools import partial

import mlflow
import numpy as np
import pandas as pd
from sklearn.datasets import make_regression
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _cases(n_rows: int):
    X, y = make_regression(n_samples=n_rows * 2, n_features=20, n_informative=10, noise=5.0, random_state=0)
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(20)])
    y_binary = (y > np.median(y)).astype(int)
    train, val = slice(0, n_rows), slice(n_rows, 2 * n_rows)
    yield ("random forest regressor (100 trees)", "regressor",
           RandomForestRegressor(n_estimators=100, max_depth=10, random_state=0, n_jobs=1).fit(X[train], y[train]),
           X[val], y[val])
    yield ("hist gradient boosting classifier", "classifier",
           HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(X[train], y_binary[train]),
           X[val], y_binary[val])
    yield ("pipeline: scaler + hist gradient boosting", "classifier",
           make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=50, random_state=0))
           .fit(X[train], y_binary[train]), X[val], y_binary[val])


def _evaluate(model_uri: str, data: pd.DataFrame, model_type: str, evaluators, config: dict) -> None:
    with mlflow.start_run():
        mlflow.models.evaluate(model_uri, data, targets="target", model_type=model_type, evaluators=evaluators,
                               evaluator_config=config)


def _measure(name, model_type, model, X_val, y_val, *, n_rows, repeats, mlflow_repeats) -> tuple:
    """(case, rows, MLflow SHAP s, plugin SHAP s, ratio, plugin evaluate s, ratio) for one case."""
    data = X_val.assign(target=y_val)
    with mlflow.start_run():
        model_uri = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle").model_uri
    default = {"explainability_nsamples": n_rows}
    with_shap = _median_seconds(partial(_evaluate, model_uri, data, model_type, "default",
                                        {**default, "log_model_explainability": True}), mlflow_repeats)
    without_shap = _median_seconds(partial(_evaluate, model_uri, data, model_type, "default",
                                           {**default, "log_model_explainability": False}), mlflow_repeats)
    mlflow_shap = max(with_shap - without_shap, 1e-9)
    task = detect_task(model, np.asarray(y_val))
    ours_shap = _median_seconds(partial(shap_values, model, X_val, task, feature_names=list(X_val.columns),
                                        max_rows=n_rows), repeats)
    plugin_config = {"explain": {"permutation": {"enabled": False}, "shap": {"max_rows": n_rows}}}
    ours_plugin = _median_seconds(partial(_evaluate, model_uri, data, model_type, ["explain"], plugin_config), repeats)
    return name, n_rows, mlflow_shap, ours_shap, mlflow_shap / ours_shap, ours_plugin, mlflow_shap / ours_plugin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="500 rows, fewer repeats (about 5 minutes)")
    parser.add_argument("--rows", type=int, help="validation rows explained (default 2000, MLflow's default sample)")
    args = parser.parse_args()
    n_rows, repeats, mlflow_repeats = (500, 3, 1) if args.quick else (2000, 5, 3)
    n_rows = args.rows or n_rows
    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    folder = tempfile.mkdtemp(prefix="mlflow_explain_bench_")
    mlflow.set_tracking_uri(f"sqlite:///{os.path.join(folder, 'mlflow.db')}")
    mlflow.set_experiment("benchmark")

    rows = [_measure(*case, n_rows=n_rows, repeats=repeats, mlflow_repeats=mlflow_repeats) for case in _cases(n_rows)]
    print(f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          + ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("mlflow", "shap", "scikit-learn")))
    print(f"Rows explained: {n_rows} (MLflow: explainability_nsamples={n_rows}); medians of {repeats} runs "
          f"({mlflow_repeats} for MLflow's evaluate)\n")
    print("| case | rows | MLflow default SHAP (s) | plugin SHAP (s) | ratio | plugin evaluate, SHAP only (s) | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, n, mlflow_s, ours_s, ratio, plugin_s, plugin_ratio in rows:
        print(f"| {name} | {n} | {mlflow_s:.2f} | {ours_s:.3f} | {ratio:.0f}x | {plugin_s:.2f} | {plugin_ratio:.0f}x |")


if __name__ == "__main__":
    main()
