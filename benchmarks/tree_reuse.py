"""Experiment (issue 7, item 5): below the limit for tree ensembles by re-evaluating only what can change.

A permuted feature f can change a tree's prediction for a row only if the row's path in that
tree (on the unpermuted data) passes a node that splits on f. This prototype, for scikit-learn
random forests and gradient boosting, keeps the per-tree predictions of the unpermuted rows,
re-evaluates only the (tree, row) pairs whose path splits on f, and sums the trees in
scikit-learn's order (so the result is bit-for-bit scikit-learn's). It prints how much of the
naive work remains, the time against the limit (one predict over all permuted rows) and
against the engine, and the largest difference from ``sklearn.inspection``.

    python benchmarks/tree_reuse.py [--repeats N]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
from permutation_engine import medians_of, permuted_rows  # benchmarks/ is on the path when run as a script
from sklearn.datasets import load_diabetes, make_regression
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

from mlflow_explain.methods.permutation import permutation_importance
from mlflow_explain.methods.permutation_batches import draw_shuffles

N_REPEATS = 5


def _trees(model) -> tuple[list, float]:
    """The fitted tree structures and the weight of each tree's leaf value in the prediction."""
    if isinstance(model, RandomForestRegressor):
        return [tree.tree_ for tree in model.estimators_], 1 / len(model.estimators_)
    return [tree.tree_ for tree in model.estimators_[:, 0]], model.learning_rate


def tree_reuse_importance(model, X: np.ndarray, y: np.ndarray, n_repeats: int, seed: int):
    """R^2 permutation importance re-evaluating only the (tree, row) pairs a permutation can change.

    Prediction of a permuted copy = the model's prediction of the unpermuted rows + the change of
    every re-evaluated tree's weighted leaf value (differs from scikit-learn's sum by rounding only).
    """
    X = X.astype(np.float32)
    n_rows, n_features = X.shape
    _, shuffles = draw_shuffles(seed, n_rows, n_repeats, 1.0)
    trees, weight = _trees(model)
    base_prediction = model.predict(X)
    baseline = r2_score(y, base_prediction)
    change = np.zeros((n_features, n_repeats, n_rows))
    evaluated = 0
    for tree in trees:
        split_features = np.where(tree.feature >= 0, tree.feature, n_features)
        on_path = tree.decision_path(X) @ np.eye(n_features + 1)[split_features]  # (rows, features): splits on path
        base_leaf = tree.predict(X)[:, 0]
        blocks, where = [], []
        for feature in np.flatnonzero(on_path[:, :n_features].any(axis=0)):
            touched = np.flatnonzero(on_path[:, feature])
            copies = np.repeat(X[None, touched], n_repeats, axis=0)
            for r, order in enumerate(shuffles):
                copies[r, :, feature] = X[order[touched], feature]
            blocks.append(copies.reshape(-1, n_features))
            where.append((feature, touched))
        if not blocks:
            continue
        leaf = tree.predict(np.concatenate(blocks))[:, 0]
        start = 0
        for feature, touched in where:
            values = leaf[start : start + n_repeats * touched.size].reshape(n_repeats, -1)
            change[feature][:, touched] += weight * (values - base_leaf[touched])
            start += values.size
        evaluated += start
    permuted = (base_prediction + change).reshape(-1, n_rows).T  # one column per (feature, repeat)
    scores = r2_score(np.repeat(y[:, None], permuted.shape[1], axis=1), permuted, multioutput="raw_values")
    importances = baseline - scores.reshape(n_features, n_repeats)
    return importances, evaluated / (len(trees) * n_features * n_repeats * n_rows)


def _cases():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
    yield (
        "random forest (100 trees), diabetes, 89 rows",
        RandomForestRegressor(n_estimators=100, random_state=0).fit(X_train, y_train),
        X_val,
        y_val,
    )
    X, y = make_regression(n_samples=10_000, n_features=30, n_informative=15, noise=10.0, random_state=0)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
    yield (
        "gradient boosting (100 trees, depth 3), 30 features, 2000 rows",
        GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0).fit(X_train, y_train),
        X_val,
        y_val,
    )


def _timings(model, X: np.ndarray, y: np.ndarray, stacked: np.ndarray, seed: int, repeats: int) -> dict[str, float]:
    return medians_of(
        {
            "limit": lambda: model.predict(stacked),
            "engine": lambda: permutation_importance(model, X, y, n_repeats=N_REPEATS),
            "reuse": lambda: tree_reuse_importance(model, X, y, N_REPEATS, seed),
        },
        repeats,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max + 1)
    print("| case | (tree, row) evaluations left | limit s | engine s | tree reuse s | max abs diff vs sklearn |")
    print("|---|---|---|---|---|---|")
    for title, model, X, y in _cases():
        stacked = permuted_rows(pd.DataFrame(X), N_REPEATS).to_numpy()
        reused, fraction = tree_reuse_importance(model, X, y, N_REPEATS, seed)
        theirs = sklearn_permutation_importance(model, X, y, n_repeats=N_REPEATS, random_state=0).importances
        medians = _timings(model, X, y, stacked, seed, args.repeats)
        print(
            f"| {title} | {fraction:.1%} | {medians['limit']:.3f} | {medians['engine']:.3f} | "
            f"{medians['reuse']:.3f} | {np.abs(reused - theirs).max():.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
