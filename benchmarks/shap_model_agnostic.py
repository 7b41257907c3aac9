"""Model-agnostic SHAP of a whole Pipeline on its raw columns: exact (ExactExplainer) against sampled (Permutation).

An SVC behind one-hot encoding and imputers on generated mixed data (5 raw columns), explained on
``--rows`` rows with ``--background`` background rows. The first call of each explainer in the
process includes shap's numba compilation, reported apart; then the median of ``--repeats`` calls,
and how far the sampled values are from the exact ones.

    python benchmarks/shap_model_agnostic.py [--rows 20 --background 50 --repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import numpy as np
from sklearn.svm import SVC

from mlflow_explain.methods.shap import shap_values
from mlflow_explain.models import detect_task
from tests.helpers import mixed_frame, mixed_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--background", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    X, y = mixed_frame(n_rows=600, seed=4)
    model = mixed_pipeline(SVC(probability=True, random_state=0)).fit(X.iloc[:300], y[:300])
    X, task = X.iloc[300:].reset_index(drop=True), detect_task(model, y)
    values = {}
    for name, exact_max_features in (("exact", 10), ("permutation", 0)):

        def explain(limit: int = exact_max_features):
            return shap_values(
                model,
                X,
                task,
                feature_names=list(X.columns),
                permutation_max_rows=args.rows,
                background_rows=args.background,
                exact_max_features=limit,
                local_rows=0,
                check_additivity=False,
            )

        start = time.perf_counter()
        result = explain()
        first = time.perf_counter() - start
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            explain()
            times.append(time.perf_counter() - start)
        values[name] = result.values
        median = statistics.median(times)
        print(f"{name:12s} first call {first:7.2f} s, then median {median:6.2f} s ({median / args.rows:.3f} s/row)")
    gap = np.abs(values["permutation"] - values["exact"]).max()
    print(f"largest |sampled - exact| SHAP value: {gap:.4f} (probability)")


if __name__ == "__main__":
    main()
