"""The permutation engine's own cost per scorer, on models whose predict costs almost nothing.

With a linear model the predict calls are cheap, so the time is the engine's: stacking the copies
and scoring them. Cases: R^2 alone (the default), the four regression scores with sample weights,
and accuracy with log-loss on a multiclass classifier (all from the scorer table, one numpy
operation per batch). Medians of ``--repeats`` calls each.

    python benchmarks/permutation_scorers.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from mlflow_explain.methods.permutation import permutation_importance

REGRESSION_SCORERS = ["r2", "neg_mean_squared_error", "neg_root_mean_squared_error", "neg_mean_absolute_error"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    X, y = load_diabetes(return_X_y=True)
    ridge = Ridge().fit(X, y)
    weights = np.linspace(0.5, 2.0, len(y))
    X_wine, y_wine = load_wine(return_X_y=True)
    X_wine = StandardScaler().fit_transform(X_wine)
    logistic = LogisticRegression(max_iter=1000).fit(X_wine, y_wine)
    cases = {
        "ridge, diabetes: r2": lambda: permutation_importance(ridge, X, y, n_repeats=5),
        "ridge, diabetes: 4 regression scorers, weighted": lambda: permutation_importance(
            ridge, X, y, n_repeats=5, scoring=REGRESSION_SCORERS, sample_weight=weights
        ),
        "logistic regression, wine: accuracy + neg_log_loss": lambda: permutation_importance(
            logistic, X_wine, y_wine, n_repeats=5, scoring=["accuracy", "neg_log_loss"]
        ),
    }
    print("| case | median ms |\n|---|---|")
    for name, function in cases.items():
        function()  # warm-up
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            function()
            times.append(time.perf_counter() - started)
        print(f"| {name} | {statistics.median(times) * 1000:.1f} |", flush=True)


if __name__ == "__main__":
    main()
