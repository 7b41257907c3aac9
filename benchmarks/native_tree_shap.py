"""Native TreeSHAP of boosters (issue 21, item 1): the library's own pred_contribs against shap's TreeExplainer.

One run, side by side on the same rows of the same 500-tree model (XGBoost, then LightGBM):

- ``mlflow_explain``: ``shap_values`` of the booster's adapter (``boosters.booster_estimator``), the
  library's multithreaded TreeSHAP (``pred_contribs`` / ``pred_contrib``) on every core, with the
  package's additivity check;
- ``shap.TreeExplainer(booster)``, as users call it: it parses every tree into its own structure
  (the constructor's time), then hands the rows to the same library call;
- shap's own TreeSHAP (its C++ ``tree_path_dependent`` algorithm on its parse, one thread): what
  TreeExplainer computes when it does not delegate, and the reference the values are checked against.

Prints seconds, the ratios to mlflow_explain, the largest difference between the values and the
largest additivity gap (values + base value against the booster's margin).

    python benchmarks/native_tree_shap.py [--rows 10000] [--trees 500] [--features 20] [--libraries xgboost lightgbm]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import lightgbm
import numpy as np
import shap
import xgboost
from sklearn.datasets import make_classification

from mlflow_explain.boosters import booster_estimator
from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task


def _seconds(call):
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def _boosters(n_rows: int, n_trees: int, n_features: int, libraries: list[str]):
    X, y = make_classification(
        n_samples=2 * n_rows, n_features=n_features, n_informative=n_features // 2, random_state=0
    )
    X = X.astype(np.float32)  # what the libraries compare with their float32 thresholds: shap's parse then agrees
    X_train, y_train, X_val, y_val = X[:n_rows], y[:n_rows], X[n_rows:], y[n_rows:]
    trained = {
        "xgboost": lambda: xgboost.train(  # XGBoost's defaults: depth 6
            {"objective": "binary:logistic"}, xgboost.DMatrix(X_train, label=y_train), n_trees
        ),
        "lightgbm": lambda: lightgbm.train(  # LightGBM's defaults: 31 leaves
            {"objective": "binary", "verbose": -1}, lightgbm.Dataset(X_train, label=y_train), n_trees
        ),
    }
    return {name: trained[name]() for name in libraries}, X_val, y_val


def measure(name: str, booster, X: np.ndarray, y: np.ndarray) -> list[str]:
    model = booster_estimator(booster)
    task = detect_task(model, y)
    names = [f"x{i}" for i in range(X.shape[1])]
    ours_s, ours = _seconds(lambda: shap_values(model, X, task, feature_names=names, max_rows=len(X), local_rows=0))
    build_s, explainer = _seconds(lambda: shap.TreeExplainer(booster))
    values_s, delegated = _seconds(lambda: explainer.shap_values(X, check_additivity=False))
    explainer.model.model_type = "internal"  # shap's own algorithm, not the library's
    own_s, own = _seconds(lambda: explainer.shap_values(X, check_additivity=False))
    positive = ours.values[:, :, 1]
    rows = [
        f"| {name} | mlflow_explain (library TreeSHAP, {os.cpu_count()} cores, additivity checked) | {ours_s:.2f} "
        f"| 1.00x | {np.abs(positive - own).max():.1e} | {ours.max_additivity_error:.1e} |",
        f"| {name} | shap.TreeExplainer(booster): parse {build_s:.2f} s + values {values_s:.2f} s "
        f"| {build_s + values_s:.2f} | {(build_s + values_s) / ours_s:.2f}x | {np.abs(delegated - own).max():.1e} | |",
        f"| {name} | shap's own TreeSHAP on its parse (1 thread) | {own_s:.2f} | {own_s / ours_s:.2f}x | reference | |",
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000, help="validation rows explained (and training rows)")
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--libraries", nargs="+", choices=["xgboost", "lightgbm"], default=["xgboost", "lightgbm"])
    arguments = parser.parse_args()
    warnings.filterwarnings("ignore")
    boosters, X, y = _boosters(arguments.rows, arguments.trees, arguments.features, arguments.libraries)
    print(f"{arguments.trees} trees, {len(X)} rows x {X.shape[1]} features, binary classifier; SHAP in margin space")
    print()
    print("| library | explainer | seconds | ÷ mlflow_explain | max gap to shap's own | additivity gap |")
    print("|---|---|---:|---:|---:|---:|")
    for name, booster in boosters.items():
        for row in measure(name, booster, X, y):
            print(row)


if __name__ == "__main__":
    main()
