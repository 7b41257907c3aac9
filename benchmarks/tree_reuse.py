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
from permutation_engine import medians_of  # benchmarks/ is on the path when run as a script
from sklearn.datasets import load_diabetes, make_regression
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

from mlflow_explain.methods.permutation import _shuffles, permutation_importance

N_REPEATS = 5


def _tree_terms(model, X: np.ndarray) -> tuple[list, np.ndarray, float, int]:
    """Trees, their per-row terms on X (shape (n_trees, n_rows)), the start value and the divisor."""
    if isinstance(model, RandomForestRegressor):
        trees = [tree.tree_ for tree in model.estimators_]
        return trees, np.stack([tree.predict(X)[:, 0] for tree in trees]), 0.0, len(trees)
    trees = [tree.tree_ for tree in model.estimators_[:, 0]]
    rate = model.learning_rate
    start = float(model._raw_predict_init(X[:1])[0, 0])
    return trees, np.stack([rate * tree.predict(X)[:, 0] for tree in trees]), start, 1


def _ensemble(terms: np.ndarray, start: float, divisor: int) -> np.ndarray:
    """Sum the trees' terms in scikit-learn's order (a running sum), then divide as it does."""
    total = np.full(terms.shape[1:], start)
    for term in terms:
        total += term
    if divisor != 1:
        total /= divisor
    return total


def tree_reuse_importance(model, X: np.ndarray, y: np.ndarray, n_repeats: int, seed: int):
    """R^2 permutation importance re-evaluating only the (tree, row) pairs a permutation can change."""
    X = X.astype(np.float32)
    rows, shuffles = _shuffles(seed, len(X), n_repeats, 1.0)
    trees, base_terms, start, divisor = _tree_terms(model, X)
    baseline = r2_score(y, _ensemble(base_terms, start, divisor))
    is_gbr = not isinstance(model, RandomForestRegressor)
    importances = np.empty((X.shape[1], n_repeats))
    evaluated = 0
    paths = [tree.decision_path(X).tocsc() for tree in trees]
    for feature in range(X.shape[1]):
        terms = np.repeat(base_terms[:, None, :], n_repeats, axis=1)  # (trees, repeats, rows)
        for t, tree in enumerate(trees):
            nodes = np.flatnonzero(tree.feature == feature)
            if nodes.size == 0:
                continue
            touched = np.unique(paths[t][:, nodes].nonzero()[0])
            if touched.size == 0:
                continue
            copies = np.repeat(X[None, touched], n_repeats, axis=0)
            for r, order in enumerate(shuffles):
                copies[r, :, feature] = X[order[touched], feature]
            leaf_values = tree.predict(copies.reshape(-1, X.shape[1]))[:, 0].reshape(n_repeats, -1)
            terms[t][:, touched] = model.learning_rate * leaf_values if is_gbr else leaf_values
            evaluated += copies.shape[0] * copies.shape[1]
        predictions = _ensemble(terms, start, divisor)
        importances[feature] = [baseline - r2_score(y, predictions[r]) for r in range(n_repeats)]
    naive = len(trees) * X.shape[1] * n_repeats * len(X)
    return importances, evaluated / naive


def _cases():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
    yield "random forest (100 trees), diabetes, 89 rows", RandomForestRegressor(
        n_estimators=100, random_state=0).fit(X_train, y_train), X_val, y_val
    X, y = make_regression(n_samples=10_000, n_features=30, n_informative=15, noise=10.0, random_state=0)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
    yield "gradient boosting (100 trees, depth 3), 30 features, 2000 rows", GradientBoostingRegressor(
        n_estimators=100, max_depth=3, random_state=0).fit(X_train, y_train), X_val, y_val


def _timings(model, X: np.ndarray, y: np.ndarray, stacked: np.ndarray, seed: int, repeats: int) -> dict[str, float]:
    return medians_of({
        "limit": lambda: model.predict(stacked),
        "engine": lambda: permutation_importance(model, X, y, n_repeats=N_REPEATS),
        "reuse": lambda: tree_reuse_importance(model, X, y, N_REPEATS, seed),
    }, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max + 1)
    print("| case | (tree, row) evaluations left | limit s | engine s | tree reuse s | max abs diff vs sklearn |")
    print("|---|---|---|---|---|---|")
    for title, model, X, y in _cases():
        stacked = pd.concat([pd.DataFrame(X)] * (X.shape[1] * N_REPEATS)).to_numpy()
        reused, fraction = tree_reuse_importance(model, X, y, N_REPEATS, seed)
        theirs = sklearn_permutation_importance(model, X, y, n_repeats=N_REPEATS, random_state=0).importances
        medians = _timings(model, X, y, stacked, seed, args.repeats)
        print(f"| {title} | {fraction:.1%} | {medians['limit']:.3f} | {medians['engine']:.3f} | "
              f"{medians['reuse']:.3f} | {np.abs(reused - theirs).max():.1e} |", flush=True)


if __name__ == "__main__":
    main()
