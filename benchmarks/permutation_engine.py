"""The permutation-importance engine against its limit and scikit-learn, case by case.

For each case the same model and rows go to every contender, timed round-robin (so load from
other processes hits all of them alike) and reported as medians:

- limit: one ``predict`` of the model over all permuted rows (n_features x n_repeats x n_rows),
  the stacked rows built before the clock starts. They are real permuted copies: a forest predicts
  tiled copies of the same rows about 30% faster than permuted ones (the same paths again and
  again stay in cache), so a limit timed on tiled rows is one the work itself cannot reach; that
  figure is printed too, as "tiled";
- ours: ``mlflow_explain.methods.permutation.permutation_importance`` (n_jobs=1 and 2);
- sklearn: ``sklearn.inspection.permutation_importance`` (same seed, n_jobs=1), whose
  importances must equal ours (the largest difference is printed).

    python benchmarks/permutation_engine.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, make_regression
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlflow_explain.methods.permutation import permutation_importance

N_REPEATS = 5


def medians_of(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each contender, called round-robin ``repeats`` times."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, function in contenders.items():
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def permuted_rows(X: pd.DataFrame, n_repeats: int, seed: int = 0) -> pd.DataFrame:
    """Every permuted copy the method needs (each column shuffled n_repeats times), stacked."""
    rng = np.random.RandomState(seed)
    copies = []
    for column in X.columns:
        for _ in range(n_repeats):
            copy = X.copy()
            copy[column] = X[column].array.take(rng.permutation(len(X)))  # keeps the column's dtype
            copies.append(copy)
    return pd.concat(copies, ignore_index=True)


def _random_forest_diabetes(quick: bool):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y.to_numpy(), test_size=0.2, random_state=0)
    model = RandomForestRegressor(n_estimators=100, random_state=0).fit(X_train, y_train)
    return "random forest, diabetes (89 validation rows)", model, X_val, y_val


def _hist_gradient_boosting(quick: bool):
    n_rows = 2_500 if quick else 25_000
    X, y = make_regression(n_samples=n_rows, n_features=30, n_informative=15, noise=10.0, random_state=0)
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(30)])
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
    model = HistGradientBoostingRegressor(max_iter=100, random_state=0).fit(X_train, y_train)
    return f"hist gradient boosting, {n_rows} x 30 ({len(X_val)} validation rows)", model, X_val, y_val


def mixed_60(n_rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Generated rows of 40 numeric columns (with NaNs) and 20 string columns; a binary target."""
    rng = np.random.RandomState(seed)
    numeric = rng.randn(n_rows, 40)
    numeric[rng.rand(n_rows, 40) < 0.05] = np.nan
    columns = {f"num{i}": numeric[:, i] for i in range(40)}
    columns.update({f"cat{i}": rng.choice(list("abcdef"), n_rows) for i in range(20)})
    X = pd.DataFrame(columns)
    signal = np.nan_to_num(numeric[:, :5]).sum(axis=1) + (X["cat0"] == "a") * 2
    return X, (signal + rng.randn(n_rows) > 0).astype(int).to_numpy()


def _pipeline_mixed(quick: bool):
    X, y = mixed_60(2_000 if quick else 6_000)
    numeric = [c for c in X.columns if c.startswith("num")]
    categorical = [c for c in X.columns if c.startswith("cat")]
    preprocess = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ]
    )
    model = Pipeline([("preprocess", preprocess), ("model", LogisticRegression(max_iter=2000))])
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0)
    model.fit(X_train, y_train)
    return (
        f"pipeline (impute, scale, one-hot) + logistic regression, 60 raw columns ({len(X_val)} validation rows)",
        model,
        X_val,
        y_val,
    )


def run_case(make: Callable, quick: bool, repeats: int) -> list[str]:
    """Time one case and return its markdown table rows."""
    title, model, X, y = make(quick)
    stacked = permuted_rows(X, N_REPEATS)
    tiled = pd.concat([X] * (X.shape[1] * N_REPEATS), ignore_index=True)
    ours = permutation_importance(model, X, y, n_repeats=N_REPEATS, random_state=0)
    theirs = sklearn_permutation_importance(model, X, y, n_repeats=N_REPEATS, random_state=0)
    difference = float(np.max(np.abs(ours.importances[ours.primary_scorer] - theirs.importances)))
    contenders = {
        "limit (one predict over all permuted rows)": lambda: model.predict(stacked),
        "tiled: one predict over as many unpermuted rows": lambda: model.predict(tiled),
        "ours, n_jobs=1": lambda: permutation_importance(model, X, y, n_repeats=N_REPEATS, random_state=0),
        "ours, n_jobs=2": lambda: permutation_importance(model, X, y, n_repeats=N_REPEATS, random_state=0, n_jobs=2),
        "sklearn.inspection.permutation_importance": lambda: sklearn_permutation_importance(
            model, X, y, n_repeats=N_REPEATS, random_state=0
        ),
    }
    if ours.path == "pipeline_transformed_once":
        contenders["ours, whole pipeline on every copy"] = lambda: permutation_importance(
            model, X, y, n_repeats=N_REPEATS, random_state=0, split_pipeline=False
        )
    medians = medians_of(contenders, repeats)
    limit = medians["limit (one predict over all permuted rows)"]
    rows = [f"| {title} | {name} | {seconds:.3f} | {seconds / limit:.2f} |" for name, seconds in medians.items()]
    rows.append(f"| {title} | path: {ours.path}; max abs difference from sklearn: {difference:.1e} | | |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per contender (default 5, quick 3)")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 5)
    warnings.filterwarnings("ignore")
    print(
        f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"n_repeats={N_REPEATS}; medians of {repeats} round-robin runs\n"
    )
    print("| case | contender | median s | x limit |\n|---|---|---|---|")
    for make in (_random_forest_diabetes, _hist_gradient_boosting, _pipeline_mixed):
        for row in run_case(make, args.quick, repeats):
            print(row, flush=True)


if __name__ == "__main__":
    main()
