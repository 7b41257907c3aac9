"""Permutation importance against scikit-learn's on boosted trees, 10,000 validation rows x 50 columns (issue 21).

Four models (HistGradientBoosting regressor and classifier, LightGBM regressor and classifier),
each trained on 10,000 generated rows and explained on 10,000 others (50 columns, pandas frames,
as users pass them). For each, ``sklearn.inspection.permutation_importance`` and
``mlflow_explain.methods.permutation.permutation_importance`` (n_repeats=5, the same seed, n_jobs=1,
default scorer) are timed round-robin in one process, so load from other processes hits both
alike; the table gives the median seconds of each, the ratio mlflow_explain / sklearn, and the
largest absolute difference between their importances (they must be equal).

    python benchmarks/permutation_vs_sklearn.py [--quick] [--rows N] [--runs N]

``--quick``: 2,000 validation rows and one run per contender.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.inspection import permutation_importance as sklearn_permutation_importance

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlflow_explain.methods.permutation import permutation_importance  # noqa: E402

N_FEATURES = 50
N_REPEATS = 5
SEED = 0


def generated(task: str, n_rows: int) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """Training and validation rows (``n_rows`` each) of a generated regression or binary classification."""
    if task == "regressor":
        X, y = make_regression(2 * n_rows, N_FEATURES, n_informative=20, noise=10.0, random_state=SEED)
    else:
        X, y = make_classification(2 * n_rows, N_FEATURES, n_informative=20, random_state=SEED)
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(N_FEATURES)])
    return X.iloc[:n_rows], y[:n_rows], X.iloc[n_rows:].reset_index(drop=True), y[n_rows:]


def models() -> dict[str, tuple[str, Callable[[], object]]]:
    """Name -> (task, unfitted model)."""
    from lightgbm import LGBMClassifier, LGBMRegressor

    return {
        "HistGradientBoostingRegressor (100 iterations)": (
            "regressor",
            lambda: HistGradientBoostingRegressor(max_iter=100, early_stopping=False, random_state=SEED),
        ),
        "HistGradientBoostingClassifier (100 iterations)": (
            "classifier",
            lambda: HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=SEED),
        ),
        "LGBMRegressor (100 trees)": ("regressor", lambda: LGBMRegressor(n_estimators=100, verbose=-1)),
        "LGBMClassifier (100 trees)": ("classifier", lambda: LGBMClassifier(n_estimators=100, verbose=-1)),
    }


def medians_of(contenders: dict[str, Callable[[], object]], runs: int) -> tuple[dict[str, float], dict[str, object]]:
    """Median seconds of each contender called round-robin ``runs`` times, and each one's last result."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    results: dict[str, object] = {}
    for _ in range(runs):
        for name, function in contenders.items():
            started = time.perf_counter()
            results[name] = function()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}, results


def measure(name: str, task: str, make: Callable[[], object], n_rows: int, runs: int) -> str:
    """One markdown table row: sklearn's and mlflow_explain's median seconds, their ratio, mlflow_explain's
    predict calls, and the largest difference of its importances from sklearn's."""
    X_train, y_train, X_val, y_val = generated(task, n_rows)
    model = make().fit(X_train, y_train)

    def ours() -> object:
        return permutation_importance(model, X_val, y_val, n_repeats=N_REPEATS, random_state=SEED)

    def sklearn() -> object:
        return sklearn_permutation_importance(model, X_val, y_val, n_repeats=N_REPEATS, random_state=SEED)

    medians, results = medians_of(
        {
            "sklearn": sklearn,
            "ours": ours,
        },
        runs,
    )
    result = results["ours"]
    difference = float(np.max(np.abs(result.importances[result.primary_scorer] - results["sklearn"].importances)))
    equal = "yes" if difference <= 1e-12 else "NO"
    return (
        f"| {name} | {len(X_val):,} x {N_FEATURES} | {medians['sklearn']:.2f} | {medians['ours']:.2f} "
        f"| {medians['ours'] / medians['sklearn']:.2f} | {result.n_predict_calls} x {result.copies_per_call} "
        f"| {difference:.1e} ({equal}) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 validation rows, one run per contender")
    parser.add_argument("--rows", type=int, default=None, help="validation (and training) rows (default 10,000)")
    parser.add_argument("--runs", type=int, default=None, help="round-robin runs per contender (default 3)")
    args = parser.parse_args()
    n_rows = args.rows or (2_000 if args.quick else 10_000)
    runs = args.runs or (1 if args.quick else 3)
    warnings.filterwarnings("ignore")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"{platform.platform()}, {os.cpu_count()} cores, load average {load}; n_repeats={N_REPEATS}, "
        f"random_state={SEED}, n_jobs=1; medians of {runs} round-robin runs\n"
    )
    print(
        "| model | validation rows | sklearn s | mlflow_explain s | ratio | predict calls x copies "
        "| max abs difference from sklearn (equal) |\n|---|---|---|---|---|---|---|"
    )
    for name, (task, make) in models().items():
        print(measure(name, task, make, n_rows, runs), flush=True)
    print(f"\nload average after: {', '.join(f'{value:.1f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
