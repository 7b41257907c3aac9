"""What autolog adds to ``fit`` of a deep forest under its default time budget, and TreeSHAP on one core vs all.

The case of issue 21, scaled down to run in a few minutes on 2 busy cores: a
``RandomForestClassifier(300)`` (default depth: deep trees) fitted on ``--train-rows`` generated
rows of ``--features`` columns, explained on ``--val-rows`` validation rows (the issue: 200,000 x 50,
``fit`` 78 s, then 1,561 s of single-threaded TreeSHAP on 2,000 rows).

1. ``fit`` with autolog off, then the same ``fit`` with ``mlflow_explain.autolog(validation_data=...)``
   and the default config (``budget.autolog_s``): the extra time autolog adds, against the budget,
   and what the plan cut (the warnings, as summary.json holds them).
2. The TreeSHAP of ``--shap-rows`` rows of that forest: shap's single call on one core, then
   ``methods.tree_chunks`` on all cores (the first call starts the worker processes, the second
   finds them started); the values must be equal, bit for bit. Also the time to build shap's
   TreeExplainer (a fixed cost the old ``shap.budget_s`` estimate did not count).

    python benchmarks/autolog_budget.py [--train-rows 6000] [--val-rows 20000] [--features 50]
                                        [--trees 300] [--shap-rows 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-rows", type=int, default=6000)
    parser.add_argument("--val-rows", type=int, default=20000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--shap-rows", type=int, default=200)
    args = parser.parse_args()

    import mlflow
    import numpy as np
    import shap
    from joblib import effective_n_jobs
    from mlflow.tracking import MlflowClient
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    import mlflow_explain
    from mlflow_explain.methods.tree_chunks import tree_shap_values

    X, y = make_classification(
        n_samples=args.train_rows + args.val_rows, n_features=args.features, n_informative=10, random_state=0
    )
    X_train, y_train, X_val, y_val = (
        X[: args.train_rows],
        y[: args.train_rows],
        X[args.train_rows :],
        y[args.train_rows :],
    )

    def forest() -> RandomForestClassifier:
        return RandomForestClassifier(n_estimators=args.trees, random_state=0, n_jobs=-1)

    with tempfile.TemporaryDirectory() as folder:
        mlflow.set_tracking_uri(f"sqlite:///{Path(folder) / 'mlflow.db'}")
        mlflow.set_experiment("autolog_budget")
        started = time.perf_counter()
        model = forest().fit(X_train, y_train)
        bare_fit_s = time.perf_counter() - started

        budget_s = mlflow_explain.load_config().budget.autolog_s
        mlflow_explain.autolog(validation_data=(X_val, y_val))
        with mlflow.start_run() as run:
            started = time.perf_counter()
            forest().fit(X_train, y_train)
            explained_fit_s = time.perf_counter() - started
        mlflow_explain.autolog(disable=True)
        summary_path = MlflowClient().download_artifacts(run.info.run_id, "explain/summary.json", folder)
        summary = json.loads(Path(summary_path).read_text())

    started = time.perf_counter()
    explainer = shap.TreeExplainer(model)
    build_s = time.perf_counter() - started
    rows = X_val[: args.shap_rows]
    started = time.perf_counter()
    single = explainer.shap_values(rows, check_additivity=False)
    one_core_s = time.perf_counter() - started
    all_cores = []
    for _ in range(2):
        values, _, timing = tree_shap_values(explainer, rows, n_jobs=-1)
        all_cores.append((timing, bool(np.array_equal(values, single))))

    extra_s = explained_fit_s - bare_fit_s
    print(
        f"RandomForestClassifier({args.trees}), {args.train_rows:,} x {args.features} training rows, "
        f"{args.val_rows:,} validation rows, {effective_n_jobs(-1)} cores"
    )
    print(f"fit, autolog off:                {bare_fit_s:8.1f} s")
    print(f"fit, autolog on (budget {budget_s:g} s):  {explained_fit_s:8.1f} s")
    print(
        f"extra time autolog adds:         {extra_s:8.1f} s = {extra_s / budget_s:.0%} of the budget "
        f"({'within' if extra_s <= 1.2 * budget_s else 'over'} 120%)"
    )
    print("timings in summary.json:         " + ", ".join(f"{k} {v:.1f} s" for k, v in summary["timings_s"].items()))
    print(f"SHAP reason:                     {summary['shap']['reason']}")
    for note in summary["warnings"]:
        print(f"warning:                         {note}")
    print(f"TreeExplainer build:             {build_s:8.2f} s")
    print(f"TreeSHAP of {args.shap_rows} rows, one core:  {one_core_s:8.1f} s (shap's single call)")
    for label, (timing, equal) in zip(("first call", "second call"), all_cores, strict=True):
        print(f"TreeSHAP, all cores, {label}: {timing.seconds:8.1f} s ({timing}; values equal: {equal})")


if __name__ == "__main__":
    main()
